"""ATOL command answers (atol.md sections 4-5): the shape around the fields, and refusals.

Pure functions, no link layer: :func:`answer` takes a task body as both link layers carry
it (``password(2) command params``) and returns the command answer in the shape of
section 4.2: ``44 ...`` for 3Fh, ``55 mode flags`` for 45h, ``err ...`` for A5h and
``55 err data`` for everything else; the fields come from
:mod:`kktmon.simulators.atol.fields`.

Refusals: a command outside the allowlist of :mod:`kktmon.protocol.atol.commands`, or one
the scenario lists in ``unsupported`` (``"A4"`` for all of A4h, ``"A43D"`` for one
sub-command), is answered 7Ah; a wrong access password 8Ch; FN queries that make no sense
in the FN's phase D4h, as the Shtrih-M emulator refuses its twins.
"""

from __future__ import annotations

from dataclasses import dataclass

from kktmon.protocol.atol import commands as cmd
from kktmon.protocol.atol.commands import (
    ANSWER_OK,
    OK_CODES,
    STATE_PREFIX,
    UNSUPPORTED,
    is_allowed,
    password_bytes,
)
from kktmon.simulators.atol.fields import COMMANDS, Context, RefusalError
from kktmon.simulators.scenario import DeviceState

WRONG_PASSWORD = 0x8C
_PREFIXES = {cmd.STATE: bytes([STATE_PREFIX]), cmd.STATUS_CODE: bytes([ANSWER_OK])}


@dataclass(frozen=True)
class Answer:
    """A command answer and its error code (00 for success)."""

    data: bytes
    error: int = 0

    @property
    def ok(self) -> bool:
        return self.error in OK_CODES


# ------------------------------------------------------------------ the entry point


def command_allowed(command: bytes) -> bool:
    """``command`` = command byte and params (no password): on the read-only allowlist?"""
    return bool(command) and is_allowed(command[0], command[1:])


def refusal(code: int, error: int) -> Answer:
    """``err`` alone for A5h (its error comes first), ``55 err`` for every other command."""
    return Answer(bytes([error]) if code == cmd.DEVICE_TYPE else bytes([ANSWER_OK, error]), error)


def _key(command: bytes) -> tuple[int, int | None]:
    code = command[0]
    return (code, command[1]) if cmd.ALLOWLIST[code].sub_codes else (code, None)


def _lacks(state: DeviceState, key: tuple[int, int | None]) -> bool:
    code, sub = key
    return state.lacks(code) or (sub is not None and state.lacks(code << 8 | sub))


def answer(ctx: Context, body: bytes, password: int) -> Answer:
    """The answer to one task body ``password(2) command params``."""
    command = body[2:]
    if not command_allowed(command) or _key(command) not in COMMANDS:
        return refusal(command[0] if command else 0, UNSUPPORTED)
    key = _key(command)
    if _lacks(ctx.state, key):
        return refusal(key[0], UNSUPPORTED)
    if body[:2] != password_bytes(password):
        return refusal(key[0], WRONG_PASSWORD)
    try:
        fields = COMMANDS[key](ctx)
    except RefusalError as exc:
        return refusal(key[0], exc.code)
    if key[0] == cmd.DEVICE_TYPE:
        return Answer(b"\x00" + fields)
    return Answer(_PREFIXES.get(key[0], bytes([ANSWER_OK, 0])) + fields)
