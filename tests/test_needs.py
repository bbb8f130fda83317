"""Needs (需求): publishing, validation, moderation, versions after opening, visibility,
deadlines and the timers."""

from datetime import date, timedelta

import demand_support as ds
import pytest
from sqlalchemy import func, select

from demand import services
from demand.models import Need, NeedInvitation, NeedVersion
from demand.services import DemandError
from marketplace.database import utcnow
from marketplace.models import Notification
from marketplace.permissions import can_view_need


@pytest.fixture
def w(session, app, tmp_path, monkeypatch):
    # An index of our own: other tests may leave the shared one in any state.
    monkeypatch.setitem(app.config, "SEARCH_INDEX_DIR", str(tmp_path / "search-index"))
    return ds.world(session, app)


def _count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


@pytest.mark.parametrize("changes, message", [
    ({"budget_min": 9_000_000, "budget_max": 1_000_000}, "minimum is above its maximum"),
    ({"proposal_deadline": utcnow() - timedelta(hours=1)}, "deadline is in the past"),
    ({"wanted_delivery": date.today()}, "before the proposal deadline"),
    ({"title": "  "}, "title"),
    ({"budget_kind": "range", "budget_max": None}, "both ends"),
    ({"region": "atlantis"}, "region"),
    ({"category_id": None}, "sub-category"),
])
def test_bad_need_input_is_refused_and_nothing_is_written(session, w, changes, message):
    with pytest.raises(DemandError) as refused:
        services.create_need(session, w.buyer, ds.fto_data(session, **changes))
    assert message in refused.value.message
    session.rollback()
    assert _count(session, Need) == 0


def test_financial_need_requires_amount_term_and_purpose(session, w):
    data = ds.fto_data(session, category_id=ds.category_id(session, "credit-loans"))
    with pytest.raises(DemandError, match="amount wanted"):
        services.create_need(session, w.buyer, data)
    data = ds.fto_data(session, category_id=ds.category_id(session, "credit-loans"),
                       financial_amount=500_000_000, financial_term_months=36,
                       financial_purpose="Pilot line for solid-state cells")
    need = services.create_need(session, w.buyer, data)
    assert need.is_financial and need.financial_amount == 500_000_000


def test_institutions_cannot_publish_needs(session, w):
    with pytest.raises(DemandError) as refused:
        services.create_need(session, w.fto_user, ds.fto_data(session))
    assert refused.value.status == 403


def test_suspended_enterprise_cannot_publish(session, w):
    w.buyer_org.suspended = True
    with pytest.raises(DemandError) as refused:
        services.create_need(session, w.buyer, ds.fto_data(session))
    assert refused.value.status == 403


def test_moderation_opens_the_need_invites_matches_and_records_version_one(session, w, app):
    need = services.create_need(session, w.buyer, ds.fto_data(session))
    services.submit_need(session, w.buyer, need)
    assert need.status == "submitted"
    # Not visible to institutions while awaiting moderation.
    assert not can_view_need(w.fto_user, need)
    invitations = services.approve_need(session, w.staff, need,
                                        index_dir=app.config["SEARCH_INDEX_DIR"])
    session.commit()
    assert need.status == "open" and need.opened_at is not None
    assert [v.version for v in need.versions] == [1]
    assert invitations and invitations[0].provider_org_id == w.fto.id
    notices = session.scalars(select(Notification.kind).where(
        Notification.user_id == w.fto_user.id)).all()
    assert "need_invitation" in notices
    # Approving twice (two staff tabs) is refused.
    with pytest.raises(DemandError) as again:
        services.approve_need(session, w.staff, need)
    assert again.value.status == 409


def test_staff_return_needs_a_reason_and_sends_it_back_to_draft(session, w):
    need = services.create_need(session, w.buyer, ds.fto_data(session))
    services.submit_need(session, w.buyer, need)
    with pytest.raises(DemandError, match="why"):
        services.reject_need(session, w.staff, need, " ")
    services.reject_need(session, w.staff, need, "Say which EU countries.")
    assert need.status == "draft" and need.rejection_reason == "Say which EU countries."
    with pytest.raises(DemandError):
        services.approve_need(session, w.buyer, need)  # not staff


def test_editing_an_open_need_makes_a_version_and_tells_invited_institutions(session, w, app):
    need = ds.open_need(session, w, app)
    data = services.NeedData.of(need)
    data.description += "\n\nAlso Germany's utility models."
    services.update_need(session, w.buyer, need, data, note="Added utility models")
    session.commit()
    assert need.version == 2
    versions = session.scalars(select(NeedVersion).where(NeedVersion.need_id == need.id)
                               .order_by(NeedVersion.version)).all()
    assert [v.version for v in versions] == [1, 2]
    assert "utility models" in versions[1].snapshot["description"]
    assert "utility models" not in versions[0].snapshot["description"]
    kinds = session.scalars(select(Notification.kind).where(
        Notification.user_id == w.fto_user.id)).all()
    assert "need_updated" in kinds


def test_another_enterprise_cannot_read_a_non_public_need(session, w, app):
    need = ds.open_need(session, w, app, visibility="invited")
    assert services.role_on(session, w.buyer, need) == "buyer"
    assert services.role_on(session, w.staff, need) == "staff"
    assert services.role_on(session, w.other_buyer, need) is None
    invited = {i.provider_org_id for i in need.invitations}
    assert w.fto.id in invited
    assert services.role_on(session, w.fto_user, need) == "provider"
    uninvited = [u for o, u in ((w.lab, w.lab_user), (w.filer, w.filer_user))
                 if o.id not in invited]
    for user in uninvited:
        assert services.role_on(session, user, need) is None
        with pytest.raises(DemandError) as refused:
            services.require_view(session, user, need)
        assert refused.value.status == 404


def test_other_enterprise_gets_404_on_the_need_page(client, session, w, app):
    import order_support as osup

    need = ds.open_need(session, w, app, visibility="invited")
    osup.login(client, w.other_buyer)
    assert client.get(f"/needs/{need.id}").status_code == 404


def test_timers_expire_needs_without_proposals_and_remind_buyers_with_some(session, w, app):
    lonely = ds.open_need(session, w, app)
    answered = ds.open_need(session, w, app)
    services.submit_proposal(session, w.fto_user, answered, ds.proposal_data())
    session.commit()
    later = utcnow() + timedelta(days=15)
    report = services.run_need_timers(session, now=later)
    session.commit()
    assert (report.expired, report.reminded) == (1, 1)
    assert lonely.status == "expired" and answered.status == "open"
    assert answered.reminded_at is not None
    again = services.run_need_timers(session, now=later)
    assert (again.expired, again.reminded) == (0, 0)
    much_later = utcnow() + timedelta(days=14 + services.DEFAULT_AWARD_DAYS + 1)
    services.run_need_timers(session, now=much_later)
    session.commit()
    assert answered.status == "expired"
    assert answered.proposals[0].status == "not_selected"


def test_staff_can_add_and_remove_invitations(session, w, app):
    need = ds.open_need(session, w, app, visibility="invited")
    existing = {i.provider_org_id: i for i in need.invitations}
    extra = factories_provider = None
    for org in (w.lab, w.filer):
        if org.id not in existing:
            extra = org
    if extra is None:  # every institution was matched: remove one, then invite it again
        invitation = existing[w.filer.id]
        services.staff_remove_invitation(session, w.staff, invitation, "Not a fit")
        assert invitation.status == "removed"
        assert services.role_on(session, w.filer_user, need) is None
        extra = w.filer
    invitation = services.staff_invite(session, w.staff, need, extra)
    assert invitation.source == "staff" and invitation.status == "invited"
    assert invitation.score_parts
    with pytest.raises(DemandError) as twice:
        services.staff_invite(session, w.staff, need, extra)
    assert twice.value.status == 409
    assert factories_provider is None
    assert session.scalar(select(func.count()).select_from(NeedInvitation).where(
        NeedInvitation.need_id == need.id, NeedInvitation.provider_org_id == extra.id)) == 1


def _part(session, org, key):
    from providers import credibility

    result = credibility.recompute(session, org)
    return next(p for p in result.parts if p.key == key)


def test_closing_needs_with_proposals_without_reason_costs_buyer_credibility(session, w, app):
    before = _part(session, w.buyer_org, "cancellations")
    first = ds.open_need(session, w, app)
    services.submit_proposal(session, w.fto_user, first, ds.proposal_data())
    services.close_need(session, w.buyer, first, "")
    after = _part(session, w.buyer_org, "cancellations")
    assert after.points < before.points
    assert "closed without an award" in after.explanation and "1 of 1" in after.explanation
    # Closing with a reason is not held against the enterprise.
    second = ds.open_need(session, w, app)
    services.submit_proposal(session, w.fto_user, second, ds.proposal_data())
    services.close_need(session, w.buyer, second, "The project was cancelled by our board.")
    explained = _part(session, w.buyer_org, "cancellations")
    assert "1 of 2" in explained.explanation
    assert w.buyer_org.credibility_score is not None


def test_invitation_answers_feed_the_institution_response_part(session, w, app):
    need = ds.open_need(session, w, app)
    services.decline_invitation(session, w.fto_user, need, "capacity")
    answered = _part(session, w.fto, "response")
    assert "Answered 1 of 1 invitation" in answered.explanation
    # The silent ones count once the need is no longer open.
    silent = w.filer
    services.run_need_timers(session, now=need.proposal_deadline + timedelta(seconds=1))
    ignored = _part(session, silent, "response")
    assert "Answered 0 of 1 invitation" in ignored.explanation
    assert ignored.points < answered.points


def test_demo_needs_cover_every_state_through_the_services(session, w, app):
    from demand.demo import load_demo_needs, status_counts
    from orders.models import Order

    counts = load_demo_needs(session, utcnow(), index_dir=app.config["SEARCH_INDEX_DIR"])
    assert counts == status_counts(session)
    assert set(counts) >= {"draft", "submitted", "open", "closed", "expired"}
    orders = session.scalars(select(Order).where(Order.kind == "quote")).all()
    awarded = session.scalars(select(Need).where(Need.status == "awarded")).all()
    assert len(orders) == len(awarded)
    # The world here has no trademark institution, so only the patent-search need is
    # awarded; its order ran to completion (paid by transfer, accepted, delivered, accepted).
    assert [o.status for o in orders] == ["completed"]


def test_board_lists_open_public_needs_only_and_searches_chinese(client, session, w, app):
    import order_support as osup

    public = ds.open_need(session, w, app)
    hidden = ds.open_need(session, w, app, visibility="invited",
                          title="Invitation-only battery certification need")
    draft = services.create_need(session, w.buyer, ds.fto_data(session, title="草稿需求"))
    session.commit()
    osup.login(client, w.lab_user)
    page = client.get("/demand").get_data(as_text=True)
    assert f'data-testid="board-need-{public.id}"' in page
    assert f'data-testid="board-need-{hidden.id}"' not in page
    assert "草稿需求" not in page and draft.status == "draft"
    found = client.get("/demand?q=自由实施").get_data(as_text=True)
    assert f'data-testid="board-need-{public.id}"' in found
    none = client.get("/demand?q=区块链溯源").get_data(as_text=True)
    assert 'data-testid="empty-state"' in none
    assert client.get(f"/demand/{draft.id}").status_code == 404
    # Company name hidden before award when the enterprise asked so.
    assert w.buyer_org.name not in client.get(f"/demand/{public.id}").get_data(as_text=True)
    osup.logout(client)
    osup.login(client, w.buyer)
    assert client.get("/demand").status_code == 403  # the board is for institutions


def test_attachment_that_is_not_a_document_is_refused_and_no_need_is_written(client, session,
                                                                          w, app, tmp_path):
    import io

    import order_support as osup
    from conftest import post_form

    app.config["UPLOAD_DIR"] = str(tmp_path / "uploads")
    osup.login(client, w.buyer)
    response = post_form(client, "/needs/new", {
        "title": "FTO", "description": "An FTO, please.",
        "category_id": ds.category_id(session, "ip-strategy"), "budget_kind": "open",
        "proposal_deadline": (date.today() + timedelta(days=9)).isoformat(),
        "visibility": "public", "action": "submit",
        "files": (io.BytesIO(b"<html><script>alert(1)</script>"), "spec.pdf")},
        content_type="multipart/form-data")
    assert response.status_code == 400
    session.expire_all()
    assert _count(session, Need) == 0
    assert not any((tmp_path / "uploads").rglob("*.*")) if (tmp_path / "uploads").exists() \
        else True


def test_run_need_timers_command_and_order_timers_run_it(session, w, app):
    need = ds.open_need(session, w, app)
    later = (need.proposal_deadline + timedelta(minutes=1)).isoformat()
    result = app.test_cli_runner().invoke(args=["run-order-timers", "--now", later])
    assert result.exit_code == 0, result.output
    assert "needs expired: 1" in result.output
    session.expire_all()
    assert session.get(Need, need.id).status == "expired"


def test_funnel_counts_stages_median_first_proposal_and_unanswered(session, w, app):
    from demand import funnel

    answered = ds.open_need(session, w, app)
    lonely = ds.open_need(session, w, app, title="Calibration of two CMMs 三坐标校准")
    first = answered.opened_at + timedelta(hours=6)
    services.submit_proposal(session, w.fto_user, answered, ds.proposal_data(), now=first)
    session.commit()
    today = utcnow().date()
    figures = funnel.build(session, today - timedelta(days=1), today, unanswered_days=7,
                           now=utcnow() + timedelta(days=8))
    assert figures.counts == {"published": 2, "matched": 2, "with_proposals": 1,
                              "awarded": 0, "completed": 0}
    assert round(figures.median_hours_to_first) == 6
    assert [row.need.id for row in figures.unanswered] == [lonely.id]
    assert dict(figures.by_category)["Intellectual property"]["with_proposals"] == 1
    text = funnel.csv_text(figures)
    assert text.splitlines()[0].startswith("need_id,title,category,status")
    assert len(text.splitlines()) == 3
    # Nothing published in another period.
    empty = funnel.build(session, today - timedelta(days=60), today - timedelta(days=30))
    assert empty.counts["published"] == 0 and empty.median_hours_to_first is None


def test_enterprise_invites_from_its_favourites_only(session, w, app, monkeypatch):
    from catalog.models import Favourite

    monkeypatch.setitem(app.config, "NEED_INVITES", 1)
    need = ds.open_need(session, w, app, visibility="invited")
    assert {i.provider_org_id for i in need.invitations} == {w.fto.id}
    with pytest.raises(DemandError, match="favourites") as refused:
        services.invite_favourite(session, w.buyer, need, w.lab)
    assert refused.value.status == 403
    session.add(Favourite(user_id=w.buyer.id, provider_id=w.lab.id))
    session.flush()
    invitation = services.invite_favourite(session, w.buyer, need, w.lab)
    assert invitation.source == "favourite" and invitation.score_parts
    assert services.role_on(session, w.lab_user, need) == "provider"
    with pytest.raises(DemandError):
        services.invite_favourite(session, w.other_buyer, need, w.lab)
