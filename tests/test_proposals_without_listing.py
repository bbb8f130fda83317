"""A verified institution without published listings answers needs (issue 15, point 4).

It may propose to a need that is public on the board or that it was invited to; when it
wins, the order stands on the need (its title and sub-category), not on a listing, and runs
like any awarded proposal. Refused: an unverified or suspended institution, and an
institution not invited to an invitation-only need.
"""

from datetime import timedelta

import demand_support as ds
import factories
import order_support as osup
import pytest
from conftest import post_form
from sqlalchemy import func, select

from demand import services
from demand.models import Proposal
from demand.services import DemandError
from orders import commission, contracts
from orders.models import Order, QuoteRequest


@pytest.fixture
def w(session, app, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "SEARCH_INDEX_DIR", str(tmp_path / "search-index"))
    return ds.world(session, app)


def _newcomer(session, **fields):
    """An IP agency with an account but no listing at all (verified unless told)."""
    org = factories.provider(session, name="Xiangcheng New IP Agency", **fields)
    user = factories.user(session, org)
    session.commit()
    return org, user


def _proposals(session) -> int:
    return session.scalar(select(func.count()).select_from(Proposal))


def _form(days: int = 40) -> dict:
    from datetime import date

    today = date.today()
    return {"price": "45,000", "delivery_date": (today + timedelta(days=days)).isoformat(),
            "ms_title": ["检索", "意见书", ""], "ms_share": ["50", "50", ""],
            "ms_due": [(today + timedelta(days=days // 2)).isoformat(),
                       (today + timedelta(days=days)).isoformat(), ""],
            "team": "两名专利代理人", "cover_note": "我们新入驻平台，专注 FTO 分析。"}


def test_institution_without_listings_proposes_on_the_board_and_wins(client, session, w, app):
    org, user = _newcomer(session)
    need = ds.open_need(session, w, app)  # public on the board; matching did not invite it
    need_id, category_id = need.id, need.category_id
    assert org.id not in {i.provider_org_id for i in need.invitations}

    osup.login(client, user)
    page = client.get(f"/demand/{need_id}").get_data(as_text=True)
    assert 'data-testid="proposal-form"' in page
    response = post_form(client, f"/demand/{need_id}/propose", _form())
    assert response.status_code == 302
    assert "Proposal sent" in client.get(response.headers["Location"]).get_data(as_text=True)
    osup.logout(client)
    proposal = session.scalar(select(Proposal).where(Proposal.provider_org_id == org.id))
    assert proposal.product_id is None and proposal.price == 4_500_000

    osup.login(client, w.buyer)
    assert "Xiangcheng New IP Agency" in client.get(f"/needs/{need_id}").get_data(
        as_text=True)
    response = post_form(client, f"/proposals/{proposal.id}/award", {})
    assert response.status_code == 302 and response.headers["Location"].endswith("/pay")
    session.expire_all()
    order = session.scalar(select(Order))
    # The order stands on the need: its title and sub-category, no listing.
    assert order.product_id is None and order.provider_org_id == org.id
    assert order.category_id == category_id and order.title == need.title
    assert order.lines[0].product_id is None and order.lines[0].product_title == need.title
    assert order.commission_bp == commission.rate_for(session, org.id, category_id)
    assert order.subtotal == 4_500_000 and order.status == "pending_payment"
    assert [m.share_bp for m in order.milestones] == [5000, 5000]
    assert contracts.live(session, order.id) is not None  # awarded proposals carry a 合同
    request = session.scalar(select(QuoteRequest))
    assert request.product_id is None and request.subject == need.title
    for path in (f"/orders/{order.id}", f"/orders/{order.id}/pay", "/quotes",
                 f"/quotes/{request.id}"):
        page = client.get(path)
        assert page.status_code == 200, path
        assert need.title in page.get_data(as_text=True), path
    osup.logout(client)

    osup.login(client, user)
    for path in (f"/provider/orders/{order.id}", "/provider/quotes", f"/demand/{need_id}"):
        page = client.get(path)
        assert page.status_code == 200, path


def test_institution_without_listings_answers_an_invitation_only_need_it_was_invited_to(
        session, w, app):
    org, user = _newcomer(session)
    need = ds.open_need(session, w, app, visibility="invited")
    with pytest.raises(DemandError, match="invited institutions only"):
        services.submit_proposal(session, user, need, ds.proposal_data())
    session.rollback()
    invitation = services.staff_invite(session, w.staff, need, org)
    session.commit()
    assert invitation.product_id is None
    proposal = services.submit_proposal(session, user, need, ds.proposal_data())
    session.commit()
    assert proposal.product_id is None and invitation.status == "proposed"
    order = services.award(session, w.buyer, proposal)
    session.commit()
    assert order.product_id is None and order.category_id == need.category_id


@pytest.mark.parametrize("case, message", [
    ("unverified", "must be verified"),
    ("pending", "must be verified"),
    ("suspended", "suspended"),
    ("not_invited", "invited institutions only"),
])
def test_refused_institutions_without_listings(client, session, w, app, case, message):
    fields = {"unverified": {"verified": False}, "pending": {"verified": False},
              "suspended": {"suspended": True}}.get(case, {})
    org, user = _newcomer(session, **fields)
    if case == "pending":  # applied for verification, not verified yet
        org.verification_status = "pending"
        session.commit()
    need = ds.open_need(session, w, app,
                        visibility="invited" if case == "not_invited" else "public")
    with pytest.raises(DemandError, match=message) as refused:
        services.submit_proposal(session, user, need, ds.proposal_data())
    assert refused.value.status == 403
    session.rollback()
    # The same through the page: refused, nothing written.
    osup.login(client, user)
    response = post_form(client, f"/demand/{need.id}/propose", _form())
    assert response.status_code in (403, 404)
    osup.logout(client)
    assert _proposals(session) == 0
    # Staff cannot invite it either while it is not in good standing.
    if case != "not_invited":
        with pytest.raises(DemandError, match="good standing"):
            services.staff_invite(session, w.staff, need, org)
