"""Issue 13, escrow: milestones that move money. The institution submits a milestone, the
buyer approves it (or asks for changes, with a reason) and the approval releases the
milestone's share from escrow (ledger ``milestone_release``, balanced, never more than escrow
holds); the timer approves after MILESTONE_AUTO_APPROVE_DAYS of silence, with one notice 3
days before; a dispute on a milestone and a ruling split only what is still held; the
completion releases the rest. Races (two tabs, the timer against "request changes", an
approval against a dispute) each win once or are refused with a message. Runs on SQLite and
PostgreSQL (TEST_DATABASES=postgres).
"""

import io
import re
import threading
from datetime import timedelta

import order_support as osup
import pytest
from conftest import csrf_token, post_form
from sqlalchemy import func, select

from marketplace.database import db, utcnow
from marketplace.models import Notification
from orders import ledger, milestones, services, timers, workflow
from orders.models import LedgerEntry, Milestone, Order, OrderEvent, Refund

PRICE = 500000  # ¥5,000.00, commission 10 %
SHARES = (3000, 3000, 4000)




@pytest.fixture
def deal(session):
    p = osup.parties(session)
    order = osup.funded_order(session, p)
    return p, order


def _releases(session, order_id):
    return session.scalars(select(LedgerEntry.amount).where(
        LedgerEntry.order_id == order_id, LedgerEntry.kind == "milestone_release",
        LedgerEntry.account == "escrow").order_by(LedgerEntry.id)).all()


def _balanced(session, order_id):
    balances = ledger.balances(session, order_id)
    assert sum(balances.values()) == 0, balances
    postings = session.execute(select(LedgerEntry.posting, func.sum(LedgerEntry.amount))
                               .where(LedgerEntry.order_id == order_id)
                               .group_by(LedgerEntry.posting)).all()
    assert all(total == 0 for _posting, total in postings)
    return balances


def _notices(session, user, kind="order_milestone"):
    return session.scalars(select(Notification.title).where(
        Notification.user_id == user.id, Notification.kind == kind)
        .order_by(Notification.id)).all()


def test_approval_releases_the_milestone_share_and_completion_the_rest(session, deal):
    p, order = deal
    first, second, third = order.milestones
    assert milestones.amounts(order) == {first.id: 150000, second.id: 150000,
                                         third.id: 200000, None: 0}
    assert ledger.held_by_platform(ledger.balances(session, order.id)) == PRICE

    milestones.submit(session, order, p.provider, first.id, "Search done; report attached")
    session.commit()
    assert first.status == "submitted" and order.status == "in_progress"
    assert any("submitted" in t for t in _notices(session, p.buyer))
    milestones.approve(session, order, p.buyer, first.id)
    session.commit()
    assert first.status == "approved" and first.approved_by == "buyer"
    assert first.released_amount == 150000 and first.release_posting
    lines = {e.account: e.amount for e in ledger.entries(session, order.id)
             if e.posting == first.release_posting}
    assert lines == {"escrow": 150000, "platform_fee_revenue": -15000,
                     "provider_payable": -135000}
    balances = _balanced(session, order.id)
    assert ledger.held_by_platform(balances) == 350000
    assert any("approved" in t for t in _notices(session, p.provider))

    panel = ledger.money_panel(session, order)
    assert (panel["paid_in"], panel["held"], panel["released"], panel["fee"]) == (
        PRICE, 350000, 150000, 15000)
    assert [r["title"] for r in panel["releases"]] == ["Step 1"]

    services.deliver(session, order, p.provider, "All done")
    session.commit()
    services.complete(session, order, p.buyer, "Thanks")
    session.refresh(order)
    assert order.status == "completed"
    assert [m.status for m in order.milestones] == ["approved"] * 3
    assert [m.approved_by for m in order.milestones] == ["buyer", "completion", "completion"]
    balances = _balanced(session, order.id)
    assert balances["escrow"] == 0
    assert -(balances["provider_payable"] + balances["platform_fee_revenue"]) == PRICE
    assert _releases(session, order.id) == [150000]
    panel = ledger.money_panel(session, order)
    assert panel["at_close"] == 350000 and panel["held"] == 0


def test_request_changes_needs_a_reason_and_the_milestone_can_be_resubmitted(session, deal):
    p, order = deal
    first = order.milestones[0]
    milestones.submit(session, order, p.provider, first.id, "Draft")
    session.commit()
    with pytest.raises(services.OrderError, match="changed"):
        milestones.request_changes(session, order, p.buyer, first.id, "   ")
    session.rollback()
    milestones.request_changes(session, order, p.buyer, first.id, "Add the EU search")
    session.commit()
    assert first.status == "changes_requested" and first.decision_note == "Add the EU search"
    assert _releases(session, order.id) == []
    with pytest.raises(services.OrderError, match="(?i)changes were already requested"):
        milestones.approve(session, order, p.buyer, first.id)
    session.rollback()
    milestones.submit(session, order, p.provider, first.id, "EU search added")
    milestones.approve(session, order, p.buyer, first.id)
    session.commit()
    assert _releases(session, order.id) == [150000]


def test_roles_and_ownership(session, deal):
    p, order = deal
    first = order.milestones[0]
    with pytest.raises(workflow.NotAllowed):
        milestones.submit(session, order, p.buyer, first.id, "I did it myself")
    with pytest.raises(services.OrderError, match="not submitted"):
        milestones.approve(session, order, p.buyer, first.id)
    session.rollback()
    milestones.submit(session, order, p.provider, first.id, "Done")
    session.commit()
    for actor in (p.provider, p.staff, p.outsider):
        with pytest.raises(workflow.NotAllowed):
            milestones.approve(session, order, actor, first.id)
        with pytest.raises(workflow.NotAllowed):
            milestones.request_changes(session, order, actor, first.id, "No")
        session.rollback()
    with pytest.raises(services.OrderError):
        milestones.approve(session, order, p.buyer, 10**6)
    session.rollback()
    assert first.status == "submitted" and _releases(session, order.id) == []


def test_approving_twice_releases_once(session, deal):
    p, order = deal
    first = order.milestones[0]
    milestones.submit(session, order, p.provider, first.id, "Done")
    milestones.approve(session, order, p.buyer, first.id)
    session.commit()
    with pytest.raises(services.OrderError, match="already approved"):
        milestones.approve(session, order, p.buyer, first.id)
    session.rollback()
    assert _releases(session, order.id) == [150000]


def test_no_approval_while_a_dispute_is_open_or_after_cancellation(session, deal):
    p, order = deal
    first, second, _third = order.milestones
    milestones.submit(session, order, p.provider, first.id, "Done")
    milestones.submit(session, order, p.provider, second.id, "Done too")
    milestones.approve(session, order, p.buyer, first.id)
    session.commit()
    services.dispute(session, order, p.buyer, "The second step is copied", second.id)
    assert order.status == "disputed" and second.status == "disputed"
    with pytest.raises(services.OrderError, match="dispute is open"):
        milestones.approve(session, order, p.buyer, second.id)
    session.rollback()

    other = osup.funded_order(session, p)
    step = other.milestones[0]
    milestones.submit(session, other, p.provider, step.id, "Done")
    session.commit()
    services.cancel(session, other, p.staff, "Institution lost its licence")
    with pytest.raises(services.OrderError, match="cancelled"):
        milestones.approve(session, other, p.buyer, step.id)
    session.rollback()
    assert _releases(session, other.id) == []
    assert ledger.balances(session, other.id)["escrow"] == 0


def test_a_ruling_on_a_milestone_splits_only_what_is_still_held(session, deal):
    p, order = deal
    first, second, third = order.milestones
    milestones.submit(session, order, p.provider, first.id, "Done")
    milestones.approve(session, order, p.buyer, first.id)
    milestones.submit(session, order, p.provider, second.id, "Done")
    session.commit()
    services.dispute(session, order, p.buyer, "Step 2 is wrong", second.id)
    with pytest.raises(services.OrderError, match="still held"):
        services.resolve(session, order, p.staff, "partial", 400000, "Too much")
    session.rollback()
    services.resolve(session, order, p.staff, "full", None, "Step 2 and 3 not usable")
    session.refresh(order)
    assert order.status == "resolved" and order.ruling_refund == 350000
    assert [m.status for m in order.milestones] == ["approved", "ruled", "pending"]
    balances = _balanced(session, order.id)
    assert balances["escrow"] == 0
    # The released milestone stays with the institution; everything held went back.
    assert -(balances["provider_payable"] + balances["platform_fee_revenue"]) == 150000
    refund = session.scalar(select(Refund).where(Refund.order_id == order.id))
    assert refund.amount == 350000 and refund.status == "pending_transfer"
    assert third.released_amount == 0


def test_staff_cancellation_never_gives_back_released_money(session, deal):
    p, order = deal
    first = order.milestones[0]
    milestones.submit(session, order, p.provider, first.id, "Done")
    milestones.approve(session, order, p.buyer, first.id)
    session.commit()
    services.cancel(session, order, p.staff, "Provider stopped answering")
    balances = _balanced(session, order.id)
    assert order.status == "cancelled" and balances["escrow"] == 0
    assert balances["provider_payable"] == -135000 and balances["platform_cash"] == 150000
    refunded = session.scalar(select(func.sum(Refund.amount)).where(Refund.order_id == order.id))
    assert refunded == 350000


def test_the_timer_tells_the_buyer_once_then_approves_after_fourteen_days(session, deal):
    p, order = deal
    first, second, _ = order.milestones
    start = utcnow()
    milestones.submit(session, order, p.provider, first.id, "Done", now=start)
    milestones.submit(session, order, p.provider, second.id, "Done", now=start)
    session.commit()
    milestones.request_changes(session, order, p.buyer, second.id, "Missing the annex")
    session.commit()

    report = timers.run(session, start + timedelta(days=10), milestone_days=14)
    assert report.milestone_notices == 0 and not report.milestones_approved
    report = timers.run(session, start + timedelta(days=11, hours=1), milestone_days=14)
    assert report.milestone_notices == 1
    report = timers.run(session, start + timedelta(days=12), milestone_days=14)
    assert report.milestone_notices == 0  # once, not every night
    warned = [t for t in _notices(session, p.buyer) if "automatically" in t]
    assert len(warned) == 1
    report = timers.run(session, start + timedelta(days=14, minutes=1), milestone_days=14)
    assert report.milestones_approved == [f"{order.number}/1"]
    session.expire_all()
    first = session.get(Milestone, first.id)
    assert first.status == "approved" and first.approved_by == "timer"
    assert session.get(Milestone, second.id).status == "changes_requested"
    assert _releases(session, order.id) == [150000]
    report = timers.run(session, start + timedelta(days=15), milestone_days=14)
    assert not report.milestones_approved
    assert _releases(session, order.id) == [150000]


def test_the_timer_loses_to_the_buyers_request_for_changes(session, deal):
    """The timer picked the milestone as due, then the buyer asked for changes before it
    got to it: the timer's approval is refused and nothing is released."""
    p, order = deal
    first = order.milestones[0]
    start = utcnow() - timedelta(days=15)
    milestones.submit(session, order, p.provider, first.id, "Done", now=start)
    session.commit()
    due = milestones.due_for_approval(session, utcnow(), 14)
    assert due == [first.id]
    milestones.request_changes(session, order, p.buyer, first.id, "Not yet")
    session.commit()
    with pytest.raises(services.OrderError, match="(?i)changes were already requested"):
        milestones.approve(session, order, workflow.SYSTEM, first.id, by="timer")
    session.rollback()
    assert _releases(session, order.id) == []


def test_release_never_exceeds_what_escrow_holds(session):
    """A legacy order whose card is still only held (accepted before capture-on-acceptance)
    releases nothing: the money is not with the platform yet."""
    p = osup.parties(session)
    order = osup.order(session, p, status="in_progress")
    ledger.card_held(session, order, PRICE)
    services.add_milestone(session, order, p.provider, "Step", 5000, None)
    session.commit()
    step = order.milestones[0]
    milestones.submit(session, order, p.provider, step.id, "Done")
    milestones.approve(session, order, p.buyer, step.id)
    session.commit()
    assert step.status == "approved" and step.released_amount == 0
    assert _releases(session, order.id) == []
    assert ledger.milestone_release(session, order, 10**9) == ("", 0)


# --------------------------------------------------------------------------- over HTTP

def _milestone_page_ids(client, order):
    html = client.get(f"/provider/orders/{order.id}").get_data(as_text=True)
    return re.findall(r"/milestones/(\d+)/submit", html)


def test_submit_approve_and_changes_over_http(app, client, session, deal):
    p, order = deal
    first, second, _ = order.milestones
    osup.login(client, p.provider)
    assert str(first.id) in _milestone_page_ids(client, order)
    response = post_form(client, f"/orders/{order.id}/milestones/{first.id}/submit",
                         {f"ms{first.id}-note": "Report attached",
                          f"ms{first.id}-files": (io.BytesIO(osup.pdf_bytes("r")), "step1.pdf")},
                         content_type="multipart/form-data")
    assert response.status_code == 302
    # Without a note: refused with the message, nothing written.
    response = post_form(client, f"/orders/{order.id}/milestones/{second.id}/submit",
                         {f"ms{second.id}-note": ""}, follow_redirects=True)
    assert "Say what was done for this milestone." in response.get_data(as_text=True)
    # The institution cannot approve its own milestone.
    response = post_form(client, f"/orders/{order.id}/milestones/{first.id}/approve", {})
    assert response.status_code == 403
    osup.logout(client)

    osup.login(client, p.buyer)
    html = client.get(f"/orders/{order.id}").get_data(as_text=True)
    assert "step1.pdf" in html and "Report attached" in html
    assert 'data-testid="money-panel"' in html
    response = post_form(client, f"/orders/{order.id}/milestones/{first.id}/changes",
                         {f"mc{first.id}-reason": ""}, follow_redirects=True)
    assert "Say what should be changed." in response.get_data(as_text=True)
    response = post_form(client, f"/orders/{order.id}/milestones/{first.id}/approve", {},
                         follow_redirects=True)
    assert "released to the institution" in response.get_data(as_text=True)
    response = post_form(client, f"/orders/{order.id}/milestones/{first.id}/approve", {},
                         follow_redirects=True)
    assert "already approved" in response.get_data(as_text=True)
    osup.logout(client)
    osup.login(client, p.outsider)
    assert post_form(client, f"/orders/{order.id}/milestones/{first.id}/approve",
                     {}).status_code == 404
    osup.logout(client)
    osup.login(client, p.staff)
    html = client.get(f"/staff/orders/{order.id}").get_data(as_text=True)
    posting = session.get(Milestone, first.id).release_posting
    assert f'href="#posting-{posting}"' in html and f'id="posting-{posting}"' in html
    # Staff read the ledger in words, not its stored codes.
    assert "Milestone approved: released" in html and "Payable to institutions" in html
    assert ">milestone_release<" not in html and ">provider_payable<" not in html
    session.expire_all()
    assert _releases(session, order.id) == [150000]


def _race(app, users_and_posts):
    """Each (user, path, data) posts from its own client and thread at the same moment."""
    barrier = threading.Barrier(len(users_and_posts))
    statuses = []

    def go(user, path, data):
        c = app.test_client()
        osup.login(c, user)
        token = csrf_token(c, "/")
        barrier.wait()
        response = c.post(path, data={"csrf_token": token, **data})
        statuses.append(response.status_code)

    threads = [threading.Thread(target=go, args=item) for item in users_and_posts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    db.session.remove()
    return statuses


def test_two_tabs_approving_at_once_release_once(app, session, deal):
    p, order = deal
    first = order.milestones[0]
    milestones.submit(session, order, p.provider, first.id, "Done")
    session.commit()
    path = f"/orders/{order.id}/milestones/{first.id}/approve"
    statuses = _race(app, [(p.buyer, path, {}), (p.buyer, path, {})])
    assert statuses == [302, 302]  # the loser is sent back with the reason
    session.expire_all()
    assert _releases(session, order.id) == [150000]
    assert session.scalar(select(func.count(OrderEvent.id)).where(
        OrderEvent.order_id == order.id, OrderEvent.name == "milestone_approved")) == 1
    _balanced(session, order.id)


def test_approval_racing_a_dispute_wins_once(app, session, deal):
    p, order = deal
    first = order.milestones[0]
    milestones.submit(session, order, p.provider, first.id, "Done")
    session.commit()
    statuses = _race(app, [
        (p.buyer, f"/orders/{order.id}/milestones/{first.id}/approve", {}),
        (p.buyer, f"/orders/{order.id}/actions/dispute", {"note": "Bad work"}),
    ])
    assert len(statuses) == 2
    session.expire_all()
    order = session.get(Order, order.id)
    first = session.get(Milestone, first.id)
    assert order.status == "disputed"  # the dispute goes through either way
    if first.status == "approved":  # the approval came first: released once
        assert _releases(session, order.id) == [150000]
    else:  # the dispute came first: nothing released
        assert first.status == "submitted" and _releases(session, order.id) == []
    _balanced(session, order.id)


def test_timer_racing_request_changes_wins_once(app, session, deal):
    p, order = deal
    first = order.milestones[0]
    start = utcnow() - timedelta(days=15)
    milestones.submit(session, order, p.provider, first.id, "Done", now=start)
    session.commit()
    barrier = threading.Barrier(2)
    outcome = {}

    def timer():
        with app.app_context():
            barrier.wait()
            outcome["timer"] = timers.run(db.session, utcnow(), milestone_days=14)
            db.session.remove()

    def buyer():
        c = app.test_client()
        osup.login(c, p.buyer)
        token = csrf_token(c, "/")
        barrier.wait()
        outcome["buyer"] = c.post(f"/orders/{order.id}/milestones/{first.id}/changes",
                                  data={"csrf_token": token, f"mc{first.id}-reason": "Redo"})

    threads = [threading.Thread(target=timer), threading.Thread(target=buyer)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    db.session.remove()
    session.expire_all()
    first = session.get(Milestone, first.id)
    assert first.status in ("approved", "changes_requested")
    if first.status == "approved":
        assert _releases(session, order.id) == [150000] and first.approved_by == "timer"
    else:
        assert _releases(session, order.id) == [] and first.decision_note == "Redo"
    assert not outcome["timer"].errors
    _balanced(session, order.id)
