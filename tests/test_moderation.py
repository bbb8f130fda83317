"""Moderation by staff and the whole journey of an institution from application to a
published, edited, suspended and reinstated listing — every change leaving its audit entry,
notification and search-outbox row."""

import io
import re
from datetime import timedelta

import factories
import provider_support as ps
import pytest
from conftest import csrf_token, post_form
from provider_support import clean_uploads  # noqa: F401  (autouse)
from sqlalchemy import select

from catalog.models import Category, Product, ProductRevision
from marketplace.database import db, utcnow
from marketplace.models import AuditLog, Notification, Organisation
from providers import listings


def _category_id(app, slug="patent-application") -> int:
    with app.app_context():
        return db.session.scalar(select(Category.id).where(Category.slug == slug))


def _listing_form(app, **changes):
    data = {"category_id": str(_category_id(app)), "title": "Invention patent filing",
            "summary": "Prior-art search, drafting and filing with CNIPA.",
            "description": "## Scope\n\nWe search prior art and draft the claims.",
            "regions": ["suzhou"], "tags": "patent, 专利", "pricing_mode": "packaged",
            "packages-0-name": "Standard", "packages-0-price": "6,800.00",
            "packages-0-delivery_days": "25", "packages-0-deliverables": "Search report\nFiling"}
    data.update(changes)
    return data


def _status(app, product_id) -> str:
    with app.app_context():
        return db.session.get(Product, product_id).status


def _outbox(app, product_id=None):
    with app.app_context():
        return ps.outbox_reasons(db.session, product_id)


def test_full_journey_from_application_to_edited_suspended_and_reinstated_listing(app, client):
    with app.app_context():
        org, owner = ps.applicant(db.session, name="Kunshan IP Partners")
        org.credit_code = None
        staff = factories.user(db.session, None, role="staff")
        db.session.commit()
        org_id = org.id
    ps.login(client, owner)
    staff_client = app.test_client()
    ps.login(staff_client, staff)
    visitor = app.test_client()

    # Apply.
    profile = {"name": "Kunshan IP Partners", "credit_code": ps.credit_code(),
               "institution_type": "ip_agency", "regions_served": ["kunshan", "suzhou"],
               "description": "Patent and trademark agency serving Kunshan manufacturers.",
               "contact_name": "Wang Fang", "contact_phone": "0512-5555 0000",
               "contact_email": "hello@kunshan-ip.example.cn"}
    assert post_form(client, "/provider/institution", profile).status_code == 302
    token = csrf_token(client, "/provider/institution")
    client.post("/provider/institution/documents", content_type="multipart/form-data",
                data={"csrf_token": token, "kind": "business_licence",
                      "file": (io.BytesIO(ps.pdf_bytes()), "licence.pdf")})
    assert post_form(client, "/provider/institution/submit", {}).status_code == 302

    # A draft prepared meanwhile cannot be submitted before verification.
    response = post_form(client, "/provider/listings/new", _listing_form(app))
    product_id = int(response.headers["Location"].split("/")[-2])
    post_form(client, f"/provider/listings/{product_id}/submit", {})
    assert _status(app, product_id) == "draft"

    # Reject with a reason → resubmit → approve.
    post_form(staff_client, f"/staff/verification/{org_id}/reject",
              {"reason": "The uploaded licence is unreadable; please scan it again."})
    assert "unreadable" in client.get("/provider").get_data(as_text=True)
    token = csrf_token(client, "/provider/institution")
    client.post("/provider/institution/documents", content_type="multipart/form-data",
                data={"csrf_token": token, "kind": "business_licence",
                      "file": (io.BytesIO(ps.pdf_bytes("clear scan")), "licence-clear.pdf")})
    assert post_form(client, "/provider/institution/submit", {}).status_code == 302
    assert post_form(staff_client, f"/staff/verification/{org_id}/approve", {}).status_code == 302

    # Publish the listing through moderation.
    assert post_form(client, f"/provider/listings/{product_id}/submit", {}).status_code == 302
    assert _status(app, product_id) == "pending_review"
    queue = staff_client.get("/staff/moderation").get_data(as_text=True)
    assert "Invention patent filing" in queue and "New listing" in queue
    assert visitor.get(f"/products/{product_id}").status_code == 404
    assert post_form(staff_client, f"/staff/moderation/{product_id}/approve", {}).status_code == 302
    assert _status(app, product_id) == "published"
    assert "Invention patent filing" in visitor.get("/c/patent-application").get_data(as_text=True)
    assert visitor.get(f"/products/{product_id}").status_code == 200
    assert _outbox(app, product_id) == ["provider_verified", "published"]

    # Edit the published listing: the public page keeps the old version until approval.
    edit = f"/provider/listings/{product_id}/edit"
    changed = _listing_form(app, title="Invention patent filing — fast track",
                            **{"packages-0-price": "7,200.00"}, then="submit")
    assert post_form(client, edit, changed).status_code == 302
    public = visitor.get(f"/products/{product_id}").get_data(as_text=True)
    assert "fast track" not in public and "6,800.00" in public
    review = staff_client.get(f"/staff/moderation/{product_id}").get_data(as_text=True)
    assert "Change to a published listing" in review
    assert "<ins> — fast track</ins>" in review  # the title diff, word by word
    assert "¥6,800.00" in review and "¥7,200.00" in review
    assert post_form(staff_client, f"/staff/moderation/{product_id}/approve", {}).status_code == 302
    public = visitor.get(f"/products/{product_id}").get_data(as_text=True)
    assert "Invention patent filing — fast track" in public and "7,200.00" in public
    with app.app_context():
        product = db.session.get(Product, product_id)
        assert product.price_from == 720000
        assert db.session.scalar(select(ProductRevision.status)) == "approved"

    # Suspend the institution: gone from category pages and 404; reinstate: back.
    post_form(staff_client, f"/staff/verification/{org_id}/suspend",
              {"reason": "Complaints under investigation."})
    assert "fast track" not in visitor.get("/c/patent-application").get_data(as_text=True)
    assert "fast track" not in visitor.get("/c/ip").get_data(as_text=True)
    assert visitor.get(f"/products/{product_id}").status_code == 404
    assert "Complaints under investigation." in client.get("/provider").get_data(as_text=True)
    post_form(staff_client, f"/staff/verification/{org_id}/reinstate", {})
    assert "fast track" in visitor.get("/c/patent-application").get_data(as_text=True)
    assert visitor.get(f"/products/{product_id}").status_code == 200

    # One outbox row per change that the public can see.
    assert _outbox(app, product_id) == ["provider_verified", "published", "revision_approved",
                                        "provider_suspended", "provider_reinstated"]
    with app.app_context():
        actions = db.session.scalars(select(AuditLog.action).where(
            AuditLog.target_type == "product", AuditLog.target_id == product_id)
            .order_by(AuditLog.id)).all()
        assert actions == ["listing.create", "listing.submit", "listing.approve",
                           "listing.submit_change", "listing.approve_change"]
        kinds = db.session.scalars(select(Notification.kind).where(
            Notification.user_id == owner.id).order_by(Notification.id)).all()
        for kind in ("verification.rejected", "verification.approved", "moderation.approved",
                     "institution.suspended", "institution.reinstated"):
            assert kind in kinds


@pytest.fixture
def setup(app):
    with app.app_context():
        org = factories.provider(db.session, name="Changshu Evaluation Centre")
        owner = factories.user(db.session, org)
        staff = factories.user(db.session, None, role="staff")
        draft = factories.product(db.session, org, title="TRL assessment", status="pending_review",
                                  category_slug="trl-assessment")
        live = factories.product(db.session, org, title="Patent valuation report",
                                 category_slug="ip-valuation")
        db.session.commit()
        return org.id, owner, staff, draft.id, live.id


def test_rejected_new_listing_goes_back_to_draft_with_the_reason(app, client, setup):
    _org_id, owner, staff, draft_id, _live_id = setup
    staff_client = app.test_client()
    ps.login(staff_client, staff)
    refused = post_form(staff_client, f"/staff/moderation/{draft_id}/reject", {"reason": " "})
    assert refused.status_code == 422 and "Give a reason" in refused.get_data(as_text=True)
    assert _status(app, draft_id) == "pending_review"
    reason = "Say which TRL scale you use (e.g. GB/T 22900-2022)."
    assert post_form(staff_client, f"/staff/moderation/{draft_id}/reject",
                     {"reason": reason}).status_code == 302
    with app.app_context():
        product = db.session.get(Product, draft_id)
        assert product.status == "draft" and product.rejection_reason == reason
    ps.login(client, owner)
    page = client.get(f"/provider/listings/{draft_id}/edit").get_data(as_text=True)
    assert "Not approved by platform staff" in page and "GB/T 22900-2022" in page
    assert _outbox(app, draft_id) == []  # never public: nothing for the index


def test_rejected_change_keeps_the_public_version_and_shows_the_reason(app, client, setup):
    _org_id, owner, staff, _draft_id, live_id = setup
    ps.login(client, owner)
    form = _listing_form(app, category_id=str(_category_id(app, "ip-valuation")),
                         title="Patent valuation — guaranteed bank loan", then="submit")
    assert post_form(client, f"/provider/listings/{live_id}/edit", form).status_code == 302
    staff_client = app.test_client()
    ps.login(staff_client, staff)
    reason = "You cannot promise a guaranteed loan."
    assert post_form(staff_client, f"/staff/moderation/{live_id}/reject",
                     {"reason": reason}).status_code == 302
    with app.app_context():
        product = db.session.get(Product, live_id)
        assert product.status == "published" and product.title == "Patent valuation report"
        revision = db.session.scalar(select(ProductRevision))
        assert revision.status == "rejected" and revision.reason == reason
    public = app.test_client().get(f"/products/{live_id}").get_data(as_text=True)
    assert "Patent valuation report" in public and "guaranteed" not in public
    page = client.get(f"/provider/listings/{live_id}/edit").get_data(as_text=True)
    assert "Your change was not approved" in page and reason in page
    assert "guaranteed bank loan" in page  # the rejected text is there to fix
    assert _outbox(app, live_id) == []


def test_diff_marks_changed_text_and_values(app, session, setup):
    _org_id, _owner, _staff, _draft_id, live_id = setup
    product = session.get(Product, live_id)
    old = listings.read_product(product)
    new = listings.ListingData.from_dict(old.to_dict())
    new.summary = old.summary.replace("end to end", "from search to grant")
    new.regions = ["national"]
    changes = {c.label: c for c in listings.diff(session, old, new)}
    summary = changes["Summary"]
    assert summary.changed and ("delete", "end") in [(t, s.strip()) for t, s in summary.segments]
    assert any(tag == "insert" and "grant" in text for tag, text in summary.segments)
    assert changes["Regions"].old == "Suzhou, Jiangsu (province-wide)"
    assert changes["Regions"].new == "Nationwide"
    assert not changes["Title"].changed
    assert listings.text_segments("专利申请", "专利检索") == [
        ("equal", "专利"), ("delete", "申请"), ("insert", "检索")]


def test_staff_suspend_and_reinstate_a_single_listing(app, client, setup):
    _org_id, owner, staff, _draft_id, live_id = setup
    staff_client = app.test_client()
    ps.login(staff_client, staff)
    assert post_form(staff_client, f"/staff/moderation/{live_id}/suspend",
                     {"reason": "Misleading price information."}).status_code == 302
    assert app.test_client().get(f"/products/{live_id}").status_code == 404
    ps.login(client, owner)
    page = client.get(f"/provider/listings/{live_id}/edit").get_data(as_text=True)
    assert "Suspended by platform staff" in page and "Misleading price information." in page
    assert post_form(staff_client, f"/staff/moderation/{live_id}/reinstate", {}).status_code == 302
    assert app.test_client().get(f"/products/{live_id}").status_code == 200
    assert _outbox(app, live_id) == ["suspended", "reinstated"]


def test_listings_of_unlisted_institutions_cannot_be_approved(app, client, setup):
    org_id, _owner, staff, draft_id, _live_id = setup
    with app.app_context():
        db.session.get(Organisation, org_id).suspended = True
        db.session.commit()
    staff_client = app.test_client()
    ps.login(staff_client, staff)
    page = staff_client.get(f"/staff/moderation/{draft_id}").get_data(as_text=True)
    assert "its listings cannot be published" in page
    response = post_form(staff_client, f"/staff/moderation/{draft_id}/approve", {})
    assert response.status_code == 409
    assert _status(app, draft_id) == "pending_review"


def test_a_decision_taken_twice_is_a_conflict(app, client, setup):
    _org_id, _owner, staff, draft_id, _live_id = setup
    first, second = app.test_client(), app.test_client()
    ps.login(first, staff)
    ps.login(second, staff)
    assert post_form(first, f"/staff/moderation/{draft_id}/approve", {}).status_code == 302
    late = post_form(second, f"/staff/moderation/{draft_id}/reject", {"reason": "Too late now"})
    assert late.status_code == 409
    assert _status(app, draft_id) == "published"
    assert _outbox(app, draft_id) == ["published"]


def test_withdrawn_submission_leaves_the_queue(app, client, setup):
    _org_id, owner, staff, draft_id, _live_id = setup
    ps.login(client, owner)
    assert post_form(client, f"/provider/listings/{draft_id}/withdraw", {}).status_code == 302
    staff_client = app.test_client()
    ps.login(staff_client, staff)
    assert "TRL assessment" not in staff_client.get("/staff/moderation").get_data(as_text=True)
    assert post_form(staff_client, f"/staff/moderation/{draft_id}/approve", {}).status_code == 409


def test_approval_note_reaches_the_institution_escaped(app, client, setup):
    _org_id, owner, staff, draft_id, _live_id = setup
    staff_client = app.test_client()
    ps.login(staff_client, staff)
    note = "Next time cite the <b>TRL</b> scale & its standard."
    assert post_form(staff_client, f"/staff/moderation/{draft_id}/approve",
                     {"reason": note}).status_code == 302
    with app.app_context():
        bodies = db.session.scalars(select(Notification.body).where(
            Notification.user_id == owner.id, Notification.kind == "moderation.approved")).all()
    assert len(bodies) == 1 and note in bodies[0]
    ps.login(client, owner)
    page = client.get("/notifications").get_data(as_text=True)
    assert "Next time cite the &lt;b&gt;TRL&lt;/b&gt; scale &amp; its standard." in page
    assert "<b>TRL</b>" not in page


def test_approval_without_a_note_says_nothing_extra(app, setup):
    _org_id, owner, staff, draft_id, _live_id = setup
    with app.app_context():
        listings.approve(db.session, staff, db.session.get(Product, draft_id), "  ")
        body = db.session.scalar(select(Notification.body).where(
            Notification.user_id == owner.id, Notification.kind == "moderation.approved"))
    assert body == "Platform staff approved your listing; it is now visible in the supermarket."


def _titles(page: str, testid: str) -> list[str]:
    return re.findall(rf'data-testid="{testid}"[^>]*>\s*(?:<td>)?(?:<div>)?<a [^>]*>([^<]+)</a>',
                      page)


def test_moderation_queue_and_suspended_list_are_paged(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "PAGE_SIZE", 2)
    base = utcnow() - timedelta(days=10)
    with app.app_context():
        org = factories.provider(db.session, name="Wuxi Testing Lab")
        staff = factories.user(db.session, None, role="staff")
        # Five waiting, new listings and changes interleaved by when they were sent.
        for hours in (1, 3, 5):
            new = factories.product(db.session, org, title=f"Waiting {hours}",
                                    status="pending_review")
            new.updated_at = base + timedelta(hours=hours)
        for hours in (2, 4):
            live = factories.product(db.session, org, title=f"Live {hours}")
            data = listings.read_product(live)
            data.title = f"Waiting {hours}"
            db.session.add(ProductRevision(product_id=live.id, status="pending",
                                           data=data.to_dict(),
                                           submitted_at=base + timedelta(hours=hours)))
        for days in (1, 2, 3):
            gone = factories.product(db.session, org, title=f"Suspended {days}",
                                     status="suspended")
            gone.updated_at = base + timedelta(days=days)
        db.session.commit()
    ps.login(client, staff)

    def queue(query=""):
        page = client.get(f"/staff/moderation{query}")
        assert page.status_code == 200
        return page.get_data(as_text=True)

    first = queue()
    assert _titles(first, "moderation-row") == ["Waiting 1", "Waiting 2"]
    assert re.search(r'data-testid="waiting-heading">Waiting for review <span[^>]*>5<', first)
    assert re.search(r'data-testid="suspended-heading">Suspended listings <span[^>]*>3<', first)
    assert "Showing 1–2 of 5 waiting" in first
    assert _titles(first, "suspended-row") == ["Suspended 3", "Suspended 2"]
    assert _titles(queue("?page=2"), "moderation-row") == ["Waiting 3", "Waiting 4"]
    last = queue("?page=3")
    assert _titles(last, "moderation-row") == ["Waiting 5"]
    assert 'data-testid="moderation-row" data-kind="new"' in last
    beyond = queue("?page=99")  # past the end: the last page
    assert _titles(beyond, "moderation-row") == ["Waiting 5"]
    assert "Showing 5–5 of 5 waiting" in beyond
    assert 'data-kind="change"' in queue("?page=2")
    # The suspended list pages on its own parameter and leaves the queue where it was.
    second = queue("?page=2&suspended_page=2")
    assert _titles(second, "suspended-row") == ["Suspended 1"]
    assert _titles(second, "moderation-row") == ["Waiting 3", "Waiting 4"]
    assert "page=2&amp;suspended_page=1" in second or "suspended_page=1&amp;page=2" in second
    assert _titles(queue("?suspended_page=99"), "suspended-row") == ["Suspended 1"]
