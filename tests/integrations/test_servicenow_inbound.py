"""Changes made in ServiceNow come back to our incidents: mapped from the record, applied once,
audited as the person who made them, never our own echo."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from conftest import Clock
from watchkeeper.integrations import itsm_apply
from watchkeeper.integrations.itsm import MARKER, Field, Outcome
from watchkeeper.integrations.servicenow.config import ServiceNowConfig
from watchkeeper.integrations.servicenow.mapping import record_changes
from watchkeeper.lifecycle import Action
from watchkeeper.service import Watchkeeper
from watchkeeper.storage import audit, queries
from watchkeeper.storage import itsm as store

CFG = ServiceNowConfig(instance_url="https://acme.service-now.com", username="wk.integration", password="pw")
SYS_ID = "9d385017c611228701d22104cc95c371"


def record(**fields: str) -> dict[str, str]:
    base = {"sys_id": SYS_ID, "number": "INC0010001", "state": "2", "sys_mod_count": "3",
            "sys_updated_by": "beth.anglin", "sys_updated_on": "2026-11-22 06:10:00",
            "correlation_id": "watchkeeper:1", "assigned_to": ""}
    return {**base, **fields}


def open_incident(service: Watchkeeper) -> int:
    body = orjson.dumps({"service": "checkout", "name": "HighErrorRate", "summary": "5xx above 5%",
                         "severity": "critical"})
    return service.ingest("events", body, "application/json", "token:test").opened[0]


def link(service: Watchkeeper, incident_id: int, clock: Clock) -> None:
    with service.db.write() as conn:
        store.add_link(conn, store.Link("servicenow", incident_id, SYS_ID, "INC0010001"), clock.now)


# -- the record → changes table ------------------------------------------------------------------
@pytest.mark.parametrize(("state", "ours"), [
    ("1", "open"), ("2", "acknowledged"), ("3", "acknowledged"), ("6", "resolved"), ("7", "resolved"),
    ("8", "resolved"),
])
def test_each_state_there_means_a_state_here(state: str, ours: str) -> None:
    [change] = record_changes(record(state=state), CFG, {})
    assert (change.field, change.value, change.claimed) == (Field.STATE, ours, 1)


def test_an_unknown_state_is_ignored() -> None:
    assert record_changes(record(state="42"), CFG, {}) == []


def test_our_own_update_is_not_a_change() -> None:
    mine = record(state="6", sys_updated_by="wk.integration", assigned_to="Beth Anglin")
    assert record_changes(mine, CFG, {"state": "6"}) == []


def test_a_state_someone_else_set_after_ours_is_a_change_even_if_we_updated_last() -> None:
    # Beth put it on hold, then our next work note made us the last updater: her state still counts
    [change] = record_changes(record(state="3", sys_updated_by="wk.integration"), CFG, {"state": "2"})
    assert change.value == "acknowledged"


def test_display_value_records_and_assignee() -> None:
    polled = {k: {"value": v, "display_value": v} for k, v in record().items()}
    polled["assigned_to"] = {"value": "5137153cc611227c000bbd1bd8cd2005", "display_value": "Beth Anglin"}
    found = {c.field: c for c in record_changes(polled, CFG, {})}
    assert found[Field.ASSIGNEE].value == "Beth Anglin"
    assert found[Field.STATE].key == f"{SYS_ID}:3:state:2"


def test_work_notes_ours_are_left_out_and_keys_are_stable() -> None:
    theirs = record_changes(record(work_notes="restarted the pool"), CFG, {})
    again = record_changes(record(work_notes="restarted the pool", sys_mod_count="4"), CFG, {})
    note = [c for c in theirs if c.field is Field.NOTE]
    assert [c.value for c in note] == ["restarted the pool"]
    assert note[0].key == next(c for c in again if c.field is Field.NOTE).key  # same note, another version
    assert not [c for c in record_changes(record(work_notes=f"{MARKER}\nacknowledged"), CFG, {})
                if c.field is Field.NOTE]


@pytest.mark.parametrize("hostile", [{}, {"sys_id": ""}, {"sys_id": SYS_ID, "state": {"value": None}},
                                     {"sys_id": SYS_ID, "state": ["6"]}, {"sys_id": SYS_ID, "number": 7}])
def test_odd_records_give_no_changes_or_harmless_ones(hostile: dict[str, object]) -> None:
    for change in record_changes(hostile, CFG, {}):
        assert change.field in (Field.STATE, Field.ASSIGNEE, Field.NOTE)


# -- applying ------------------------------------------------------------------------------------
def test_resolved_there_resolves_here_once_audited_as_them(service: Watchkeeper, clock: Clock) -> None:
    incident_id = open_incident(service)
    link(service, incident_id, clock)
    changes = record_changes(record(state="6", correlation_id=f"watchkeeper:{incident_id}"), CFG, {})
    [result] = itsm_apply.apply(service.db, clock, changes)
    assert result.outcome is Outcome.APPLIED and result.incident_id == incident_id
    with service.db.read() as conn:
        assert queries.get_incident(conn, incident_id).status.value == "resolved"
        last = list(audit.records(conn, subject=f"incident:{incident_id}"))[-1]
    assert (last.kind, last.actor, last.payload["via"]) == ("incident.resolved", "servicenow:beth.anglin",
                                                             "servicenow")
    assert "INC0010001 state 6 (Resolved)" in last.payload["detail"]
    [again] = itsm_apply.apply(service.db, clock, changes)  # the business rule's call and the next poll
    assert again.outcome is Outcome.DUPLICATE
    assert service.verify_audit().ok


def test_forward_only_and_reopen(service: Watchkeeper, clock: Clock) -> None:
    incident_id = open_incident(service)
    link(service, incident_id, clock)
    service.act(incident_id, Action.MITIGATE, "token:alice")
    [held] = itsm_apply.apply(service.db, clock, record_changes(record(state="3", sys_mod_count="5"), CFG, {}))
    assert held.outcome is Outcome.NO_CHANGE  # on hold there does not take our mitigation back
    itsm_apply.apply(service.db, clock, record_changes(record(state="6", sys_mod_count="6"), CFG, {}))
    itsm_apply.apply(service.db, clock, record_changes(record(state="2", sys_mod_count="7"), CFG, {}))
    with service.db.read() as conn:
        kinds = [r.kind for r in audit.records(conn, subject=f"incident:{incident_id}")]
        assert queries.get_incident(conn, incident_id).status.value == "acknowledged"
    assert kinds[-3:] == ["incident.resolved", "incident.reopened", "incident.acknowledged"]


def test_assignee_and_note_become_ours(service: Watchkeeper, clock: Clock) -> None:
    incident_id = open_incident(service)
    link(service, incident_id, clock)
    changes = record_changes(record(assigned_to="Beth Anglin", work_notes="pool restarted", state="1"), CFG, {})
    outcomes = {r.change.field: r.outcome for r in itsm_apply.apply(service.db, clock, changes)}
    assert outcomes == {Field.STATE: Outcome.NO_CHANGE, Field.ASSIGNEE: Outcome.APPLIED, Field.NOTE: Outcome.APPLIED}
    view = service.incident(incident_id)
    assert view["assignee"] == "Beth Anglin"
    assert [e["text"] for e in view["timeline"] if e["kind"] == "incident.commented"] == ["pool restarted"]


def test_an_unlinked_ticket_changes_nothing_unless_vouched_for(service: Watchkeeper, clock: Clock) -> None:
    incident_id = open_incident(service)
    changes = record_changes(record(state="6", correlation_id=f"watchkeeper:{incident_id}"), CFG, {})
    [result] = itsm_apply.apply(service.db, clock, changes, vouch=lambda _c, _i, _e: False)
    assert result.outcome is Outcome.UNLINKED
    fresh = record_changes(record(state="6", sys_mod_count="9", correlation_id=f"watchkeeper:{incident_id}"),
                           CFG, {})
    seen: list[tuple[int, str]] = []

    def vouch(_conn: object, claimed: int, external_id: str) -> bool:
        seen.append((claimed, external_id))
        return True

    [result] = itsm_apply.apply(service.db, clock, fresh, vouch=vouch)
    assert result.outcome is Outcome.APPLIED and seen == [(incident_id, SYS_ID)]
    with service.db.read() as conn:
        assert store.link_by_external(conn, "servicenow", SYS_ID) is not None


def test_keys_are_pruned_by_age(service: Watchkeeper, clock: Clock) -> None:
    with service.db.write() as conn:
        assert store.remember(conn, "servicenow", "k" * 300, clock.now, None, "applied")
        assert not store.remember(conn, "servicenow", "k" * 300, clock.now, None, "applied")
        assert store.seen(conn, "servicenow", "k" * 300)
        assert store.forget_before(conn, datetime(2030, 1, 1, tzinfo=UTC)) == 1


def test_oversized_values_are_cut_not_refused(service: Watchkeeper, clock: Clock) -> None:
    incident_id = open_incident(service)
    link(service, incident_id, clock)
    huge = record(assigned_to="B" * 5000, sys_updated_by="u" * 5000, work_notes="n" * 50_000, sys_mod_count="9" * 300)
    results = itsm_apply.apply(service.db, clock, record_changes(huge, CFG, {}))
    assert {r.outcome for r in results} == {Outcome.APPLIED}  # on PostgreSQL too: no value too long for a column
    view = service.incident(incident_id)
    assert len(view["assignee"]) == 256
    assert {len(e["actor"]) for e in view["timeline"] if e["kind"] == "incident.assigned"} == {len("servicenow:") + 128}
