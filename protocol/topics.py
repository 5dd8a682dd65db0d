"""The MQTT topic tree of DESIGN.md section 4, built and parsed in one place.

::

    <prefix>/<site>/agent/status              retained AgentStatus
    <prefix>/<site>/agent/health              retained AgentHealth
    <prefix>/<site>/kkt/<kkt>/state           retained HealthSnapshot
    <prefix>/<site>/kkt/<kkt>/alert/<CODE>    retained Problem; empty payload = cleared
    <prefix>/<site>/kkt/<kkt>/event           Event
    <prefix>/<site>/cmd/<name>                CommandRequest
    <prefix>/<site>/cmd/<name>/response       CommandResponse

``<kkt>`` is ``<vendor>-<serial>``, never a port name. Every variable level is checked
to be a single, literal topic level (no ``/``, ``+``, ``#``, NUL), so a strange serial
number cannot publish outside its subtree or into a wildcard. Stdlib only: the
ticketing side parses topics with the same class.
"""

from __future__ import annotations

from dataclasses import dataclass

_FORBIDDEN = frozenset("/+#\x00")


def check_level(value: str, what: str = "topic level") -> str:
    """``value`` unchanged if it is one literal topic level; ValueError otherwise."""
    if not value or any(ch in _FORBIDDEN or ch.isspace() for ch in value):
        raise ValueError(f"{what} {value!r}: must be non-empty without '/', '+', '#' or blanks")
    return value


def kkt_id(vendor: str, serial: str) -> str:
    """``<vendor>-<serial>``: the register's name in topics."""
    return check_level(f"{check_level(vendor, 'vendor')}-{check_level(serial, 'serial')}", "kkt")


@dataclass(frozen=True)
class ParsedTopic:
    """What a topic of the tree names; fields that do not apply are None."""

    site: str
    kind: str  # status, health, state, alert, event, command, response
    kkt: str | None = None
    code: str | None = None
    command: str | None = None


@dataclass(frozen=True)
class Topics:
    """The topics of one site under one prefix (``kktmon/v1`` by default).

    Every topic is a method call, ``topics.status()`` as well as ``topics.state(kkt)``.
    """

    prefix: str
    site: str

    def __post_init__(self) -> None:
        for level in self.prefix.split("/"):
            check_level(level, "topic prefix level")
        if self.prefix.startswith("$"):
            raise ValueError("topic prefix must not start with '$'")
        check_level(self.site, "site")

    @property
    def root(self) -> str:
        return f"{self.prefix}/{self.site}"

    def status(self) -> str:
        return f"{self.root}/agent/status"

    def health(self) -> str:
        return f"{self.root}/agent/health"

    def state(self, kkt: str) -> str:
        return f"{self.root}/kkt/{check_level(kkt, 'kkt')}/state"

    def alert(self, kkt: str, code: str) -> str:
        return f"{self.root}/kkt/{check_level(kkt, 'kkt')}/alert/{check_level(code, 'code')}"

    def event(self, kkt: str) -> str:
        return f"{self.root}/kkt/{check_level(kkt, 'kkt')}/event"

    def command(self, name: str) -> str:
        return f"{self.root}/cmd/{check_level(name, 'command')}"

    def response(self, name: str) -> str:
        return f"{self.command(name)}/response"

    def commands(self) -> str:
        """The filter the agent subscribes to: every command name, not the responses."""
        return f"{self.root}/cmd/+"

    def parse(self, topic: str) -> ParsedTopic | None:
        """Name the parts of a topic of this prefix (any site); None if it is not one."""
        head = f"{self.prefix}/"
        if not topic.startswith(head):
            return None
        site, *rest = topic[len(head) :].split("/")
        if not site or not rest:
            return None
        return _parse_rest(site, rest)


def _parse_rest(site: str, rest: list[str]) -> ParsedTopic | None:
    match rest:
        case ["agent", ("status" | "health") as kind]:
            return ParsedTopic(site, kind)
        case ["kkt", kkt, ("state" | "event") as kind] if kkt:
            return ParsedTopic(site, kind, kkt=kkt)
        case ["kkt", kkt, "alert", code] if kkt and code:
            return ParsedTopic(site, "alert", kkt=kkt, code=code)
        case ["cmd", name] if name:
            return ParsedTopic(site, "command", command=name)
        case ["cmd", name, "response"] if name:
            return ParsedTopic(site, "response", command=name)
    return None
