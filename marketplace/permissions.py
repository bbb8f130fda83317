"""Who may do what: role checks for routes and ownership checks for objects.

Every view, service and query that needs one of these rules asks this module; nothing else
decides permissions. Where a rule is needed both in Python (one object in hand) and in SQL
(a query over many), both forms sit side by side here and tests/test_permissions.py checks
them against each other.
"""

from functools import wraps

from flask import abort
from flask_login import current_user, login_required
from sqlalchemy import Select, and_, select
from sqlalchemy.sql.elements import ColumnElement

from marketplace.models import Organisation, User

# Admins can do everything staff can.
STAFF_ROLES = ("staff", "admin")


def has_role(user, *roles: str) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    if user.role == "admin" and "staff" in roles:
        return True
    return user.role in roles


def role_required(*roles: str):
    """Visitors are sent to log in; signed-in users without the role get 403."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if not has_role(current_user, *roles):
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


staff_required = role_required("staff")
admin_required = role_required("admin")


# --------------------------------------------------------------------------- staff

def is_staff(user) -> bool:
    """Platform staff or admin (signed in or not: also answers for plain ``User`` rows)."""
    return getattr(user, "role", None) in STAFF_ROLES


def staff_users() -> Select:
    """The active staff and admin accounts (who gets the platform's notifications)."""
    return select(User).where(User.role.in_(STAFF_ROLES), User.active.is_(True))


# --------------------------------------------------------------------------- buying

def is_buyer_account(user) -> bool:
    """An enterprise member: the only kind of account that collects, carts, buys and asks
    for quotes (DESIGN.md §2). Whether its enterprise is suspended is ``may_buy``."""
    return bool(getattr(user, "is_authenticated", False) and user.role == "enterprise"
                and user.organisation_id is not None)


def may_buy(user) -> bool:
    """An enterprise member whose enterprise is not suspended may place new orders."""
    return is_buyer_account(user) and not (user.organisation is not None
                                           and user.organisation.suspended)


# --------------------------------------------------------------------------- catalogue visibility

PUBLIC_LISTING_STATUS = "published"


def is_listed_provider(organisation) -> bool:
    """Whether an institution and its published listings may be shown to the public:
    a verified, non-suspended provider (DESIGN.md §3). SQL twin: ``listed_providers_filter``."""
    return organisation.is_listed


def listed_providers_filter() -> ColumnElement[bool]:
    """SQL twin of ``is_listed_provider`` (and of ``Organisation.is_listed``)."""
    return and_(
        Organisation.kind == "provider",
        Organisation.verification_status == "verified",
        Organisation.suspended.is_(False),
    )


def is_public_listing(product) -> bool:
    """THE public visibility rule: a published listing of a listed institution.
    SQL twin: ``public_listings_filter``."""
    return product.status == PUBLIC_LISTING_STATUS and is_listed_provider(product.provider)


def public_listings_filter(product_model) -> ColumnElement[bool]:
    """SQL twin of ``is_public_listing``, over ``product_model`` (catalog.models.Product,
    passed in so that this core module does not import the catalogue).

    The provider check is an uncorrelated ``IN (subquery)`` so the condition means the same
    thing wherever it is embedded, including inside queries over ``organisation``.
    """
    listed_ids = select(Organisation.id).where(listed_providers_filter()).correlate(None)
    return and_(product_model.status == PUBLIC_LISTING_STATUS,
                product_model.provider_id.in_(listed_ids))


def is_member_of(user, organisation_id: int | None) -> bool:
    return (
        getattr(user, "is_authenticated", False)
        and organisation_id is not None
        and user.organisation_id == organisation_id
    )


def can_view_product(user, product) -> bool:
    """Published listings of listed institutions are public; others only for owners and staff."""
    if is_public_listing(product):
        return True
    return has_role(user, "staff") or is_member_of(user, product.provider_id)


def can_view_provider_profile(user, organisation) -> bool:
    if is_listed_provider(organisation):
        return True
    return has_role(user, "staff") or is_member_of(user, organisation.id)


class PermissionDenied(Exception):
    """A service refused an action to this user (views answer 403 and change nothing)."""


provider_required = role_required("provider")


def can_manage_institution(user, organisation) -> bool:
    """Provider members act for their own institution only (profile, documents, listings)."""
    return (
        organisation is not None
        and organisation.kind == "provider"
        and has_role(user, "provider")
        and is_member_of(user, organisation.id)
    )


def is_institution_owner(user, organisation) -> bool:
    """The institution's account owner(s) manage its team."""
    return can_manage_institution(user, organisation) and bool(user.is_org_owner)


def can_view_institution_files(user, organisation) -> bool:
    """Qualification documents: the institution's own members and platform staff only."""
    return has_role(user, "staff") or can_manage_institution(user, organisation)


def can_manage_product(user, product) -> bool:
    return can_manage_institution(user, product.provider)


# --------------------------------------------------------------------------- orders

def order_role(user, order) -> str | None:
    """The part a user plays in an order: "buyer" (a member of the buying enterprise),
    "provider" (a member of the selling institution), "staff", or None (no business here)."""
    if not getattr(user, "is_authenticated", False) or not user.active:
        return None
    if user.role == "enterprise" and is_member_of(user, order.buyer_org_id):
        return "buyer"
    if user.role == "provider" and is_member_of(user, order.provider_org_id):
        return "provider"
    if has_role(user, "staff"):
        return "staff"
    return None


def can_view_order(user, order) -> bool:
    """Buyer and provider members see their own orders; staff see every order."""
    return order_role(user, order) is not None


def can_view_quote_request(user, request) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    if user.role == "enterprise" and is_member_of(user, request.buyer_org_id):
        return True
    if user.role == "provider" and is_member_of(user, request.provider_org_id):
        return True
    return has_role(user, "staff")


# --------------------------------------------------------------------------- reviews

def is_public_review(review) -> bool:
    """A review counts and is shown beyond its author and staff once it is published (both
    sides rated, or the blind window passed) and not hidden by staff.
    SQL twin: ``public_reviews_filter``."""
    return review.published_at is not None and review.hidden_at is None


def public_reviews_filter(review_model) -> ColumnElement[bool]:
    """SQL twin of ``is_public_review`` over ``review_model`` (catalog.models.Review)."""
    return and_(review_model.published_at.is_not(None), review_model.hidden_at.is_(None))


def review_side(user, order) -> str | None:
    """The review a user may write on an order: "buyer" (a member of the buying enterprise
    rates the institution) or "provider" (a member of the institution rates the buyer).
    Staff and everyone else write none."""
    role = order_role(user, order)
    return role if role in ("buyer", "provider") else None


def can_view_order_review(user, review, order) -> bool:
    """Double-blind: a party always sees its own side's review, the other side's only once
    published and not hidden; staff see every review of every order."""
    role = order_role(user, order)
    if role == "staff":
        return True
    if role not in ("buyer", "provider"):
        return False
    if review.side == role:
        return True
    return is_public_review(review)


def can_reply_to_review(user, review) -> bool:
    """Only members of the rated institution answer a buyer's review."""
    return (review.side == "buyer" and has_role(user, "provider")
            and is_member_of(user, review.subject_org_id))


def can_moderate_reviews(user) -> bool:
    return has_role(user, "staff")


def can_view_buyer_rating(user, order) -> bool:
    """An enterprise's ratings from institutions are not public: staff see them, and an
    institution sees them on that buyer's orders with it."""
    return order_role(user, order) in ("provider", "staff")


def can_view_statement(user, statement) -> bool:
    """A settlement statement: staff, and members of the institution it pays (read-only)."""
    return has_role(user, "staff") or (has_role(user, "provider")
                                       and is_member_of(user, statement.provider_org_id))


# --------------------------------------------------------------------------- needs (需求)
# ``invited``: whether the user's institution holds a live invitation to (or a proposal on)
# the need; the caller looks it up (demand.services.provider_access).

def need_role(user, need, invited: bool = False) -> str | None:
    """The part a user plays on a need: "buyer" (a member of the enterprise that published
    it), "provider" (an institution member who may read it: invited, or the need is public
    on the board), "staff", or None. Drafts and needs awaiting moderation are only the
    enterprise's and staff's; invitation-only needs only the invited institutions'."""
    if not getattr(user, "is_authenticated", False) or not user.active:
        return None
    if user.role == "enterprise" and is_member_of(user, need.buyer_org_id):
        return "buyer"
    if has_role(user, "staff"):
        return "staff"
    if user.role == "provider" and user.organisation_id is not None:
        if need.status in ("draft", "submitted"):
            return None
        if invited or (need.visibility == "public" and need.status == "open"):
            return "provider"
    return None


def can_view_need(user, need, invited: bool = False) -> bool:
    return need_role(user, need, invited) is not None


def can_view_proposal(user, proposal) -> bool:
    """A proposal (its price and terms included): its institution, the enterprise that
    published the need, and staff. No other institution or enterprise."""
    if not getattr(user, "is_authenticated", False) or not user.active:
        return False
    if user.role == "enterprise" and is_member_of(user, proposal.need.buyer_org_id):
        return True
    if user.role == "provider" and is_member_of(user, proposal.provider_org_id):
        return True
    return has_role(user, "staff")


def can_see_buyer_name(user, need) -> bool:
    """The company behind a need: always for its own members and staff; for institutions
    only when the enterprise chose to show it (the winner learns it from its order)."""
    role = need_role(user, need, invited=True)
    if role in ("buyer", "staff"):
        return True
    return bool(need.show_company)
