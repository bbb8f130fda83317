"""The permission matrix of every institution-portal and staff review route.

Personas: a visitor, an enterprise member, a member of another institution, the owner and a
plain member of this institution, and platform staff. Forbidden cases answer 403 (or send
visitors to log in) and change nothing at all in the database.
"""

from dataclasses import dataclass, field

import factories
import provider_support as ps
import pytest
from conftest import csrf_token
from provider_support import clean_uploads  # noqa: F401  (autouse)
from sqlalchemy import select

from catalog.models import ProductRevision
from marketplace.database import Base, db, utcnow
from marketplace.models import Notification, Organisation
from providers import listings, team, uploads
from providers.models import QualificationDocument

PERSONAS = ("visitor", "enterprise", "other", "owner", "member", "staff")
# OK: the action went through (a page, or a redirect that is not the login). REFUSED and
# INVALID: the person may act here, but in this world's state the rule says no (409) or the
# form is incomplete (422); either way nothing changes.
LOGIN, FORBIDDEN, OK, REFUSED, INVALID = "login", 403, "ok", 409, 422


@dataclass
class World:
    ids: dict
    users: dict = field(default_factory=dict)


@pytest.fixture
def world(app) -> World:
    with app.app_context():
        s = db.session
        org = factories.provider(s, name="Own Institution", contact_name="Li",
                                 contact_phone="0512-1234567", contact_email="own@example.cn")
        owner = factories.user(s, org)
        member = ps.person(s, org, owner=False)
        other_org = factories.provider(s, name="Other Institution")
        other = factories.user(s, other_org)
        enterprise = factories.user(s, factories.enterprise(s))
        staff = factories.user(s, None, role="staff")
        draft = factories.product(s, org, status="draft", title="Own draft")
        pending = factories.product(s, org, status="pending_review", title="Own pending")
        published = factories.product(s, org, title="Own published")
        other_product = factories.product(s, other_org, status="draft", title="Other draft")
        checked = uploads.check(ps.pdf_bytes(), "licence.pdf")
        document = QualificationDocument(
            organisation_id=org.id, kind="business_licence", original_name="licence.pdf",
            stored_name=uploads.new_stored_name(checked.content_type),
            content_type=checked.content_type, size=checked.size, sha256=checked.sha256)
        s.add(document)
        s.flush()
        uploads.write(app.config["UPLOAD_DIR"], checked, document.stored_name)
        created = team.invite(s, owner, org, "invitee@example.cn")
        logo = uploads.check(ps.png_bytes(), "logo.png", allowed=uploads.IMAGE_TYPES)
        org.logo_file = uploads.new_stored_name(logo.content_type)
        uploads.write(app.config["UPLOAD_DIR"], logo, org.logo_file)
        proposed = listings.read_product(published)
        proposed.title = "Own published, improved"
        revision = ProductRevision(product_id=published.id, status="pending",
                                   data=proposed.to_dict(), submitted_at=utcnow())
        s.add(revision)
        notice = Notification(user_id=owner.id, kind="test", title="Hello")
        s.add(notice)
        s.commit()
        ids = {"org": org.id, "draft": draft.id, "pending": pending.id,
               "published": published.id, "other_product": other_product.id,
               "doc": document.id, "invitation": created.invitation.id, "member": member.id,
               "notice": notice.id, "code": created.code}
        return World(ids, {"owner": owner, "member": member, "other": other,
                           "enterprise": enterprise, "staff": staff})


def snapshot(app) -> dict:
    """Every row of every table (except the category tree), to prove nothing changed."""
    with app.app_context():
        tables = [t for t in Base.metadata.sorted_tables if t.name != "category"]
        return {t.name: sorted(map(tuple, db.session.execute(select(t)).all()), key=repr)
                for t in tables}


def listing_form(app):
    from catalog.models import Category

    with app.app_context():
        category_id = db.session.scalar(select(Category.id).where(
            Category.slug == "patent-application"))
    return {"category_id": str(category_id), "title": "A perfectly fine title",
            "summary": "A summary that is long enough.", "regions": ["suzhou"],
            "pricing_mode": "packaged", "packages-0-name": "Basic",
            "packages-0-price": "1,000.00", "packages-0-delivery_days": "5"}


def profile_form(_app):
    return {"name": "Own Institution", "institution_type": "ip_agency",
            "regions_served": ["suzhou"], "description": "Patent filing.",
            "contact_name": "Li", "contact_phone": "0512-1234567",
            "contact_email": "own@example.cn"}


def expect(visitor=LOGIN, enterprise=FORBIDDEN, other=FORBIDDEN, owner=OK, member=OK,
           staff=FORBIDDEN):
    return {"visitor": visitor, "enterprise": enterprise, "other": other, "owner": owner,
            "member": member, "staff": staff}


# Routes on this institution's objects: only its own members.
OWN_OBJECT = expect()
# Routes without an object id: any provider member acts on their own institution.
ANY_PROVIDER = expect(other=OK)
# Team management: owners only.
OWNER_ONLY = expect(member=FORBIDDEN)
# Staff screens.
STAFF_ONLY = expect(owner=FORBIDDEN, member=FORBIDDEN, staff=OK)
# Staff may, but not in this state (the institution is verified and active, the listing live).
STAFF_REFUSED = expect(owner=FORBIDDEN, member=FORBIDDEN, staff=REFUSED)
# Public pages.
EVERYONE = expect(visitor=OK, enterprise=OK, other=OK, staff=OK)

ROUTES = [
    # (method, path, data, expectations)
    ("GET", "/provider", None, ANY_PROVIDER),
    ("GET", "/provider/institution", None, ANY_PROVIDER),
    ("POST", "/provider/institution", profile_form, ANY_PROVIDER),
    # No file attached: the form is refused as incomplete.
    ("POST", "/provider/institution/documents", lambda _app: {"kind": "other"},
     expect(other=INVALID, owner=INVALID, member=INVALID)),
    # A verified institution keeps its documents.
    ("POST", "/provider/institution/documents/{doc}/delete", None,
     expect(owner=REFUSED, member=REFUSED)),
    ("POST", "/provider/institution/submit", None, ANY_PROVIDER),
    ("GET", "/documents/{doc}", None, expect(staff=OK)),
    ("POST", "/provider/markdown-preview", lambda _app: {"description": "**x**"}, ANY_PROVIDER),
    ("GET", "/provider/listings", None, ANY_PROVIDER),
    ("GET", "/provider/listings/new", None, ANY_PROVIDER),
    ("POST", "/provider/listings/new", listing_form, ANY_PROVIDER),
    ("GET", "/provider/listings/{draft}/edit", None, OWN_OBJECT),
    ("POST", "/provider/listings/{draft}/edit", listing_form, OWN_OBJECT),
    ("GET", "/provider/listings/{draft}/preview", None, OWN_OBJECT),
    ("POST", "/provider/listings/{draft}/submit", None, OWN_OBJECT),
    ("POST", "/provider/listings/{pending}/withdraw", None, OWN_OBJECT),
    ("POST", "/provider/listings/{published}/discard", None, OWN_OBJECT),
    ("POST", "/provider/listings/{published}/archive", None, OWN_OBJECT),
    ("POST", "/provider/listings/{draft}/restore", None,
     expect(owner=REFUSED, member=REFUSED)),  # only an archived listing is restored
    ("POST", "/provider/listings/{published}/duplicate", None, OWN_OBJECT),
    ("GET", "/logos/{org}", None, EVERYONE),  # the institution is listed
    ("GET", "/team", None, ANY_PROVIDER),
    # Leaving: a member leaves; the sole owners (owner, other) are refused with a message.
    ("POST", "/team/leave", None, expect(other=OK)),
    ("GET", "/team/join", None, expect(enterprise=OK, other=OK, staff=OK)),
    ("GET", "/team/join/{code}", None, EVERYONE),
    # Accepting: refused (409, nothing changed) for anyone already in an organisation or staff.
    ("POST", "/team/join/{code}", None, expect(enterprise=REFUSED, other=REFUSED,
                                                owner=REFUSED, member=REFUSED, staff=REFUSED)),
    ("POST", "/team/join/{code}/signup",
     lambda _app: {"full_name": "New Person", "email": "invitee@example.cn",
                   "password": "Joining-team-2026", "confirm": "Joining-team-2026",
                   "accept_terms": "y"}, EVERYONE),
    ("POST", "/team/invite", lambda _app: {"email": "someone@example.cn"},
     expect(member=FORBIDDEN, other=OK)),  # "other" invites to their own institution
    ("POST", "/team/invitations/{invitation}/revoke", None, OWNER_ONLY),
    ("POST", "/team/members/{member}/remove", None, OWNER_ONLY),
    ("POST", "/team/members/{member}/make-owner", None, OWNER_ONLY),
    ("GET", "/staff/verification", None, STAFF_ONLY),
    ("GET", "/staff/verification?status=verified", None, STAFF_ONLY),
    ("GET", "/staff/verification/{org}", None, STAFF_ONLY),
    ("POST", "/staff/verification/{org}/approve", None, STAFF_REFUSED),
    ("POST", "/staff/verification/{org}/reject", lambda _app: {"reason": "Not good enough"},
     STAFF_REFUSED),
    ("POST", "/staff/verification/{org}/request-info", lambda _app: {"reason": "Send licence"},
     STAFF_REFUSED),
    ("POST", "/staff/verification/{org}/suspend", lambda _app: {"reason": "Complaints received"},
     STAFF_ONLY),
    ("POST", "/staff/verification/{org}/reinstate", None, STAFF_REFUSED),
    ("GET", "/staff/moderation", None, STAFF_ONLY),
    ("GET", "/staff/moderation/{pending}", None, STAFF_ONLY),
    ("GET", "/staff/moderation/{pending}/preview", None, STAFF_ONLY),
    ("POST", "/staff/moderation/{pending}/approve", None, STAFF_ONLY),
    ("POST", "/staff/moderation/{pending}/reject", lambda _app: {"reason": "Needs more detail"},
     STAFF_ONLY),
    ("POST", "/staff/moderation/{published}/suspend", lambda _app: {"reason": "Misleading"},
     STAFF_ONLY),
    ("POST", "/staff/moderation/{published}/reinstate", None, STAFF_REFUSED),
]

CASES = [pytest.param(method, path, data, persona, expectations[persona],
                      id=f"{method} {path} as {persona}")
         for method, path, data, expectations in ROUTES for persona in PERSONAS]


@pytest.mark.parametrize(("method", "path", "data", "persona", "expected"), CASES)
def test_route_permissions(app, world, method, path, data, persona, expected):
    client = app.test_client()
    if persona != "visitor":
        ps.login(client, world.users[persona])
    url = path.format(**world.ids)
    token = csrf_token(client, "/")
    before = snapshot(app) if expected in (LOGIN, FORBIDDEN, REFUSED, INVALID) else None
    if method == "GET":
        response = client.get(url)
    else:
        payload = {"csrf_token": token, **(data(app) if data else {})}
        response = client.post(url, data=payload, headers={"X-CSRFToken": token})

    if expected == LOGIN:
        assert response.status_code == 302
        assert "/login" in response.headers["Location"]
    elif expected == FORBIDDEN:
        assert response.status_code == 403
        assert "Not allowed" in response.get_data(as_text=True)
    elif expected in (REFUSED, INVALID):
        assert response.status_code == expected
    else:
        # Allowed means the action went through: a page, or a redirect that is not the login.
        assert response.status_code in (200, 302), (response.status_code,
                                                    response.get_data(as_text=True)[-1500:])  # noqa
        if response.status_code == 302:
            assert "/login" not in response.headers["Location"]
    response.close()  # a file download holds its file open until closed
    if before is not None:
        assert snapshot(app) == before, "a refused request changed the database"


@pytest.mark.parametrize("persona", ["owner", "member", "enterprise", "staff"])
def test_other_institutions_listings_are_not_reachable(app, world, persona):
    """Object ids of another institution's listing answer 403 for everyone but its members."""
    client = app.test_client()
    ps.login(client, world.users[persona])
    before = snapshot(app)
    assert client.get(f"/provider/listings/{world.ids['other_product']}/edit").status_code == 403
    token = csrf_token(client, "/")
    response = client.post(f"/provider/listings/{world.ids['other_product']}/archive",
                           data={"csrf_token": token})
    assert response.status_code == 403
    assert snapshot(app) == before


def test_missing_objects_are_404_not_500(app, world):
    client = app.test_client()
    ps.login(client, world.users["owner"])
    assert client.get("/provider/listings/999999/edit").status_code == 404
    assert client.get("/documents/999999").status_code == 404
    staff = app.test_client()
    ps.login(staff, world.users["staff"])
    assert staff.get("/staff/verification/999999").status_code == 404
    assert staff.get("/staff/moderation/999999").status_code == 404


def test_posts_without_csrf_token_are_refused_and_change_nothing(app, world):
    client = app.test_client()
    ps.login(client, world.users["owner"])
    staff = app.test_client()
    ps.login(staff, world.users["staff"])
    before = snapshot(app)
    response = client.post(f"/provider/listings/{world.ids['published']}/archive")
    assert response.status_code == 400
    assert staff.post(f"/staff/moderation/{world.ids['pending']}/approve").status_code == 400
    assert snapshot(app) == before


def test_logo_of_an_unlisted_institution_is_private(app, world):
    with app.app_context():
        db.session.get(Organisation, world.ids["org"]).suspended = True
        db.session.commit()
    statuses = {}
    for persona in PERSONAS:
        client = app.test_client()
        if persona != "visitor":
            ps.login(client, world.users[persona])
        with client.get(f"/logos/{world.ids['org']}") as response:  # closes the file
            statuses[persona] = response.status_code
    assert statuses == {"visitor": 404, "enterprise": 404, "other": 404, "owner": 200,
                        "member": 200, "staff": 200}
