"""Health snapshots -> problems with hysteresis and ``block_at`` (DESIGN.md section 3).

Two layers, both deterministic (the clock comes in as ``now``):

* :func:`evaluate` (in :mod:`kktmon.agent.checks`) maps one snapshot, plus what earlier
  polls left in a :class:`DeviceHistory`, to candidate problems with the severities and
  owners of fiscal-health.md section 5. No hysteresis, no ``since``.
* :class:`RuleEngine` keeps per-device counters and yields transitions: a problem is
  raised after it held for ``raise_after`` polls (DEVICE_UNREACHABLE after
  ``unreachable_after_polls``; the notices FN_REPLACED and REGISTRATION_CHANGED at once),
  cleared after it was absent for ``clear_after`` polls, and ``changed`` once a new
  severity held for ``raise_after`` polls. ``since`` is the first poll of the streak.
  The state round-trips through JSON so the agent keeps it in ``state_dir``.

A snapshot whose link failed (busy, unreachable, garbled, or marked stale) says nothing
about the drive: it only feeds DEVICE_BUSY / DEVICE_UNREACHABLE; every other problem
keeps its counters and last facts, and ``block_at`` stays at the last good value.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from kktmon.agent.checks import (
    LINK_CODES,
    NOTICE_CODES,
    RAISED,
    RANK,
    DeviceHistory,
    block_deadline,
    evaluate,
    is_stale,
)
from kktmon.agent.config import RulesConfig
from kktmon.protocol.health import HealthSnapshot, Problem
from kktmon.protocol.problems import OWNERS, ProblemCode, Severity

__all__ = [
    "LINK_CODES",
    "NOTICE_CODES",
    "OWNERS",
    "RAISED",
    "DeviceHistory",
    "Evaluation",
    "ProblemCode",
    "RuleEngine",
    "RulesConfig",
    "Transition",
    "TransitionKind",
    "block_deadline",
    "evaluate",
    "is_stale",
]


class TransitionKind(StrEnum):
    RAISED = "raised"
    CLEARED = "cleared"
    CHANGED = "changed"


class Transition(BaseModel):
    """One event for the outbox: ``problem`` carries ``since``; ``at`` is this poll's ``now``."""

    model_config = ConfigDict(frozen=True)

    kind: TransitionKind
    problem: Problem
    previous_severity: Severity | None = None
    at: datetime


class Evaluation(BaseModel):
    """One poll's outcome: the snapshot completed with problems and ``block_at``."""

    snapshot: HealthSnapshot
    transitions: list[Transition]
    problems: list[Problem]


class _Track(BaseModel):
    """Hysteresis counters of one (device, code)."""

    latest: Problem
    since: datetime
    seen: int = 0
    missing: int = 0
    severity: Severity | None = None  # the reported one; None until raised
    pending: Severity | None = None  # a new severity waiting to hold long enough
    pending_seen: int = 0

    def published(self) -> Problem:
        return self.latest.model_copy(update={"severity": self.severity, "since": self.since})


class _DeviceState(BaseModel):
    tracks: dict[str, _Track] = Field(default_factory=dict)
    history: DeviceHistory = Field(default_factory=DeviceHistory)


class _EngineState(BaseModel):
    format: Literal["kktmon-rules/1"] = "kktmon-rules/1"
    devices: dict[str, _DeviceState] = Field(default_factory=dict)


class RuleEngine:
    """Hysteresis over :func:`evaluate`, one set of counters per device key.

    The key is the caller's (a configured name or URL), because the serial is unknown
    while a register has never answered.
    """

    def __init__(self, rules: RulesConfig) -> None:
        self.rules = rules  # may be replaced on reload; the counters survive
        self._state = _EngineState()

    def observe(self, device: str, snapshot: HealthSnapshot, now: datetime) -> Evaluation:
        """Feed one poll; returns the completed snapshot and the transitions it caused."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        state = self._state.devices.setdefault(device, _DeviceState())
        stale = is_stale(snapshot)
        if not stale:
            history = state.history = state.history.advanced(snapshot, now, self.rules)
            deadline = block_deadline(snapshot, self.rules, now=now, history=history)
            history.block_at, history.block_reason = deadline or (None, None)
        found = evaluate(snapshot, self.rules, now=now, history=state.history)
        candidates = {problem.code: problem for problem in found}
        codes = set(candidates) | set(state.tracks)
        if stale:  # only the link spoke: every other problem stays as it was
            codes = {code for code in codes if code in LINK_CODES}
        steps = (self._step(state, code, candidates.get(code), now) for code in sorted(codes))
        transitions = [step for step in steps if step is not None]
        problems = self.active(device)
        completed = snapshot.model_copy(
            update={
                "problems": problems,
                "block_at": state.history.block_at,
                "block_reason": state.history.block_reason,
            }
        )
        return Evaluation(snapshot=completed, transitions=transitions, problems=problems)

    def _step(
        self, state: _DeviceState, code: str, seen: Problem | None, now: datetime
    ) -> Transition | None:
        track = state.tracks.get(code)
        if seen is None:
            return self._absent(state, code, now) if track is not None else None
        if track is None:
            track = state.tracks[code] = _Track(latest=seen, since=now)
        track.latest, track.seen, track.missing = seen, track.seen + 1, 0
        if track.severity is not None:
            return self._maybe_change(track, code, seen.severity, now)
        if track.seen < self._raise_after(code):
            return None
        track.severity = seen.severity
        return Transition(kind=TransitionKind.RAISED, problem=track.published(), at=now)

    def _absent(self, state: _DeviceState, code: str, now: datetime) -> Transition | None:
        track = state.tracks[code]
        track.seen, track.missing = 0, track.missing + 1
        if track.severity is not None and track.missing < self.rules.clear_after:
            return None
        del state.tracks[code]  # cleared, or a streak that never got raised
        if track.severity is None:
            return None
        return Transition(kind=TransitionKind.CLEARED, problem=track.published(), at=now)

    def _maybe_change(
        self, track: _Track, code: str, severity: Severity, now: datetime
    ) -> Transition | None:
        if severity == track.severity:
            track.pending, track.pending_seen = None, 0
            return None
        track.pending_seen = track.pending_seen + 1 if track.pending == severity else 1
        track.pending = severity
        if track.pending_seen < min(self._raise_after(code), self.rules.raise_after):
            return None
        previous, track.severity = track.severity, severity
        track.pending, track.pending_seen = None, 0
        return Transition(
            kind=TransitionKind.CHANGED,
            problem=track.published(),
            previous_severity=previous,
            at=now,
        )

    def _raise_after(self, code: str) -> int:
        if code in NOTICE_CODES:
            return 1  # a change is a fact the moment it is seen; it cannot "hold"
        if code == ProblemCode.DEVICE_UNREACHABLE:
            return self.rules.unreachable_after_polls
        return self.rules.raise_after

    def active(self, device: str) -> list[Problem]:
        """The raised problems of a device, worst first."""
        state = self._state.devices.get(device)
        if state is None:
            return []
        raised = [t.published() for t in state.tracks.values() if t.severity is not None]
        return sorted(raised, key=lambda p: (-RANK[p.severity], p.code))

    @property
    def devices(self) -> list[str]:
        return sorted(self._state.devices)

    def forget(self, device: str) -> None:
        """Drop a device removed from the configuration."""
        self._state.devices.pop(device, None)

    def to_json(self) -> str:
        return self._state.model_dump_json()

    @classmethod
    def from_json(cls, text: str | bytes, rules: RulesConfig) -> RuleEngine:
        """Restore persisted counters; raises ``ValueError`` on a corrupt or foreign file."""
        engine = cls(rules)
        engine._state = _EngineState.model_validate_json(text)
        return engine
