"""Staff console (platform monitors): the overview page later issues grow into the console.

``overview`` is a plain function over a session, so the same figures serve the page, the
CLI and tests.
"""

from dataclasses import dataclass

from flask import Blueprint
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from catalog.models import PRODUCT_STATUSES, Product
from marketplace.models import ROLES, VERIFICATION_STATUSES, Organisation, User
from marketplace.permissions import staff_required

bp = Blueprint("staff", __name__, url_prefix="/staff")

RECENT_SIGNUPS = 20


@dataclass(frozen=True)
class Overview:
    enterprises_by_status: dict[str, int]
    providers_by_status: dict[str, int]
    products_by_status: dict[str, int]
    users_by_role: dict[str, int]
    recent_signups: list[Organisation]

    @property
    def enterprises(self) -> int:
        return sum(self.enterprises_by_status.values())

    @property
    def providers(self) -> int:
        return sum(self.providers_by_status.values())

    @property
    def products(self) -> int:
        return sum(self.products_by_status.values())

    @property
    def users(self) -> int:
        return sum(self.users_by_role.values())


def _counts(session: Session, column, keys, *where) -> dict[str, int]:
    """Row counts grouped by ``column``, with a zero for every known key."""
    rows = session.execute(select(column, func.count()).where(*where).group_by(column)).all()
    found = dict(rows)
    return {key: found.get(key, 0) for key in keys} | {
        key: value for key, value in found.items() if key not in keys}


def overview(session: Session, recent: int = RECENT_SIGNUPS) -> Overview:
    return Overview(
        enterprises_by_status=_counts(session, Organisation.verification_status,
                                      VERIFICATION_STATUSES, Organisation.kind == "enterprise"),
        providers_by_status=_counts(session, Organisation.verification_status,
                                    VERIFICATION_STATUSES, Organisation.kind == "provider"),
        products_by_status=_counts(session, Product.status, PRODUCT_STATUSES),
        users_by_role=_counts(session, User.role, ROLES),
        recent_signups=list(session.scalars(
            select(Organisation)
            .options(selectinload(Organisation.members))
            .order_by(Organisation.created_at.desc(), Organisation.id.desc())
            .limit(recent))),
    )


@bp.get("")
@staff_required
def console():
    """The monitors' console dashboard (marketplace/console.py), with the overview figures."""
    from marketplace.console import dashboard_page

    return dashboard_page()
