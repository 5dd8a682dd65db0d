"""The state facts the fleet view needs beyond what tickets used: the shift (its state
and when it opened) and the age of the oldest unsent document, read from a state as the
intake reads every state, bounded like the other facts."""

from __future__ import annotations

import json
from datetime import timedelta

from ticket_facts import T0

from kktmon.protocol.health import DeviceInfo, HealthSnapshot, OfdQueue, ShiftInfo, ShiftState
from kktmon.ticketing import text
from kktmon.ticketing.intake import Intake

STATE = "kktmon/v1/store-1/kkt/shtrih-0012345678/state"
SNAPSHOT = HealthSnapshot(
    taken_at=T0,
    device=DeviceInfo(vendor="shtrih", model="ШТРИХ-М-01Ф", serial="0012345678"),
    ofd=OfdQueue(unsent_count=3, first_unsent_at=T0 - timedelta(hours=50), oldest_unsent_age_h=50),
    shift=ShiftInfo(state=ShiftState.OPEN, number=7, opened_at=T0 - timedelta(hours=5)),
)


def _facts(payload: bytes) -> dict[str, object] | None:
    result = Intake("kktmon/v1").translate(STATE, payload, T0)
    return None if result.state is None else dict(result.state.facts)


def test_a_state_keeps_the_shift_and_the_oldest_unsent_age() -> None:
    facts = _facts(SNAPSHOT.to_json().encode())
    assert facts is not None
    assert facts["shift_state"] == "open"
    assert facts["shift_opened_at"] == (T0 - timedelta(hours=5)).isoformat()
    assert facts["oldest_unsent_age_h"] == 50
    # The same facts a ticket's snapshot gives (text.snapshot_facts of the full model).
    assert {k: facts[k] for k in ("shift_state", "shift_opened_at", "oldest_unsent_age_h")} == {
        k: text.snapshot_facts(SNAPSHOT)[k]
        for k in ("shift_state", "shift_opened_at", "oldest_unsent_age_h")
    }


def test_nothing_unsent_has_no_age_and_a_closed_shift_says_so() -> None:
    quiet = SNAPSHOT.model_copy(
        update={
            "ofd": OfdQueue(unsent_count=0, oldest_unsent_age_h=0.0),
            "shift": ShiftInfo(state=ShiftState.CLOSED),
        }
    )
    facts = _facts(quiet.to_json().encode())
    assert facts is not None and facts["shift_state"] == "closed"
    assert "oldest_unsent_age_h" not in facts and "shift_opened_at" not in facts


def test_a_shift_or_age_of_the_wrong_kind_rejects_the_state() -> None:
    body = json.loads(SNAPSHOT.to_json())
    body["shift"]["state"] = "half-open"
    assert Intake("kktmon/v1").translate(STATE, json.dumps(body).encode(), T0).rejected
    body = json.loads(SNAPSHOT.to_json())
    body["ofd"]["oldest_unsent_age_h"] = float("inf")
    assert Intake("kktmon/v1").translate(STATE, json.dumps(body).encode(), T0).rejected
