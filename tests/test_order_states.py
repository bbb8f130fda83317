"""One table of order statuses (orders/states.py) and the credibility recompute moved after
commit (marketplace/events.py, providers/credibility/store.py)."""

import re

import order_support as osup
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from catalog import reviews
from marketplace import events
from marketplace.models import Organisation
from orders import queries, settlement, sla, states, workflow
from orders.models import Order
from providers import credibility
from providers.models import CredibilityDirty, CredibilitySnapshot


def _check_values(table, name: str) -> set[str]:
    for constraint in table.constraints:
        if getattr(constraint, "name", None) and constraint.name.endswith(name) \
                and hasattr(constraint, "sqltext"):
            return set(re.findall(r"'([a-z_]+)'", str(constraint.sqltext)))
    raise AssertionError(f"no CHECK constraint {name}")


# ------------------------------------------------------------------ (a) one table

def test_the_models_check_constraint_allows_exactly_the_tables_statuses():
    assert _check_values(Order.__table__, "status") == set(states.STATES)
    assert Order.__table__.c.status.default.arg == states.INITIAL


def test_labels_and_badges_come_from_the_table():
    for value, row in states.STATES.items():
        assert workflow.status_label(value) == row.label
        assert workflow.status_badge(value) == row.badge
        assert workflow.STATUS_LABELS[value] == (row.label, row.label_zh, row.badge)
        assert row.label and row.label_zh and row.group in states.GROUPS
        assert row.acts_next in states.ACTORS


def test_every_status_list_is_derived_from_the_table():
    every = set(states.STATES)
    assert set(states.OPEN) | set(states.CLOSED) == every
    assert not set(states.OPEN) & set(states.CLOSED)
    assert set(states.TERMINAL) < set(states.CLOSED)
    assert set(states.SETTLEABLE) == set(states.CLOSED) - set(states.TERMINAL)
    assert set(states.LAPSABLE) < set(states.OPEN)
    assert set(states.CLOCKED) < set(states.OPEN)
    # every module reads the table, none keeps a copy
    assert workflow.OPEN_STATUSES == states.OPEN
    assert workflow.CLOSED_STATUSES == states.CLOSED
    assert workflow.TERMINAL_STATUSES == states.TERMINAL
    assert workflow.LAPSABLE_STATUSES == states.LAPSABLE
    assert {s: r.deadline for s, r in states.STATES.items() if r.deadline} == sla.DEADLINE_COLUMN
    assert set(sla.ACCEPT_STATUSES) | set(sla.WORK_STATUSES) == set(sla.CLOCKED_STATUSES)
    assert settlement.SETTLEABLE_STATUSES == states.SETTLEABLE
    assert set(reviews.REVIEWABLE_STATUSES) <= set(states.CLOSED)
    assert set(queries.GROUPS["all"]) == every
    assert set().union(*(queries.GROUPS[t] for t in ("open", "completed", "closed"))) == every
    for side, waiting in queries.NEEDS_ACTION.items():
        assert {states.STATES[s].acts_next for s in waiting} == {side}
        assert set(waiting) <= set(states.OPEN)
    # open states without a clock say why
    assert set(states.WAITING_REASONS) == set(states.OPEN) - set(states.CLOCKED)


def test_every_transition_moves_between_statuses_of_the_table():
    for transition in workflow.TRANSITIONS.values():
        assert transition.to in states.STATES
        for sources in transition.allowed.values():
            assert sources <= set(states.STATES)
    # nothing leaves a terminal state
    for transition in workflow.TRANSITIONS.values():
        for sources in transition.allowed.values():
            assert not sources & set(states.TERMINAL), transition.name


def test_the_migrated_database_accepts_the_tables_statuses_and_nothing_else(session):
    p = osup.parties(session)
    order = osup.order(session, p)
    session.commit()
    for value in states.VALUES:
        osup.set_status(session, order, value)
        assert order.status == value
    with pytest.raises(IntegrityError):
        session.execute(text("UPDATE purchase_order SET status = 'on_hold' WHERE id = :id"),
                        {"id": order.id})
    session.rollback()


# ------------------------------------------------------------------ (b) after commit

def _stored(session, org_id):
    session.expire_all()
    return session.execute(select(Organisation.credibility_score,
                                  Organisation.credibility_level)
                           .where(Organisation.id == org_id)).one()


def test_a_transition_marks_both_parties_and_the_score_moves_only_after_the_drain(session):
    p = osup.parties(session)
    order = osup.order(session, p, status="in_progress")
    credibility.recompute_many(session, [p.buyer_org.id, p.provider_org.id])
    session.commit()
    before = _stored(session, p.provider_org.id)
    snapshots = session.scalar(select(func.count()).select_from(CredibilitySnapshot))

    workflow.transition(session, order, "dispute", p.buyer, note="Nothing was done.")
    session.commit()

    dirty = set(session.scalars(select(CredibilityDirty.organisation_id)))
    assert dirty == {p.buyer_org.id, p.provider_org.id}
    assert _stored(session, p.provider_org.id) == before  # not in the buyer's request
    assert session.scalar(select(func.count()).select_from(CredibilitySnapshot)) == snapshots
    # the live breakdown already knows; the stored badge follows after the drain
    live = credibility.current(session, session.get(Organisation, p.provider_org.id))
    assert live.score < before[0]

    report = osup.drain_credibility(session)
    session.commit()
    assert report.organisations == 2
    assert _stored(session, p.provider_org.id) == (live.score, live.level)
    assert session.scalar(select(func.count()).select_from(CredibilityDirty)) == 0


def test_a_rolled_back_transition_leaves_no_mark(session):
    p = osup.parties(session)
    order = osup.order(session, p, status="paid")
    session.commit()
    workflow.transition(session, order, "accept", p.provider)
    assert session.scalar(select(func.count()).select_from(CredibilityDirty)) == 2
    session.rollback()
    assert session.scalar(select(func.count()).select_from(CredibilityDirty)) == 0


def test_transitions_that_move_no_input_mark_nobody(session):
    p = osup.parties(session)
    order = osup.order(session, p, status="accepted")
    session.commit()
    workflow.transition(session, order, "start", p.provider)
    session.commit()
    assert session.scalar(select(func.count()).select_from(CredibilityDirty)) == 0


def test_the_workflow_publishes_and_does_not_call_credibility(session, monkeypatch):
    seen = []

    @events.subscribe(events.OrderTransitioned)
    def spy(session_, event):
        seen.append(event)

    try:
        monkeypatch.setattr(credibility.store, "recompute_many",
                            lambda *a, **k: pytest.fail("recomputed inside the transition"))
        p = osup.parties(session)
        order = osup.order(session, p, status="delivered")
        session.commit()
        workflow.transition(session, order, "complete", p.buyer)
    finally:
        events._in_transaction[events.OrderTransitioned].remove(spy)
    assert [(e.order_id, e.name, e.from_status, e.to_status, e.actor_role) for e in seen] == [
        (order.id, "complete", "delivered", "completed", "buyer")]


# ------------------------------------------------------------------ (c) the drain job

def test_the_drain_is_idempotent(session):
    p = osup.parties(session)
    order = osup.order(session, p, status="in_progress")
    session.commit()
    workflow.transition(session, order, "dispute", p.buyer, note="Late.")
    session.commit()
    first = osup.drain_credibility(session)
    session.commit()
    scores = _stored(session, p.provider_org.id)
    snapshots = session.scalar(select(func.count()).select_from(CredibilitySnapshot))
    assert first.organisations == 2

    again = osup.drain_credibility(session)
    session.commit()
    assert (again.organisations, again.changed, again.snapshots) == (0, 0, 0)
    assert _stored(session, p.provider_org.id) == scores
    assert session.scalar(select(func.count()).select_from(CredibilitySnapshot)) == snapshots


def test_a_mark_made_while_draining_is_not_lost(session):
    p = osup.parties(session)
    credibility.mark_dirty(session, [p.provider_org.id])
    session.commit()
    read = credibility.store._dirty_rows(session, None)  # what a drain read...
    credibility.mark_dirty(session, [p.provider_org.id])  # ...then another change marked
    credibility.store._clear_dirty(session, read)
    session.commit()
    assert session.scalar(select(CredibilityDirty.marks)) == 2  # still waiting
    assert osup.drain_credibility(session).organisations == 1
    session.commit()
    assert session.scalar(select(func.count()).select_from(CredibilityDirty)) == 0


def test_refresh_credibility_command_drains_and_a_second_run_does_nothing(app, session,
                                                                          tmp_path):
    app.config["JOB_LOCK_DIR"] = str(tmp_path)
    p = osup.parties(session)
    order = osup.order(session, p, status="in_progress")
    session.commit()
    workflow.transition(session, order, "dispute", p.buyer, note="Late.")
    session.commit()
    runner = app.test_cli_runner()
    first = runner.invoke(args=["refresh-credibility"])
    assert first.exit_code == 0, first.output
    assert "recomputed for 2 organisations" in first.output
    second = runner.invoke(args=["refresh-credibility"])
    assert second.exit_code == 0, second.output
    assert "recomputed for 0 organisations" in second.output
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(CredibilityDirty)) == 0


def test_the_nightly_recompute_clears_the_queue(session):
    p = osup.parties(session)
    credibility.mark_dirty(session, [p.buyer_org.id, p.provider_org.id])
    credibility.recompute_all(session)
    session.commit()
    assert session.scalar(select(func.count()).select_from(CredibilityDirty)) == 0
