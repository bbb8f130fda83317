"""The credibility page of the monitors' console (/staff/credibility): staff only; lists by
score with trend, filters, pagination and low-score alerts; per-organisation detail; watch,
suspend, reinstate and (enterprises) verify with a required reason, recorded in the audit log and told to the
organisation. A suspended enterprise cannot place orders."""

from datetime import timedelta

import factories
import order_support as osup
import pytest
from conftest import post_form
from sqlalchemy import func, select

from catalog.models import SearchOutbox
from marketplace.database import utcnow
from marketplace.models import AuditLog, Notification, Organisation
from orders import cart, checkout, quotes
from orders.models import Order
from providers import credibility
from providers.models import CredibilitySnapshot

ACTIONS = ("watch", "unwatch", "suspend", "reinstate", "verify", "unverify")


@pytest.fixture
def world(session):
    staff = factories.user(session, role="staff")
    buyer_org = factories.enterprise(session, name="Suzhou Robotics Co., Ltd.")
    buyer = factories.user(session, buyer_org)
    provider_org = factories.provider(session, name="Yuanhe Patent Agency")
    provider = factories.user(session, provider_org)
    product = factories.product(session, provider_org, title="Invention patent filing")
    session.commit()
    credibility.recompute_all(session)
    session.commit()
    return {"staff": staff, "buyer_org": buyer_org, "buyer": buyer,
            "provider_org": provider_org, "provider": provider, "product": product}


def _counts(session):
    return (session.scalar(select(func.count()).select_from(AuditLog)),
            session.scalar(select(func.count()).select_from(Notification)))


# --------------------------------------------------------------------------- permissions

def test_visitors_are_sent_to_log_in(client, world):
    org_id = world["buyer_org"].id
    for path in ("/staff/credibility", f"/staff/credibility/{org_id}"):
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"]
    response = client.post(f"/staff/credibility/{org_id}/suspend", data={"reason": "x"})
    assert response.status_code in (302, 400)  # no CSRF token for a visitor, or login


@pytest.mark.parametrize("who", ["buyer", "provider"])
def test_members_of_organisations_are_refused_and_nothing_changes(client, session, world, who):
    osup.login(client, world[who])
    target = world["provider_org"] if who == "buyer" else world["buyer_org"]
    assert client.get("/staff/credibility").status_code == 403
    assert client.get(f"/staff/credibility/{target.id}").status_code == 403
    before = _counts(session)
    for action in ACTIONS:
        for org in (target, world[f"{who}_org"]):
            response = post_form(client, f"/staff/credibility/{org.id}/{action}",
                                 {"reason": "Because I can."})
            assert response.status_code == 403, (action, org.name)
    session.expire_all()
    assert _counts(session) == before
    for org in (world["buyer_org"], world["provider_org"]):
        fresh = session.get(Organisation, org.id)
        assert not fresh.suspended and not fresh.watch


def test_the_services_refuse_non_staff_too(session, world):
    from marketplace.permissions import PermissionDenied

    with pytest.raises(PermissionDenied):
        credibility.set_watch(session, world["buyer"], world["provider_org"], True, "No.")
    with pytest.raises(PermissionDenied):
        credibility.suspend(session, world["provider"], world["buyer_org"], "No.")


def test_unknown_organisation_is_404(client, world):
    osup.login(client, world["staff"])
    assert client.get("/staff/credibility/999999").status_code == 404
    assert post_form(client, "/staff/credibility/999999/watch",
                     {"reason": "x"}).status_code == 404


# --------------------------------------------------------------------------- list

def test_list_by_score_with_trend_filters_and_alerts(client, session, world, app, monkeypatch):
    now = utcnow()
    low = factories.provider(session, name="Shaky Testing Lab", credibility_score=41,
                             credibility_level="C", watch=True)
    session.add(CredibilitySnapshot(organisation_id=low.id, score=60, level="B", breakdown={},
                                    computed_at=now - timedelta(days=40)))
    factories.enterprise(session, name="Suspended Trading Co., Ltd.", credibility_score=30,
                         credibility_level="C", suspended=True)
    session.commit()
    osup.login(client, world["staff"])

    html = client.get("/staff/credibility").get_data(as_text=True)
    rows = html.split('data-testid="credibility-row"')[1:]
    names = [row.split("</a>")[0].rsplit(">", 1)[1] for row in rows]
    assert names == ["Suspended Trading Co., Ltd.", "Shaky Testing Lab",
                     "Suzhou Robotics Co., Ltd.", "Yuanhe Patent Agency"]  # lowest first
    assert 'data-trend="-19"' in html  # 41 now, 60 forty days ago
    alerts = html.split('data-testid="low-score-alerts"')[1].split("credibility-filters")[0]
    assert "Shaky Testing Lab" in alerts and "Suspended Trading" not in alerts
    assert 'data-testid="console-nav-credibility"' in html

    def listed(query):
        page = client.get("/staff/credibility?" + query).get_data(as_text=True)
        return page.count('data-testid="credibility-row"')

    assert listed("kind=enterprise") == 2
    assert listed("kind=provider&level=C") == 1
    assert listed("watch=1") == 1
    assert listed("suspended=1") == 1
    assert listed("alerts=1") == 2
    assert listed("q=robotics") == 1
    assert listed("sort=score_desc&level=B") == 2
    empty = client.get("/staff/credibility?level=AAA").get_data(as_text=True)
    assert 'data-testid="empty-state"' in empty

    monkeypatch.setitem(app.config, "PAGE_SIZE", 3)
    monkeypatch.setitem(app.config, "CREDIBILITY_ALERT_BELOW", 35)
    first = client.get("/staff/credibility").get_data(as_text=True)
    assert first.count('data-testid="credibility-row"') == 3
    assert "Showing 1–3 of 4 organisations" in first
    second = client.get("/staff/credibility?page=2").get_data(as_text=True)
    assert second.count('data-testid="credibility-row"') == 1
    assert 'data-testid="no-alerts"' in first  # 41 is not below 35; 30 is suspended


def test_the_whole_list_sorts_by_the_30_day_trend(client, session, world):
    """Monitors look for the biggest fallers across every page, not within one."""
    now = utcnow()
    falling = factories.provider(session, name="Falling Lab", credibility_score=41,
                                 credibility_level="C")
    rising = factories.enterprise(session, name="Rising Co., Ltd.", credibility_score=80,
                                  credibility_level="AA")
    for org, then in ((falling, 60), (rising, 70)):
        session.add(CredibilitySnapshot(organisation_id=org.id, score=then, level="B",
                                        breakdown={}, computed_at=now - timedelta(days=40)))
    factories.enterprise(session, name="Never Scored Co., Ltd.")  # no trend: last
    session.commit()
    osup.login(client, world["staff"])

    def names(query):
        html = client.get("/staff/credibility?" + query).get_data(as_text=True)
        return [row.split("</a>")[0].rsplit(">", 1)[1]
                for row in html.split('data-testid="credibility-row"')[1:]]

    steady = sorted([world["buyer_org"].name, world["provider_org"].name])
    falls = names("sort=trend_asc")
    assert falls[0] == "Falling Lab" and falls[-2:] == ["Rising Co., Ltd.",
                                                        "Never Scored Co., Ltd."]
    assert sorted(falls[1:3]) == steady
    rises = names("sort=trend_desc")
    assert rises[0] == "Rising Co., Ltd." and rises[-2:] == ["Falling Lab",
                                                            "Never Scored Co., Ltd."]


def test_detail_shows_breakdown_chart_and_recent_orders(client, session, world):
    p = osup.Parties(world["buyer_org"], world["buyer"], world["provider_org"],
                     world["provider"], world["staff"], world["buyer"])
    order = osup.order(session, p, "paid", product=world["product"], paid_at=utcnow())
    session.commit()
    osup.login(client, world["staff"])
    html = client.get(f"/staff/credibility/{world['provider_org'].id}").get_data(as_text=True)
    assert 'data-testid="credibility-breakdown"' in html
    assert html.count('data-testid="credibility-part"') == 7
    assert order.number in html
    assert 'data-testid="action-suspend"' in html and 'data-testid="action-watch"' in html
    assert "js/credibility.js" in html


# --------------------------------------------------------------------------- actions

def test_watch_needs_a_reason_and_is_audited_and_told(client, session, world):
    org = world["provider_org"]
    osup.login(client, world["staff"])
    before = _counts(session)
    refused = post_form(client, f"/staff/credibility/{org.id}/watch", {"reason": "  "})
    assert refused.status_code == 422
    assert "Give a reason" in refused.get_data(as_text=True)
    session.expire_all()
    assert _counts(session) == before and not session.get(Organisation, org.id).watch

    done = post_form(client, f"/staff/credibility/{org.id}/watch",
                     {"reason": "Two disputes in one month."})
    assert done.status_code == 302
    session.expire_all()
    assert session.get(Organisation, org.id).watch
    entry = session.scalars(select(AuditLog).where(AuditLog.action == "credibility.watch")).one()
    assert (entry.actor_id, entry.target_id, entry.reason) == (
        world["staff"].id, org.id, "Two disputes in one month.")
    notice = session.scalars(select(Notification).where(
        Notification.user_id == world["provider"].id,
        Notification.kind == "credibility.watch")).one()
    assert "Two disputes in one month." in notice.body
    page = client.get(f"/staff/credibility/{org.id}").get_data(as_text=True)
    assert 'data-testid="watch-badge"' in page and "Two disputes in one month." in page

    again = post_form(client, f"/staff/credibility/{org.id}/watch", {"reason": "Again."})
    assert again.status_code == 409 and "already on watch" in again.get_data(as_text=True)

    off = post_form(client, f"/staff/credibility/{org.id}/unwatch",
                    {"reason": "Three quiet months."})
    assert off.status_code == 302
    session.expire_all()
    assert not session.get(Organisation, org.id).watch
    assert session.scalar(select(func.count()).select_from(AuditLog).where(
        AuditLog.action == "credibility.unwatch", AuditLog.reason == "Three quiet months.")) == 1


def test_staff_verify_an_enterprise_which_raises_its_score_and_can_be_withdrawn(
        client, session, world):
    org = world["buyer_org"]
    org.verification_status = "unverified"  # as every sign-up starts
    credibility.recompute(session, org)
    session.commit()
    score_before = org.credibility_score
    osup.login(client, world["staff"])
    page = client.get(f"/staff/credibility/{org.id}").get_data(as_text=True)
    assert 'data-testid="action-verify"' in page

    refused = post_form(client, f"/staff/credibility/{org.id}/verify", {"reason": ""})
    assert refused.status_code == 422 and "Give a reason" in refused.get_data(as_text=True)
    done = post_form(client, f"/staff/credibility/{org.id}/verify",
                     {"reason": "Checked in the national enterprise credit register."})
    assert done.status_code == 302
    session.expire_all()
    org = session.get(Organisation, org.id)
    assert org.verification_status == "verified" and org.verified_at is not None
    assert org.credibility_score == score_before + 5  # 15 verified, 10 for the credit code
    entry = session.scalars(select(AuditLog).where(AuditLog.action == "enterprise.verify")).one()
    assert (entry.actor_id, entry.target_id) == (world["staff"].id, org.id)
    assert session.scalars(select(Notification).where(
        Notification.user_id == world["buyer"].id,
        Notification.kind == "enterprise.verified")).one()
    page = client.get(f"/staff/credibility/{org.id}").get_data(as_text=True)
    assert "Enterprise verified" in page and 'data-testid="action-unverify"' in page

    again = post_form(client, f"/staff/credibility/{org.id}/verify", {"reason": "Again."})
    assert again.status_code == 409 and "already verified" in again.get_data(as_text=True)
    institution = post_form(client, f"/staff/credibility/{world['provider_org'].id}/verify",
                            {"reason": "Looks fine."})
    assert institution.status_code == 409
    assert "verification queue" in institution.get_data(as_text=True)

    withdrawn = post_form(client, f"/staff/credibility/{org.id}/unverify",
                          {"reason": "The business licence was revoked."})
    assert withdrawn.status_code == 302
    session.expire_all()
    org = session.get(Organisation, org.id)
    assert org.verification_status == "unverified" and org.credibility_score == score_before


def _place(session, user, product):
    cart.add(session, user, product.packages[0].id)
    session.commit()
    return checkout.place_orders(session, user, checkout.CheckoutInput(
        token=checkout.new_token(), payment_method="bank_transfer"))


def test_suspended_enterprise_cannot_check_out_until_reinstated(client, session, world):
    org, buyer = world["buyer_org"], world["buyer"]
    score_before = org.credibility_score
    osup.login(client, world["staff"])
    response = post_form(client, f"/staff/credibility/{org.id}/suspend",
                         {"reason": "Unpaid bank transfers on three orders."})
    assert response.status_code == 302
    session.expire_all()
    org = session.get(Organisation, org.id)
    assert org.suspended and org.suspended_reason == "Unpaid bank transfers on three orders."
    assert org.credibility_score < score_before  # no verification points while suspended
    assert session.scalar(select(func.count()).select_from(AuditLog).where(
        AuditLog.action == "enterprise.suspend", AuditLog.target_id == org.id)) == 1
    assert session.scalar(select(func.count()).select_from(Notification).where(
        Notification.user_id == buyer.id, Notification.kind == "enterprise.suspended")) == 1

    with pytest.raises(checkout.CheckoutError) as refused:
        _place(session, buyer, world["product"])
    assert refused.value.status == 403
    assert "suspended by platform staff and cannot place new orders" in refused.value.message
    assert "Unpaid bank transfers" in refused.value.message
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Order)) == 0
    with pytest.raises(quotes.QuoteError) as no_quote:
        quotes.request_quote(session, buyer, world["product"], "A patent for our gripper.",
                             None, None)
    assert no_quote.value.status == 403 and "request quotes" in no_quote.value.message
    session.rollback()

    osup.logout(client)
    osup.login(client, buyer)
    account = client.get("/account").get_data(as_text=True)
    assert 'data-testid="suspended-alert"' in account and "Unpaid bank transfers" in account
    osup.logout(client)

    osup.login(client, world["staff"])
    assert post_form(client, f"/staff/credibility/{org.id}/reinstate",
                     {"reason": "Paid in full."}).status_code == 302
    session.expire_all()
    assert not session.get(Organisation, org.id).suspended
    assert session.scalar(select(func.count()).select_from(AuditLog).where(
        AuditLog.action == "enterprise.reinstate", AuditLog.reason == "Paid in full.")) == 1
    result = _place(session, buyer, world["product"])
    session.commit()
    assert len(result.checkout.orders) == 1


def test_suspending_an_institution_reuses_its_suspension_and_hides_listings(client, session,
                                                                            world):
    org = world["provider_org"]
    osup.login(client, world["staff"])
    assert post_form(client, f"/staff/credibility/{org.id}/suspend",
                     {"reason": "Licence revoked by the regulator."}).status_code == 302
    session.expire_all()
    org = session.get(Organisation, org.id)
    assert org.suspended and not org.is_listed
    # The institution's own suspension service ran: its audit action, notice and outbox rows.
    assert session.scalar(select(func.count()).select_from(AuditLog).where(
        AuditLog.action == "institution.suspend")) == 1
    assert session.scalar(select(func.count()).select_from(Notification).where(
        Notification.user_id == world["provider"].id,
        Notification.kind == "institution.suspended")) == 1
    assert session.scalar(select(func.count()).select_from(SearchOutbox).where(
        SearchOutbox.reason == "provider_suspended")) == 1
    assert org.credibility_score == 54  # 69 less the 15 verification points
    osup.logout(client)
    assert client.get(f"/products/{world['product'].id}").status_code == 404  # for visitors
    osup.login(client, world["staff"])

    refused = post_form(client, f"/staff/credibility/{org.id}/suspend", {"reason": "Twice."})
    assert refused.status_code == 409
    assert post_form(client, f"/staff/credibility/{org.id}/reinstate",
                     {"reason": "Licence restored."}).status_code == 302
    session.expire_all()
    org = session.get(Organisation, org.id)
    assert not org.suspended and org.credibility_score == 69
    page = client.get(f"/staff/credibility/{org.id}").get_data(as_text=True)
    assert "Licence revoked by the regulator." in page and "Licence restored." in page
