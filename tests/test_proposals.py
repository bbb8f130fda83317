"""Proposals: validation, invitation-only needs, suspended institutions, revisions until
the deadline, withdrawal, who sees the price, and awarding exactly once through the quote
path."""

import threading
from datetime import date, timedelta

import demand_support as ds
import pytest
from sqlalchemy import func, select

from demand import services
from demand.models import Proposal, ProposalVersion
from demand.services import DemandError
from marketplace.database import db, utcnow
from marketplace.models import Notification
from marketplace.permissions import can_view_proposal
from orders import milestones
from orders.models import Order, Quote, QuoteRequest


@pytest.fixture
def w(session, app, tmp_path, monkeypatch):
    # An index of our own: other tests may leave the shared one in any state.
    monkeypatch.setitem(app.config, "SEARCH_INDEX_DIR", str(tmp_path / "search-index"))
    return ds.world(session, app)


def _proposals(session) -> int:
    return session.scalar(select(func.count()).select_from(Proposal))


@pytest.mark.parametrize("changes, message", [
    ({"milestones": [{"title": "A", "share_bp": 4000, "due_date": None}]}, "no due date"),
    ({"milestones": [{"title": "A", "share_bp": 4000,
                      "due_date": (date.today() + timedelta(days=5)).isoformat()},
                     {"title": "B", "share_bp": 5000,
                      "due_date": (date.today() + timedelta(days=9)).isoformat()}]},
     "add up to 100 %"),
    ({"milestones": [{"title": "A", "share_bp": 5000,
                      "due_date": (date.today() + timedelta(days=20)).isoformat()},
                     {"title": "B", "share_bp": 5000,
                      "due_date": (date.today() + timedelta(days=10)).isoformat()}]},
     "date order"),
    ({"milestones": [{"title": "A", "share_bp": 10000,
                      "due_date": (date.today() + timedelta(days=99)).isoformat()}]},
     "after the delivery date"),
    ({"milestones": []}, "at least one milestone"),
    ({"price": 0}, "price"),
    ({"delivery_date": date.today() - timedelta(days=1)}, "delivery date is in the past"),
    ({"cover_note": ""}, "cover note"),
])
def test_bad_proposals_are_refused_and_nothing_is_written(session, w, app, changes, message):
    need = ds.open_need(session, w, app)
    with pytest.raises(DemandError) as refused:
        services.submit_proposal(session, w.fto_user, need, ds.proposal_data(**changes))
    assert message in refused.value.message
    session.rollback()
    assert _proposals(session) == 0


def test_proposal_after_the_deadline_is_refused(session, w, app):
    need = ds.open_need(session, w, app)
    late = need.proposal_deadline + timedelta(minutes=1)
    with pytest.raises(DemandError, match="deadline for proposals has passed") as refused:
        services.submit_proposal(session, w.fto_user, need, ds.proposal_data(), now=late)
    assert refused.value.status == 409
    assert _proposals(session) == 0


def test_uninvited_institution_cannot_propose_to_an_invitation_only_need(session, w, app):
    need = ds.open_need(session, w, app, visibility="invited")
    invited = {i.provider_org_id for i in need.invitations if i.status != "removed"}
    if w.filer.id in invited:
        services.staff_remove_invitation(session, w.staff, next(
            i for i in need.invitations if i.provider_org_id == w.filer.id), "test")
    with pytest.raises(DemandError, match="invited institutions only") as refused:
        services.submit_proposal(session, w.filer_user, need, ds.proposal_data())
    assert refused.value.status == 403
    assert _proposals(session) == 0


def test_suspended_institution_cannot_propose(session, w, app):
    need = ds.open_need(session, w, app)
    w.fto.suspended = True
    with pytest.raises(DemandError, match="suspended") as refused:
        services.submit_proposal(session, w.fto_user, need, ds.proposal_data())
    assert refused.value.status == 403
    assert _proposals(session) == 0


def test_public_need_takes_proposals_from_uninvited_institutions(session, w, app):
    need = ds.open_need(session, w, app)
    proposal = services.submit_proposal(session, w.filer_user, need, ds.proposal_data())
    assert proposal.product.provider_id == w.filer.id


def test_revise_until_deadline_keeps_history_and_withdraw(session, w, app):
    need = ds.open_need(session, w, app)
    proposal = services.submit_proposal(session, w.fto_user, need, ds.proposal_data())
    services.revise_proposal(session, w.fto_user, proposal, ds.proposal_data(price=4_500_000))
    session.commit()
    assert proposal.version == 2 and proposal.price == 4_500_000
    history = session.scalars(select(ProposalVersion).where(
        ProposalVersion.proposal_id == proposal.id).order_by(ProposalVersion.version)).all()
    assert [v.snapshot["price"] for v in history] == [5_000_000, 4_500_000]
    with pytest.raises(DemandError, match="deadline"):
        services.revise_proposal(session, w.fto_user, proposal, ds.proposal_data(price=1),
                                 now=need.proposal_deadline + timedelta(seconds=1))
    with pytest.raises(DemandError) as other:
        services.withdraw_proposal(session, w.lab_user, proposal)
    assert other.value.status == 403
    services.withdraw_proposal(session, w.fto_user, proposal)
    assert proposal.status == "withdrawn"


def test_price_is_visible_only_to_author_enterprise_and_staff(session, w, app, client):
    import order_support as osup

    need = ds.open_need(session, w, app)
    proposal = services.submit_proposal(session, w.fto_user, need, ds.proposal_data())
    session.commit()
    assert can_view_proposal(w.fto_user, proposal)
    assert can_view_proposal(w.buyer, proposal)
    assert can_view_proposal(w.staff, proposal)
    assert not can_view_proposal(w.lab_user, proposal)
    assert not can_view_proposal(w.other_buyer, proposal)
    osup.login(client, w.lab_user)
    assert client.get(f"/proposals/{proposal.id}").status_code == 404
    page = client.get(f"/demand/{need.id}").get_data(as_text=True)
    assert "50,000" not in page
    osup.logout(client)
    osup.login(client, w.other_buyer)
    assert client.get(f"/proposals/{proposal.id}").status_code == 404
    osup.logout(client)
    osup.login(client, w.buyer)
    assert "¥50,000.00" in client.get(f"/proposals/{proposal.id}").get_data(as_text=True)


def test_decline_with_reason(session, w, app):
    need = ds.open_need(session, w, app)
    with pytest.raises(DemandError, match="reason"):
        services.decline_invitation(session, w.fto_user, need, "bogus")
    invitation = services.decline_invitation(session, w.fto_user, need, "capacity")
    assert invitation.status == "declined" and invitation.answered_at is not None
    with pytest.raises(DemandError, match="declined"):
        services.submit_proposal(session, w.fto_user, need, ds.proposal_data())


def test_award_creates_a_quote_order_and_tells_the_others(session, w, app):
    need = ds.open_need(session, w, app)
    winner = services.submit_proposal(session, w.fto_user, need, ds.proposal_data())
    loser = services.submit_proposal(session, w.filer_user, need, ds.proposal_data(3_000_000))
    session.commit()
    with pytest.raises(DemandError) as outsider:
        services.award(session, w.other_buyer, winner)
    assert outsider.value.status == 403
    order = services.award(session, w.buyer, winner, feedback="Great price, less experience.")
    session.commit()
    assert order.kind == "quote" and order.status == "pending_payment"
    assert order.subtotal == 5_000_000 and order.provider_org_id == w.fto.id
    assert [m.share_bp for m in order.milestones] == [4000, 6000]
    assert session.get(Quote, order.quote_id).status == "accepted"
    assert need.status == "awarded" and need.order_id == order.id
    assert winner.status == "awarded" and loser.status == "not_selected"
    assert loser.feedback == "Great price, less experience."
    kinds = session.scalars(select(Notification.kind).where(
        Notification.user_id == w.filer_user.id)).all()
    assert "proposal_not_selected" in kinds
    with pytest.raises(DemandError, match="already been awarded") as twice:
        services.award(session, w.buyer, loser)
    assert twice.value.status == 409
    assert session.scalar(select(func.count()).select_from(Order)) == 1


def test_award_twice_from_two_tabs_at_once_makes_one_order(app, session, w, client):
    """Two award requests race (two tabs, a double click): the conditional UPDATE of the
    need's status lets exactly one through; the other is told and writes nothing."""
    import order_support as osup
    from conftest import csrf_token

    need = ds.open_need(session, w, app)
    first = services.submit_proposal(session, w.fto_user, need, ds.proposal_data())
    second = services.submit_proposal(session, w.filer_user, need, ds.proposal_data(3_000_000))
    session.commit()
    barrier = threading.Barrier(2)
    statuses = []

    def award(proposal_id):
        # Each tab in its own thread: its own request contexts (and login), like a browser.
        c = app.test_client()
        osup.login(c, w.buyer)
        token = csrf_token(c, f"/needs/{need.id}")
        barrier.wait()
        response = c.post(f"/proposals/{proposal_id}/award", data={"csrf_token": token})
        statuses.append(response.status_code)

    threads = [threading.Thread(target=award, args=(p,)) for p in (first.id, second.id)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    db.session.remove()
    assert sorted(statuses) == [302, 409]
    assert session.scalar(select(func.count()).select_from(Order)) == 1
    assert session.scalar(select(func.count()).select_from(QuoteRequest)) == 1
    awarded = session.scalars(select(Proposal.status).order_by(Proposal.id)).all()
    assert sorted(awarded) == ["awarded", "not_selected"]


def test_closing_without_award_marks_proposals_not_selected(session, w, app):
    need = ds.open_need(session, w, app)
    proposal = services.submit_proposal(session, w.fto_user, need, ds.proposal_data())
    services.close_need(session, w.buyer, need, "Project postponed")
    assert need.status == "closed" and proposal.status == "not_selected"
    with pytest.raises(DemandError):
        services.award(session, w.buyer, proposal)


def test_messages_between_enterprise_and_proposing_institution_only(session, w, app):
    need = ds.open_need(session, w, app)
    proposal = services.submit_proposal(session, w.fto_user, need, ds.proposal_data())
    services.post_message(session, w.buyer, proposal, "Does it cover Germany?")
    services.post_message(session, w.fto_user, proposal, "Yes, DE and FR.")
    with pytest.raises(DemandError) as refused:
        services.post_message(session, w.lab_user, proposal, "Hello")
    assert refused.value.status == 403
    assert [m.side for m in proposal.messages] == ["buyer", "provider"]
    _ = utcnow


def _proposal_form(price: str, days: int = 40) -> dict:
    today = date.today()
    return {"price": price, "delivery_date": (today + timedelta(days=days)).isoformat(),
            "ms_title": ["检索与权利要求对比", "FTO 意见书", ""],
            "ms_share": ["40", "60", ""],
            "ms_due": [(today + timedelta(days=days // 2)).isoformat(),
                       (today + timedelta(days=days)).isoformat(), ""],
            "team": "两名欧洲专利代理人", "cover_note": "我们去年完成了 40 份 FTO 报告。"}


def test_the_whole_flow_through_the_pages(client, session, w, app):
    """Publish in Chinese → staff approve → matches explained → two proposals (one
    revised) → compare → award → pay page; the other institution sees "not selected"."""
    import order_support as osup
    from conftest import post_form

    osup.login(client, w.buyer)
    assert "You have not published a need yet" in client.get("/needs").get_data(as_text=True)
    deadline = (date.today() + timedelta(days=10)).isoformat()
    response = post_form(client, "/needs/new", {
        "title": "欧盟上市前的专利自由实施分析 FTO",
        "description": "扫地机器人进入欧洲市场前，需要 **自由实施分析** (freedom-to-operate)。",
        "category_id": ds.category_id(session, "ip-strategy"), "budget_kind": "range",
        "budget_min": "30,000", "budget_max": "80,000", "proposal_deadline": deadline,
        "proposal_deadline_time": "18:00",
        "wanted_delivery": (date.today() + timedelta(days=60)).isoformat(),
        "region": "suzhou_sip", "visibility": "public", "action": "submit"})
    assert response.status_code == 302, response.get_data(as_text=True)[:3000]
    need_url = response.headers["Location"]
    page = client.get(need_url).get_data(as_text=True)
    assert "Awaiting moderation" in page and "<strong>自由实施分析</strong>" in page
    # Bad input through the form: minimum above maximum, said clearly, nothing written.
    bad = post_form(client, "/needs/new", {
        "title": "x", "description": "y", "category_id": ds.category_id(session, "testing"),
        "budget_kind": "range", "budget_min": "9000", "budget_max": "10",
        "proposal_deadline": deadline, "visibility": "public"})
    assert bad.status_code == 400
    assert "minimum is above its maximum" in bad.get_data(as_text=True)
    osup.logout(client)

    osup.login(client, w.staff)
    assert "欧盟上市前" in client.get("/staff/needs").get_data(as_text=True)
    need_id = int(need_url.rstrip("/").split("/")[-1])
    assert post_form(client, f"/staff/needs/{need_id}/approve", {}).status_code == 302
    page = client.get(f"/needs/{need_id}").get_data(as_text=True)
    assert f'data-testid="match-{w.fto.id}"' in page and "Why this institution" in page
    osup.logout(client)

    osup.login(client, w.fto_user)
    board = client.get("/demand?q=自由实施").get_data(as_text=True)
    assert "欧盟上市前" in board
    invited = client.get("/demand?tab=invited").get_data(as_text=True)
    assert "欧盟上市前" in invited
    assert "苏州测试机器人" not in client.get(f"/demand/{need_id}").get_data(as_text=True)
    r = post_form(client, f"/demand/{need_id}/propose", _proposal_form("60,000"))
    assert r.status_code == 302
    r = post_form(client, f"/demand/{need_id}/propose", _proposal_form("55,000"))
    assert r.status_code == 302
    osup.logout(client)

    osup.login(client, w.filer_user)
    bad = post_form(client, f"/demand/{need_id}/propose",
                    {**_proposal_form("40,000"), "ms_share": ["40", "50", ""]})
    assert bad.status_code == 302
    assert "add up to 100 %" in client.get(bad.headers["Location"]).get_data(as_text=True)
    assert post_form(client, f"/demand/{need_id}/propose",
                     _proposal_form("40,000")).status_code == 302
    osup.logout(client)

    osup.login(client, w.buyer)
    page = client.get(f"/needs/{need_id}").get_data(as_text=True)
    assert "¥55,000.00" in page and "¥40,000.00" in page and "(revised" in page
    fto_proposal = session.scalar(select(Proposal).where(Proposal.provider_org_id == w.fto.id))
    assert post_form(client, f"/proposals/{fto_proposal.id}/messages",
                     {"body": "德国也包括吗？"}).status_code == 302
    history = client.get(f"/proposals/{fto_proposal.id}").get_data(as_text=True)
    assert "德国也包括吗" in history and "¥60,000.00" in history
    r = post_form(client, f"/proposals/{fto_proposal.id}/award", {"feedback": "价格合适"})
    assert r.status_code == 302 and r.headers["Location"].endswith("/pay")
    osup.logout(client)

    osup.login(client, w.filer_user)
    page = client.get(f"/demand/{need_id}").get_data(as_text=True)
    assert 'data-testid="not-selected"' in page and "价格合适" in page
    osup.logout(client)

    osup.login(client, w.staff)
    funnel = client.get("/staff/needs/funnel").get_data(as_text=True)
    assert 'data-testid="funnel-awarded">1<' in funnel
    csv = client.get("/staff/needs/funnel?format=csv")
    assert csv.mimetype == "text/csv" and "欧盟上市前" in csv.get_data(as_text=True)


def _financing_need(session, w, app):
    """A bank with an IP-pledge loan listing and an open financing need it can answer."""
    import factories

    from catalog.search.index import reindex_all

    bank = factories.provider(session, name="Suzhou Science & Technology Bank",
                              institution_type="bank", regions_served=["suzhou"])
    factories.product(session, bank, mode="financial", category_slug="ip-pledge",
                      title="IP-pledge loan 知识产权质押贷款",
                      summary="知识产权质押融资 loans against granted patents.")
    bank_user = factories.user(session, bank)
    session.commit()
    reindex_all(session, app.config["SEARCH_INDEX_DIR"])
    need = ds.open_need(session, w, app, title="知识产权质押融资 IP-pledge loan",
                        description="以12项发明专利质押，融资300万元，期限两年。",
                        category_id=ds.category_id(session, "ip-pledge"), budget_kind="open",
                        budget_min=None, budget_max=None, financial_amount=300_000_000,
                        financial_term_months=24, financial_purpose="A new production line")
    return bank, bank_user, need


def test_zero_fee_financial_proposal_is_awarded_and_the_order_runs_to_completion(
        session, w, app, client):
    """DESIGN.md §3: a financial service fee may be zero. Awarding such a proposal makes a
    quote order with nothing to pay: paid at once, accepted by the institution, its contract
    signed by both sides, milestones, delivery and completion as usual, a ledger that sums
    to zero, and no card or bank payment anywhere."""
    import factories
    import order_support as osup
    from conftest import post_form

    from orders import contracts, ledger
    from orders import services as order_services
    from orders.models import Payment

    bank, bank_user, need = _financing_need(session, w, app)
    need_id = need.id
    # Zero is refused for a price, but it is a valid service fee; negative never is.
    with pytest.raises(DemandError, match="service fee"):
        services.submit_proposal(session, bank_user, need, ds.proposal_data(
            price=-1, offered_amount=300_000_000, rate_bp=380, term_months=24))
    session.rollback()
    proposal = services.submit_proposal(session, bank_user, need, ds.proposal_data(
        price=0, offered_amount=300_000_000, rate_bp=380, term_months=24))
    session.commit()
    proposal_id = proposal.id
    assert proposal.price == 0

    osup.login(client, w.buyer)
    assert "¥0.00" in client.get(f"/needs/{need_id}").get_data(as_text=True)
    response = post_form(client, f"/proposals/{proposal_id}/award", {})
    assert response.status_code == 302
    session.expire_all()
    order = session.scalar(select(Order))
    assert response.headers["Location"].endswith(f"/orders/{order.id}")  # not the pay page
    assert "needs no payment" in client.get(response.headers["Location"]).get_data(
        as_text=True)
    assert order.kind == "quote" and order.subtotal == 0 and order.amount_due == 0
    assert order.status == "paid" and order.accept_by is not None
    assert session.get(Quote, order.quote_id).price == 0
    assert client.get(f"/orders/{order.id}/pay").status_code == 302  # nothing to pay
    osup.logout(client)

    order_services.accept(session, order, bank_user)
    contract = contracts.live(session, order.id)
    assert contract is not None
    contracts.sign(session, contract, w.buyer, factories.PASSWORD, ip="10.0.0.1")
    contracts.sign(session, contract, bank_user, factories.PASSWORD, ip="10.0.0.2")
    order_services.start(session, order, bank_user)
    for milestone in list(order.milestones):
        milestones.submit(session, order, bank_user, milestone.id, "Done.")
        milestones.approve(session, order, w.buyer, milestone.id)
    order_services.deliver(session, order, bank_user, "Loan contract signed, funds released.")
    order_services.complete(session, order, w.buyer, "Received.")
    session.commit()
    assert order.status == "completed"
    assert set(ledger.balances(session, order.id).values()) == {0}
    assert session.scalar(select(func.count()).select_from(Payment)) == 0

    osup.login(client, w.buyer)  # the order is trackable: its timeline shows every step
    page = client.get(f"/orders/{order.id}").get_data(as_text=True)
    assert "Search and claim charts" in page and "Loan contract signed" in page


def test_a_zero_price_is_still_refused_outside_financing(session, w, app):
    need = ds.open_need(session, w, app)
    with pytest.raises(DemandError, match="more than zero"):
        services.submit_proposal(session, w.fto_user, need, ds.proposal_data(price=0))
    session.rollback()
    assert _proposals(session) == 0
