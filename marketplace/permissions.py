"""Who may do what: role checks for routes and ownership checks for objects.

Every view that touches an object asks this module; nothing else decides permissions.
"""

from functools import wraps

from flask import abort
from flask_login import current_user, login_required


def has_role(user, *roles: str) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    # Admins can do everything staff can.
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


def is_member_of(user, organisation_id: int | None) -> bool:
    return (
        getattr(user, "is_authenticated", False)
        and organisation_id is not None
        and user.organisation_id == organisation_id
    )


def can_view_product(user, product) -> bool:
    """Published listings of listed institutions are public; others only for owners and staff."""
    if product.status == "published" and product.provider.is_listed:
        return True
    return has_role(user, "staff") or is_member_of(user, product.provider_id)


def can_view_provider_profile(user, organisation) -> bool:
    if organisation.is_listed:
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
    return review.published_at is not None and review.hidden_at is None


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
