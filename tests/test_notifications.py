"""The notification centre: newest first, paginated, mark one or all read (POST with CSRF),
the unread badge in the navbar, and notices + emails for staff decisions."""

import re
from datetime import timedelta

import factories
import provider_support as ps
import pytest
from conftest import post_form
from sqlalchemy import select

from marketplace.database import db, utcnow
from marketplace.models import EmailMessage, Notification
from marketplace.notifications import absolute_url, notify


@pytest.fixture
def people(app):
    with app.app_context():
        org = factories.provider(db.session)
        owner = factories.user(db.session, org)
        stranger = factories.user(db.session, factories.enterprise(db.session))
        db.session.commit()
        return owner, stranger


def _add(app, user, count, **fields):
    with app.app_context():
        start = utcnow() - timedelta(hours=count)
        ids = []
        for n in range(count):
            notice = Notification(user_id=user.id, kind="test", title=f"Notice {n + 1}",
                                  body=f"Body {n + 1}", created_at=start + timedelta(hours=n),
                                  **fields)
            db.session.add(notice)
            db.session.flush()
            ids.append(notice.id)
        db.session.commit()
        return ids


def _titles(html: str) -> list[str]:
    return re.findall(r"(Notice \d+)</div>", html)


def test_visitors_are_sent_to_log_in(client):
    response = client.get("/notifications")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_list_is_newest_first_paginated_and_only_mine(app, client, people):
    owner, stranger = people
    _add(app, owner, 25)
    _add(app, stranger, 1)
    ps.login(client, owner)
    first = client.get("/notifications").get_data(as_text=True)
    titles = _titles(first)
    assert titles[:3] == ["Notice 25", "Notice 24", "Notice 23"] and len(titles) == 20
    assert "Showing 1–20 of 25 notifications" in first
    second = _titles(client.get("/notifications?page=2").get_data(as_text=True))
    assert second == ["Notice 5", "Notice 4", "Notice 3", "Notice 2", "Notice 1"]
    empty = client.get("/notifications?show=unread&page=1").get_data(as_text=True)
    assert len(_titles(empty)) == 20  # all are unread


def test_navbar_badge_counts_unread_and_marking_read_updates_it(app, client, people):
    owner, _stranger = people
    ids = _add(app, owner, 3)
    ps.login(client, owner)
    page = client.get("/").get_data(as_text=True)
    assert re.search(r'data-testid="unread-count">3<', page)
    response = post_form(client, f"/notifications/{ids[0]}/read", {})
    assert response.status_code == 302
    assert re.search(r'data-testid="unread-count">2<', client.get("/").get_data(as_text=True))
    response = post_form(client, "/notifications/read-all", {})
    assert response.status_code == 302
    page = client.get("/notifications").get_data(as_text=True)
    assert 'data-testid="unread-count"' not in page
    assert "Marked 2 notifications as read." in page
    with app.app_context():
        assert db.session.scalar(select(Notification.id).where(
            Notification.user_id == owner.id, Notification.read_at.is_(None))) is None


def test_open_marks_read_and_follows_only_site_links(app, client, people):
    owner, _stranger = people
    with app.app_context():
        safe = Notification(user_id=owner.id, kind="t", title="Safe", link="/provider")
        evil = Notification(user_id=owner.id, kind="t", title="Evil", link="//evil.example.com")
        db.session.add_all([safe, evil])
        db.session.commit()
        safe_id, evil_id = safe.id, evil.id
    ps.login(client, owner)
    response = post_form(client, f"/notifications/{safe_id}/read", {"open": "1"})
    assert response.headers["Location"].endswith("/provider")
    response = post_form(client, f"/notifications/{evil_id}/read", {"open": "1"})
    assert "evil.example.com" not in response.headers["Location"]
    with app.app_context():
        assert db.session.get(Notification, safe_id).read_at is not None


def test_someone_elses_notification_is_not_found_and_unchanged(app, client, people):
    owner, stranger = people
    [notice_id] = _add(app, owner, 1)
    ps.login(client, stranger)
    assert post_form(client, f"/notifications/{notice_id}/read", {}).status_code == 404
    post_form(client, "/notifications/read-all", {})
    with app.app_context():
        assert db.session.get(Notification, notice_id).read_at is None
    assert "Notice 1" not in client.get("/notifications").get_data(as_text=True)


def test_marking_read_needs_a_post_with_csrf(app, client, people):
    owner, _stranger = people
    [notice_id] = _add(app, owner, 1)
    ps.login(client, owner)
    assert client.get(f"/notifications/{notice_id}/read").status_code == 405
    assert client.post(f"/notifications/{notice_id}/read").status_code == 400
    assert client.post("/notifications/read-all").status_code == 400
    with app.app_context():
        assert db.session.get(Notification, notice_id).read_at is None


def test_empty_centre_has_a_friendly_message(client, people):
    owner, _stranger = people
    ps.login(client, owner)
    page = client.get("/notifications").get_data(as_text=True)
    assert "No notifications yet" in page
    assert 'data-testid="notification-bell"' in page


def test_staff_decision_notifies_every_member_in_app_and_by_email(app, client):
    with app.app_context():
        org, owner = ps.applicant(db.session)
        colleague = ps.person(db.session, org, owner=False)
        org.verification_status = "pending"
        staff = factories.user(db.session, None, role="staff")
        db.session.commit()
        org_id = org.id
    staff_client = app.test_client()
    ps.login(staff_client, staff)
    post_form(staff_client, f"/staff/verification/{org_id}/request-info",
              {"reason": "Upload your certification (CMA) please."})
    with app.app_context():
        for user in (owner, colleague):
            notice = db.session.scalar(select(Notification).where(Notification.user_id == user.id))
            assert notice.kind == "verification.more_info"
            assert "CMA" in notice.body and notice.link == "/provider/institution"
            mail = db.session.scalar(select(EmailMessage).where(
                EmailMessage.to_address == user.email))
            assert mail.subject == "Platform staff need more documents" and "CMA" in mail.body
            # The email's link opens from a mail client; the in-app notice keeps the path.
            assert mail.body.endswith("\n\nhttps://supermarket.example.cn/provider/institution")
    ps.login(client, owner)
    page = client.get("/notifications").get_data(as_text=True)
    assert "Platform staff need more documents" in page
    assert re.search(r'data-testid="unread-count">1<', page)


def test_notify_skips_email_for_inactive_users(app, session):
    org = factories.provider(session)
    inactive = factories.user(session, org, active=False)
    notify(session, inactive, "t", "Title", "Body")
    session.flush()
    assert session.scalar(select(EmailMessage).where(
        EmailMessage.to_address == inactive.email)) is None
    assert session.scalar(select(Notification).where(Notification.user_id == inactive.id))


def test_email_links_are_absolute_on_site_url(app, session, monkeypatch):
    org = factories.provider(session)
    user = factories.user(session, org)
    notify(session, user, "t", "Order 7 was delivered", "Have a look.", link="/orders/7#rating")
    session.flush()
    mail = session.scalar(select(EmailMessage).where(EmailMessage.to_address == user.email))
    assert mail.body == "Have a look.\n\nhttps://supermarket.example.cn/orders/7#rating"
    notice = session.scalar(select(Notification).where(Notification.user_id == user.id))
    assert notice.link == "/orders/7#rating"

    monkeypatch.setitem(app.config, "SITE_URL", "https://shop.example.org/")
    assert absolute_url("/provider") == "https://shop.example.org/provider"
    assert absolute_url("provider") == "https://shop.example.org/provider"
    assert absolute_url("https://elsewhere.example/x") == "https://elsewhere.example/x"
