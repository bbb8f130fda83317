"""Public institution queries: the directory and provider profiles."""

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog.models import Product
from catalog.services import (
    INSTITUTION_TYPE_CODES,
    REGION_CODES,
    Page,
    listed_providers_condition,
    paginate,
    region_condition,
    visible_products_condition,
)
from marketplace.models import Organisation


@dataclass
class DirectoryFilters:
    institution_type: str | None = None
    region: str | None = None

    @classmethod
    def from_args(cls, args) -> "DirectoryFilters":
        kind = args.get("type") or None
        region = args.get("region") or None
        return cls(
            institution_type=kind if kind in INSTITUTION_TYPE_CODES else None,
            region=region if region in REGION_CODES else None,
        )

    @property
    def active(self) -> bool:
        return bool(self.institution_type or self.region)


@dataclass
class DirectoryEntry:
    organisation: Organisation
    product_count: int


def directory(session: Session, filters: DirectoryFilters, page: int, page_size: int) -> Page:
    """Listed institutions, most listings first, each with its number of visible products."""
    counts = (
        select(Product.provider_id, func.count(Product.id).label("n"))
        .where(visible_products_condition())
        .group_by(Product.provider_id)
        .subquery()
    )
    product_count = func.coalesce(counts.c.n, 0)
    conditions = [listed_providers_condition()]
    if filters.institution_type:
        conditions.append(Organisation.institution_type == filters.institution_type)
    if filters.region:
        conditions.append(region_condition(Organisation.regions_served, filters.region))
    stmt = (
        select(Organisation, product_count.label("product_count"))
        .outerjoin(counts, counts.c.provider_id == Organisation.id)
        .where(*conditions)
        .order_by(product_count.desc(), Organisation.name.asc(), Organisation.id.asc())
    )
    result = paginate(session, stmt, page, page_size, scalars=False)
    result.items = [DirectoryEntry(org, count) for org, count in result.items]
    return result


def get_provider(session: Session, org_id: int) -> Organisation | None:
    """A service institution by id, whatever its status (enterprises are not institutions).

    Callers decide visibility with ``permissions.can_view_provider_profile``.
    """
    org = session.get(Organisation, org_id)
    if org is None or org.kind != "provider":
        return None
    return org
