"""Institution onboarding through the web: the application, staff verification decisions
with reasons and history, suspension, and the institution's team (invitations, joining,
leaving, removal)."""

import io
import re
from datetime import timedelta

import factories
import provider_support as ps
import pytest
from conftest import csrf_token, post_form
from provider_support import clean_uploads  # noqa: F401  (autouse)
from sqlalchemy import select

from marketplace.database import db, utcnow
from marketplace.models import AuditLog, EmailMessage, Notification, Organisation, User
from providers import onboarding, team
from providers.errors import PermissionDenied, RuleError
from providers.models import Invitation


@pytest.fixture
def people(app):
    """An institution that has signed up (owner only), and a staff member."""
    with app.app_context():
        org, owner = ps.applicant(db.session, name="苏州知远知识产权代理有限公司")
        org.credit_code = None
        staff = ps.person(db.session, None, role="staff", full_name="Zhao Min")
        db.session.commit()
        return org.id, owner, staff


def _profile_form(**changes):
    data = {"name": "苏州知远知识产权代理有限公司", "credit_code": ps.credit_code(),
            "institution_type": "ip_agency", "regions_served": ["suzhou", "suzhou_sip"],
            "description": "## Patent filing\n\nWe file invention patents for SMEs in Suzhou.",
            "contact_name": "Wang Fang", "contact_phone": "0512-6666 8888",
            "contact_email": "ip@zhiyuan.example.cn", "website": "https://zhiyuan.example.cn",
            "founded_year": "2012"}
    data.update(changes)
    return data


def _upload(client, kind="business_licence", name="营业执照.pdf"):
    token = csrf_token(client, "/provider/institution")
    return client.post("/provider/institution/documents",
                       data={"csrf_token": token, "kind": kind,
                             "file": (io.BytesIO(ps.pdf_bytes(name)), name)},
                       content_type="multipart/form-data")


def _org(app, org_id) -> Organisation:
    with app.app_context():
        org = db.session.get(Organisation, org_id)
        db.session.expunge(org)
        return org


def _actions(app, org_id) -> list[tuple[str, str | None, int | None]]:
    with app.app_context():
        return [(a.action, a.reason, a.actor_id) for a in db.session.scalars(
            select(AuditLog).where(AuditLog.target_type == "organisation",
                                   AuditLog.target_id == org_id,
                                   AuditLog.action.in_(onboarding.DECISIONS))
            .order_by(AuditLog.id))]


def test_apply_reject_resubmit_approve_with_reasons_and_history(app, client, people):
    org_id, owner, staff = people
    ps.login(client, owner)
    dashboard = client.get("/provider").get_data(as_text=True)
    assert "Next step: complete your institution application" in dashboard

    # An incomplete application cannot be sent.
    response = post_form(client, "/provider/institution/submit", {})
    assert response.status_code == 302
    assert "not complete yet" in client.get("/provider/institution").get_data(as_text=True)
    assert _org(app, org_id).verification_status == "unverified"

    assert post_form(client, "/provider/institution", _profile_form()).status_code == 302
    assert _upload(client).status_code == 302
    assert post_form(client, "/provider/institution/submit", {}).status_code == 302
    org = _org(app, org_id)
    assert org.verification_status == "pending" and org.submitted_at is not None

    # Staff see it in the queue and reject it with a reason.
    staff_client = app.test_client()
    ps.login(staff_client, staff)
    queue = staff_client.get("/staff/verification").get_data(as_text=True)
    assert "苏州知远知识产权代理有限公司" in queue
    detail = staff_client.get(f"/staff/verification/{org_id}").get_data(as_text=True)
    assert "营业执照.pdf" in detail and "Approve" in detail
    refused = post_form(staff_client, f"/staff/verification/{org_id}/reject", {"reason": ""})
    assert refused.status_code == 422
    assert "Give a reason" in refused.get_data(as_text=True)
    assert _org(app, org_id).verification_status == "pending"
    reason = "The credit code does not match the business licence you uploaded."
    assert post_form(staff_client, f"/staff/verification/{org_id}/reject",
                     {"reason": reason}).status_code == 302

    # The institution sees the status and the reason, and is notified in-app and by email.
    org = _org(app, org_id)
    assert org.verification_status == "rejected" and org.verification_note == reason
    page = client.get("/provider").get_data(as_text=True)
    assert "Your application was not approved" in page and reason in page
    assert reason in client.get("/provider/institution").get_data(as_text=True)
    with app.app_context():
        notice = db.session.scalar(select(Notification).where(
            Notification.user_id == owner.id, Notification.kind == "verification.rejected"))
        assert notice is not None and reason in notice.body
        assert db.session.scalar(select(EmailMessage).where(
            EmailMessage.to_address == owner.email,
            EmailMessage.subject.like("%not approved%"))) is not None

    # Fix and resubmit; staff ask for more documents; upload and resubmit; staff approve.
    assert post_form(client, "/provider/institution",
                     _profile_form(credit_code=ps.credit_code())).status_code == 302
    assert post_form(client, "/provider/institution/submit", {}).status_code == 302
    ask = "Please upload your patent agency licence (专利代理机构执业许可证)."
    assert post_form(staff_client, f"/staff/verification/{org_id}/request-info",
                     {"reason": ask}).status_code == 302
    assert _org(app, org_id).verification_status == "more_info"
    assert "Staff need more documents" in client.get("/provider").get_data(as_text=True)
    assert _upload(client, kind="ip_agency_licence", name="licence.pdf").status_code == 302
    assert post_form(client, "/provider/institution/submit", {}).status_code == 302
    assert post_form(staff_client, f"/staff/verification/{org_id}/approve",
                     {"reason": "Licences checked against the registry."}).status_code == 302
    org = _org(app, org_id)
    assert org.verification_status == "verified" and org.verified_at is not None
    assert org.verification_note is None
    assert "Verified institution" in client.get("/provider").get_data(as_text=True)

    # Every decision is recorded: who, what, why; shown to both sides.
    assert _actions(app, org_id) == [
        ("institution.submit", None, owner.id),
        ("institution.reject", reason, staff.id),
        ("institution.submit", None, owner.id),
        ("institution.request_info", ask, staff.id),
        ("institution.submit", None, owner.id),
        ("institution.approve", "Licences checked against the registry.", staff.id),
    ]
    history = staff_client.get(f"/staff/verification/{org_id}").get_data(as_text=True)
    assert reason in history and ask in history and "Zhao Min" in history
    assert ask in client.get("/provider/institution").get_data(as_text=True)


def test_application_is_locked_while_staff_review_it(app, client, people):
    org_id, owner, _staff = people
    ps.login(client, owner)
    post_form(client, "/provider/institution", _profile_form())
    _upload(client)
    post_form(client, "/provider/institution/submit", {})
    response = post_form(client, "/provider/institution", _profile_form(name="Another name Ltd"))
    assert response.status_code == 422
    assert "being reviewed" in response.get_data(as_text=True)
    assert _org(app, org_id).name == "苏州知远知识产权代理有限公司"
    assert _upload(client, name="late.pdf").status_code == 422


def test_profile_validation_messages(app, client, people):
    org_id, owner, _staff = people
    ps.login(client, owner)
    bad_code = post_form(client, "/provider/institution", _profile_form(credit_code="12345"))
    assert bad_code.status_code == 422
    assert "18 characters" in bad_code.get_data(as_text=True)
    with app.app_context():
        taken = factories.enterprise(db.session).credit_code
        db.session.commit()
    duplicate = post_form(client, "/provider/institution", _profile_form(credit_code=taken))
    assert duplicate.status_code == 422
    assert "Another organisation" in duplicate.get_data(as_text=True)
    no_region = post_form(client, "/provider/institution", _profile_form(regions_served=[]))
    assert no_region.status_code == 422
    assert _org(app, org_id).credit_code is None


def test_verified_institution_cannot_change_its_legal_identity(app, client):
    with app.app_context():
        org = factories.provider(db.session, contact_name="Li", contact_phone="0512-1234567",
                                 contact_email="a@b.cn")
        owner = factories.user(db.session, org)
        db.session.commit()
        org_id, name, code = org.id, org.name, org.credit_code
    ps.login(client, owner)
    response = post_form(client, "/provider/institution",
                         _profile_form(name="Renamed Ltd", credit_code=ps.credit_code(),
                                       description="A new description of our services."))
    assert response.status_code == 302
    org = _org(app, org_id)
    assert (org.name, org.credit_code) == (name, code)
    assert org.description == "A new description of our services."


def _page_title(page: str) -> str:
    return re.search(r'data-testid="page-title">([^<]*)<', page).group(1)


def test_verified_institution_page_is_its_profile_not_an_application(app, client, people):
    org_id, owner, _staff = people
    with app.app_context():
        verified = factories.provider(db.session, name="Wuxi Testing Lab")
        member = factories.user(db.session, verified)
        db.session.commit()
    ps.login(client, owner)
    applying = client.get("/provider/institution").get_data(as_text=True)
    assert _page_title(applying) == "Institution application"
    other = app.test_client()
    ps.login(other, member)
    page = other.get("/provider/institution").get_data(as_text=True)
    assert _page_title(page) == "Institution profile"
    assert "<title>Institution profile · Wuxi Testing Lab" in page
    assert "Institution application" not in page
    assert 'data-testid="checklist"' in applying and 'data-testid="checklist"' not in page
    chinese = other.get("/provider/institution", headers={"Accept-Language": "zh-CN"})
    assert _page_title(chinese.get_data(as_text=True)) == "机构资料"


def test_decisions_reach_each_member_in_their_own_language(app, client, people):
    """Staff decide in English; a member who chose Chinese reads the notice and the email in
    Chinese, one who chose English in English."""
    org_id, owner, staff = people
    with app.app_context():
        org = db.session.get(Organisation, org_id)
        colleague = ps.person(db.session, org, full_name="Li Na")
        db.session.get(User, owner.id).locale = "zh_Hans_CN"
        colleague.locale = "en"
        org.verification_status, org.submitted_at = "pending", utcnow()
        db.session.commit()
        colleague_id = colleague.id
    ps.login(client, staff)
    response = post_form(client, f"/staff/verification/{org_id}/request-info",
                         {"reason": "Please upload your patent agency licence."})
    assert response.status_code == 302
    with app.app_context():
        notices = {n.user_id: n for n in db.session.scalars(
            select(Notification).where(Notification.kind == "verification.more_info"))}
        mails = {m.to_address: m for m in db.session.scalars(select(EmailMessage))}
        assert notices[owner.id].title == "平台需要您补充材料"
        assert "请上传材料后重新提交申请" in notices[owner.id].body
        assert "Please upload your patent agency licence." in notices[owner.id].body
        assert mails[owner.email].subject == "平台需要您补充材料"
        assert notices[colleague_id].title == "Platform staff need more documents"
        assert "Upload the documents" in notices[colleague_id].body


def test_staff_decisions_need_staff_and_a_pending_application(app, session, people):
    org_id, owner, staff = people
    org = session.get(Organisation, org_id)
    owner = session.get(User, owner.id)
    with pytest.raises(PermissionDenied):
        onboarding.approve(session, owner, org)
    with pytest.raises(RuleError, match="Only a pending application"):
        onboarding.approve(session, session.get(User, staff.id), org)
    assert org.verification_status == "unverified"


def test_suspend_and_reinstate_hide_and_restore_every_listing(app, client):
    with app.app_context():
        org = factories.provider(db.session, name="Suspended Agency")
        listing = factories.product(db.session, org, title="Patent drafting for SMEs")
        second = factories.product(db.session, org, title="Trademark filing")
        staff = factories.user(db.session, None, role="staff")
        db.session.commit()
        org_id, product_id, second_id = org.id, listing.id, second.id
    visitor = app.test_client()
    assert "Patent drafting for SMEs" in visitor.get("/c/patent-application").get_data(as_text=True)
    staff_client = app.test_client()
    ps.login(staff_client, staff)
    assert post_form(staff_client, f"/staff/verification/{org_id}/suspend",
                     {"reason": "Licence revoked by the regulator."}).status_code == 302
    assert "Patent drafting for SMEs" not in visitor.get("/c/patent-application").get_data(
        as_text=True)
    assert visitor.get(f"/products/{product_id}").status_code == 404
    assert visitor.get(f"/products/{second_id}").status_code == 404
    with app.app_context():
        assert sorted(ps.outbox_reasons(db.session)) == ["provider_suspended"] * 2
        assert db.session.get(Organisation, org_id).suspended_reason == (
            "Licence revoked by the regulator.")

    assert post_form(staff_client, f"/staff/verification/{org_id}/reinstate",
                     {"reason": ""}).status_code == 302
    assert "Patent drafting for SMEs" in visitor.get("/c/patent-application").get_data(as_text=True)
    assert visitor.get(f"/products/{product_id}").status_code == 200
    with app.app_context():
        assert ps.outbox_reasons(db.session, product_id) == ["provider_suspended",
                                                            "provider_reinstated"]
    assert [a for a, _r, _u in _actions(app, org_id)] == ["institution.suspend",
                                                          "institution.reinstate"]


# --------------------------------------------------------------------------- team

@pytest.fixture
def institution(app):
    with app.app_context():
        org = factories.provider(db.session, name="Wuxi Testing Lab")
        owner = ps.person(db.session, org, full_name="Owner Chen")
        db.session.commit()
        return org.id, owner


def _invite(client, email):
    response = post_form(client, "/team/invite", {"email": email})
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    body = response.get_data(as_text=True)
    code = re.search(r'data-testid="invite-code">([^<]+)<', body).group(1)
    return code, body


def test_invitation_by_link_creates_an_account_that_joins(app, client, institution):
    org_id, owner = institution
    ps.login(client, owner)
    code, body = _invite(client, "new.member@lab.example.cn")
    link = f"https://supermarket.example.cn/team/join/{code}"  # SITE_URL, not the Host header
    assert f'data-testid="invite-link">{link}<' in body
    with app.app_context():
        invitation = db.session.scalar(select(Invitation))
        assert invitation.code_hash == team.hash_code(code) and code not in invitation.code_hash
        assert invitation.expires_at - invitation.created_at == timedelta(days=7)
        email = db.session.scalar(select(EmailMessage).where(
            EmailMessage.to_address == "new.member@lab.example.cn"))
        assert f"\n{link}\n" in email.body and "Wuxi Testing Lab" in email.subject
    # The code is shown once only.
    assert code not in client.get("/team").get_data(as_text=True)

    newcomer = app.test_client()
    page = newcomer.get(f"/team/join/{code}")
    assert page.status_code == 200 and "Join Wuxi Testing Lab" in page.get_data(as_text=True)
    response = post_form(newcomer, f"/team/join/{code}/signup", {
        "full_name": "Sun Li", "email": "new.member@lab.example.cn", "phone": "",
        "password": "Lab-member-2024", "confirm": "Lab-member-2024", "accept_terms": "y"})
    assert response.status_code == 302
    with app.app_context():
        member = db.session.scalar(select(User).where(User.email == "new.member@lab.example.cn"))
        assert member.organisation_id == org_id and member.role == "provider"
        assert not member.is_org_owner
        assert db.session.scalar(select(Invitation)).accepted_by_id == member.id
    assert "Wuxi Testing Lab" in newcomer.get("/provider").get_data(as_text=True)
    # Used once: a second person cannot use the same code.
    again = app.test_client().get(f"/team/join/{code}")
    assert again.status_code == 410 and "already been used" in again.get_data(as_text=True)


def test_logged_in_user_without_organisation_joins_others_are_refused(app, client, institution):
    org_id, owner = institution
    with app.app_context():
        loner = factories.user(db.session, None, role="provider")
        loner.is_org_owner = False
        other_org = factories.provider(db.session, name="Other Agency")
        busy = factories.user(db.session, other_org)
        enterprise_user = factories.user(db.session, factories.enterprise(db.session))
        staff = factories.user(db.session, None, role="staff")
        db.session.commit()
    ps.login(client, owner)
    codes = {name: _invite(client, f"{name}@example.cn")[0]
             for name in ("loner", "busy", "buyer", "staff")}

    for name, user, message in [("busy", busy, "already belongs to the institution Other Agency"),
                                ("buyer", enterprise_user, "already belongs to the company"),
                                ("staff", staff, "Platform staff accounts cannot join")]:
        browser = app.test_client()
        ps.login(browser, user)
        assert message in browser.get(f"/team/join/{codes[name]}").get_data(as_text=True)
        refused = post_form(browser, f"/team/join/{codes[name]}", {})
        assert refused.status_code == 409
        with app.app_context():
            assert db.session.get(User, user.id).organisation_id != org_id

    browser = app.test_client()
    ps.login(browser, loner)
    assert post_form(browser, f"/team/join/{codes['loner']}", {}).status_code == 302
    with app.app_context():
        assert db.session.get(User, loner.id).organisation_id == org_id
        assert db.session.scalar(select(Notification).where(
            Notification.user_id == owner.id, Notification.kind == "team.joined")) is not None


def test_expired_and_revoked_invitations_cannot_be_used(app, client, institution):
    _org_id, owner = institution
    ps.login(client, owner)
    expired_code, _ = _invite(client, "late@example.cn")
    revoked_code, _ = _invite(client, "revoked@example.cn")
    with app.app_context():
        expired = db.session.scalar(select(Invitation).where(Invitation.email == "late@example.cn"))
        expired.expires_at = utcnow() - timedelta(minutes=1)
        revoked_id = db.session.scalar(select(Invitation.id).where(
            Invitation.email == "revoked@example.cn"))
        db.session.commit()
    assert post_form(client, f"/team/invitations/{revoked_id}/revoke", {}).status_code == 302
    visitor = app.test_client()
    response = visitor.get(f"/team/join/{expired_code}")
    assert response.status_code == 410 and "expired" in response.get_data(as_text=True)
    response = visitor.get(f"/team/join/{revoked_code}")
    assert response.status_code == 410 and "withdrawn" in response.get_data(as_text=True)
    signup = post_form(visitor, f"/team/join/{revoked_code}/signup", {
        "full_name": "X", "email": "revoked@example.cn", "password": "Lab-member-2024",
        "confirm": "Lab-member-2024", "accept_terms": "y"})
    assert signup.status_code == 410 and "withdrawn" in signup.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(User).where(User.email == "revoked@example.cn")) is None
    assert visitor.get("/team/join/not-a-real-code").status_code == 404


def test_members_leave_owner_removes_last_owner_stays(app, client, institution):
    org_id, owner = institution
    with app.app_context():
        org = db.session.get(Organisation, org_id)
        member = ps.person(db.session, org, full_name="Member Wu", owner=False)
        leaver = ps.person(db.session, org, full_name="Member Xu", owner=False)
        db.session.commit()
    ps.login(client, owner)
    # The last owner cannot leave, and never removes himself.
    response = post_form(client, "/team/leave", {})
    assert response.status_code == 302
    assert "only owner" in client.get("/team").get_data(as_text=True)
    assert post_form(client, f"/team/members/{owner.id}/remove", {}).status_code == 409
    with app.app_context():
        assert db.session.get(User, owner.id).organisation_id == org_id

    assert post_form(client, f"/team/members/{member.id}/remove", {}).status_code == 302
    leaver_client = app.test_client()
    ps.login(leaver_client, leaver)
    assert post_form(leaver_client, "/team/leave", {}).status_code == 302
    with app.app_context():
        assert db.session.get(User, member.id).organisation_id is None
        assert db.session.get(User, leaver.id).organisation_id is None
        assert db.session.scalar(select(Notification).where(
            Notification.user_id == member.id, Notification.kind == "team.removed")) is not None
    # A removed member no longer reaches the institution's pages.
    assert "not a member of an institution" in leaver_client.get("/provider").get_data(
        as_text=True)
    assert leaver_client.get("/provider/listings").status_code == 403


def test_only_owners_invite_and_duplicates_are_refused(app, client, institution):
    org_id, owner = institution
    with app.app_context():
        member = factories.user(db.session, db.session.get(Organisation, org_id))
        member.is_org_owner = False
        db.session.commit()
    member_client = app.test_client()
    ps.login(member_client, member)
    assert post_form(member_client, "/team/invite", {"email": "x@example.cn"}).status_code == 403
    ps.login(client, owner)
    _invite(client, "twice@example.cn")
    again = post_form(client, "/team/invite", {"email": "twice@example.cn"})
    assert again.status_code == 422 and "already an open invitation" in again.get_data(as_text=True)
    existing = post_form(client, "/team/invite", {"email": member.email})
    assert "already a member" in existing.get_data(as_text=True)
    with app.app_context():
        assert ps.count(db.session, Invitation) == 1


def test_approval_note_reaches_the_institution_escaped(app, client, people):
    org_id, owner, staff = people
    with app.app_context():
        db.session.get(Organisation, org_id).verification_status = "pending"
        db.session.commit()
    staff_client = app.test_client()
    ps.login(staff_client, staff)
    note = "Licence checked; please add your <i>patent agency</i> licence when renewed."
    assert post_form(staff_client, f"/staff/verification/{org_id}/approve",
                     {"reason": note}).status_code == 302
    with app.app_context():
        notice = db.session.scalar(select(Notification).where(
            Notification.user_id == owner.id, Notification.kind == "verification.approved"))
        email = db.session.scalar(select(EmailMessage).where(
            EmailMessage.to_address == owner.email, EmailMessage.subject.like("%verified%")))
        assert note in notice.body and note in email.body
    ps.login(client, owner)
    page = client.get("/notifications").get_data(as_text=True)
    assert "please add your &lt;i&gt;patent agency&lt;/i&gt; licence" in page
    assert "<i>patent agency</i>" not in page


def _queue_names(page: str) -> list[str]:
    return re.findall(r'data-testid="queue-row">\s*<td><a [^>]*>([^<]+)</a>', page)


def test_verification_queue_and_suspended_list_are_paged(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "PAGE_SIZE", 2)
    base = utcnow() - timedelta(days=5)
    with app.app_context():
        # Submitted in the opposite order of their ids: the queue goes by waiting time.
        for n in range(5):
            org, _owner = ps.applicant(db.session, name=f"Applicant {n}")
            org.verification_status = "pending"
            org.submitted_at = base + timedelta(hours=10 - n)
        for name in ("Suspended C", "Suspended A", "Suspended B"):
            factories.provider(db.session, name=name, suspended=True)
        staff = factories.user(db.session, None, role="staff")
        db.session.commit()
    ps.login(client, staff)

    def queue(query=""):
        page = client.get(f"/staff/verification{query}")
        assert page.status_code == 200
        return page.get_data(as_text=True)

    first = queue()
    assert _queue_names(first) == ["Applicant 4", "Applicant 3"]
    assert re.search(r'data-testid="queue-heading">Waiting for review <span[^>]*>5<', first)
    assert "Showing 1–2 of 5 institutions" in first and "?page=2" in first
    assert _queue_names(queue("?page=2")) == ["Applicant 2", "Applicant 1"]
    assert _queue_names(queue("?page=3")) == ["Applicant 0"]
    beyond = queue("?page=99")  # past the end: the last page
    assert _queue_names(beyond) == ["Applicant 0"] and "Showing 5–5 of 5" in beyond
    suspended = queue("?status=suspended")
    assert _queue_names(suspended) == ["Suspended A", "Suspended B"]
    assert re.search(r'data-testid="queue-heading">Suspended <span[^>]*>3<', suspended)
    assert _queue_names(queue("?status=suspended&page=2")) == ["Suspended C"]
    assert _queue_names(queue("?status=suspended&page=99")) == ["Suspended C"]
