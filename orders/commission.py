"""Platform commission: a rate per category, overridable per provider contract.

Lookup order: the provider's contract rate, then the listing's category, then its parent
category, then the platform default (config ``COMMISSION_DEFAULT_BP``). The rate is copied
onto the order at checkout, so later changes never re-price an existing order.
"""

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.models import Category
from marketplace.audit import record as audit_record
from marketplace.models import Organisation
from orders.models import CommissionRate, ProviderCommission

DEFAULT_RATE_BP = 500


class CommissionError(ValueError):
    pass


def _default_rate() -> int:
    try:
        from flask import current_app

        return int(current_app.config.get("COMMISSION_DEFAULT_BP", DEFAULT_RATE_BP))
    except RuntimeError:  # outside an application context
        return DEFAULT_RATE_BP


def rate_for(session: Session, provider_org_id: int, category_id: int | None) -> int:
    override = session.scalar(select(ProviderCommission.rate_bp)
                              .where(ProviderCommission.provider_org_id == provider_org_id))
    if override is not None:
        return override
    category = session.get(Category, category_id) if category_id else None
    while category is not None:
        rate = session.scalar(select(CommissionRate.rate_bp)
                              .where(CommissionRate.category_id == category.id))
        if rate is not None:
            return rate
        category = category.parent
    return _default_rate()


def _check(rate_bp: int) -> int:
    if not isinstance(rate_bp, int) or not 0 <= rate_bp <= 10_000:
        raise CommissionError("A commission rate is between 0% and 100%.")
    return rate_bp


def _percent(rate_bp: int | None) -> str | None:
    return None if rate_bp is None else f"{rate_bp / 100:g}%"


def set_category_rate(session: Session, category_id: int, rate_bp: int | None,
                      actor=None) -> None:
    """Set (or with None, remove) a category's rate; a change is written to the audit log,
    since it re-prices every order placed afterwards."""
    row = session.scalar(select(CommissionRate).where(CommissionRate.category_id == category_id))
    before = row.rate_bp if row is not None else None
    if rate_bp is None:
        if row is not None:
            session.delete(row)
    elif row is None:
        session.add(CommissionRate(category_id=category_id, rate_bp=_check(rate_bp)))
    else:
        row.rate_bp = _check(rate_bp)
    if before != rate_bp:
        audit_record(session, actor, "commission.set_category", session.get(Category, category_id),
                     before=_percent(before), after=_percent(rate_bp))


def set_provider_rate(session: Session, provider_org_id: int, rate_bp: int | None,
                      note: str = "", actor=None) -> None:
    """Set (or with None, remove) a provider's contract rate, audited like a category rate."""
    row = session.scalar(select(ProviderCommission)
                         .where(ProviderCommission.provider_org_id == provider_org_id))
    before = row.rate_bp if row is not None else None
    note = note.strip()[:200]
    if rate_bp is None:
        if row is not None:
            session.delete(row)
    elif row is None:
        session.add(ProviderCommission(provider_org_id=provider_org_id, rate_bp=_check(rate_bp),
                                       note=note))
    else:
        row.rate_bp = _check(rate_bp)
        row.note = note
    if before != rate_bp:
        audit_record(session, actor, "commission.set_provider",
                     session.get(Organisation, provider_org_id), reason=note or None,
                     before=_percent(before), after=_percent(rate_bp))


def category_rates(session: Session) -> dict[int, int]:
    return dict(session.execute(select(CommissionRate.category_id, CommissionRate.rate_bp)).all())


def provider_rates(session: Session) -> list[ProviderCommission]:
    return list(session.scalars(select(ProviderCommission).order_by(ProviderCommission.id)))
