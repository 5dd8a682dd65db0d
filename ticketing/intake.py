"""MQTT messages of the contract -> facts for the ticket store (pure translation).

Live traffic (events, states, agent statuses) arrives on shared subscriptions; on start
the reconciler reads the retained alerts and statuses, which brokers never hand to
shared subscribers. Payloads are validated with the contract models; a message that
does not validate is logged and dropped (it can never become valid by retrying).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError

from kktmon.protocol.contract import AgentStatus, Event, EventKind
from kktmon.protocol.health import HealthSnapshot, Problem
from kktmon.protocol.problems import is_fn_scoped
from kktmon.protocol.topics import ParsedTopic, Topics
from kktmon.ticketing import lifecycle as lc
from kktmon.ticketing.store import RegisterFacts
from kktmon.ticketing.text import snapshot_facts

log = logging.getLogger(__name__)

Fact = lc.ProblemRaised | lc.ProblemCleared | lc.AgentSeen


@dataclass(frozen=True)
class Translated:
    """What one message means: a fact for the store, a state to record, or nothing."""

    fact: Fact | None = None
    state: RegisterFacts | None = None


class Intake:
    """Turns (topic, payload) into store inputs. Stateless: register facts for ticket
    texts come from the store, which every worker's states reach."""

    def __init__(self, prefix: str) -> None:
        self.topics = Topics(prefix, "_")

    def translate(self, topic: str, payload: bytes, received_at: datetime) -> Translated:
        parsed = self.topics.parse(topic)
        if parsed is None:
            return Translated()
        try:
            return self._translate(parsed, payload, received_at)
        except (ValidationError, ValueError) as exc:
            log.warning("dropping malformed message on %s: %s", topic, _first_line(exc))
            return Translated()

    def _translate(self, topic: ParsedTopic, payload: bytes, received_at: datetime) -> Translated:
        if topic.kind == "event" and topic.kkt:
            return Translated(
                fact=self._event(topic.site, topic.kkt, Event.model_validate_json(payload))
            )
        if topic.kind == "state" and topic.kkt:
            snapshot = HealthSnapshot.model_validate_json(payload)
            facts = snapshot_facts(snapshot)
            state = RegisterFacts(
                site=topic.site, kkt=topic.kkt, facts=facts, taken_at=snapshot.taken_at
            )
            return Translated(state=state)
        if topic.kind == "status":
            status = AgentStatus.model_validate_json(payload)
            return Translated(
                fact=lc.AgentSeen(
                    site=topic.site, state=status.state, session=status.session, at=received_at
                )
            )
        if topic.kind == "alert" and topic.kkt and topic.code:
            return Translated(
                fact=self._alert(topic.site, topic.kkt, topic.code, payload, received_at)
            )
        return Translated()

    def _event(self, site: str, kkt: str, event: Event) -> Fact:
        problem = event.problem
        if event.kind is EventKind.CLEARED:
            serial = problem.facts.get("fn_serial") if is_fn_scoped(problem.code) else None
            return lc.ProblemCleared(
                site=site,
                kkt=kkt,
                code=problem.code,
                fn_serial=str(serial) if serial else None,
                event_id=str(event.id),
                at=event.at,
            )
        return lc.ProblemRaised(
            site=site,
            kkt=kkt,
            problem=problem,
            event_id=str(event.id),
            at=event.at,
        )

    def _alert(self, site: str, kkt: str, code: str, payload: bytes, at: datetime) -> Fact:
        if not payload:  # an emptied retained alert: the agent cleared it
            return lc.ProblemCleared(site=site, kkt=kkt, code=code, at=at)
        problem = Problem.model_validate_json(payload)
        return lc.ProblemRaised(
            site=site,
            kkt=kkt,
            problem=problem,
            at=problem.since or at,
        )


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
