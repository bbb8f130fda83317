"""Order lists for buyers, institutions and staff: filters, counts and pagination."""

from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, joinedload, selectinload

from catalog.services import Page, paginate
from marketplace.models import Organisation
from orders import states
from orders.models import ORDER_STATUSES, Order, Payment

# Tab -> statuses. "todo" depends on who is looking.
GROUPS = states.TABS
NEEDS_ACTION = states.ACTS_NEXT  # per role: the states in which an order waits on that side
GROUP_LABELS = {"todo": "Needs action", "open": "Open", "completed": "Completed",
                "closed": "Closed", "all": "All"}


@dataclass
class OrderFilters:
    group: str = "all"
    status: str | None = None
    q: str = ""
    method: str | None = None  # staff: card / bank_transfer / voucher
    awaiting_transfer: bool = False

    @classmethod
    def from_args(cls, args, default_group: str = "all") -> "OrderFilters":
        group = args.get("group") or default_group
        status = args.get("status") or None
        method = args.get("method") or None
        return cls(group=group if group in GROUPS or group == "todo" else default_group,
                   status=status if status in ORDER_STATUSES else None,
                   q=(args.get("q") or "").strip()[:100],
                   method=method if method in ("card", "bank_transfer", "voucher") else None,
                   awaiting_transfer=args.get("awaiting") == "transfer")


def _scope(*, buyer_org_id: int | None, provider_org_id: int | None):
    conditions = []
    if buyer_org_id is not None:
        conditions.append(Order.buyer_org_id == buyer_org_id)
    if provider_org_id is not None:
        conditions.append(Order.provider_org_id == provider_org_id)
    return conditions


def list_orders(session: Session, filters: OrderFilters, role: str, *, page: int,
                page_size: int, buyer_org_id: int | None = None,
                provider_org_id: int | None = None) -> Page:
    conditions = _scope(buyer_org_id=buyer_org_id, provider_org_id=provider_org_id)
    statuses = NEEDS_ACTION.get(role, ()) if filters.group == "todo" else GROUPS[filters.group]
    conditions.append(Order.status.in_(statuses))
    if filters.status:
        conditions.append(Order.status == filters.status)
    if filters.method:
        conditions.append(Order.payment_method == filters.method)
    if filters.awaiting_transfer:
        conditions.append(Order.id.in_(select(Payment.order_id).where(
            Payment.method == "bank_transfer", Payment.status == "pending")))
    if filters.q:
        like = f"%{filters.q}%"
        conditions.append(or_(Order.number.ilike(like), Order.title.ilike(like),
                              Order.buyer_org_id.in_(select(Organisation.id).where(
                                  Organisation.name.ilike(like))),
                              Order.provider_org_id.in_(select(Organisation.id).where(
                                  Organisation.name.ilike(like)))))
    stmt = (select(Order).where(*conditions)
            .options(joinedload(Order.buyer), joinedload(Order.provider),
                     # progress bars of accepted/in-progress orders (Order.progress_percent):
                     # two queries per page instead of two per order
                     selectinload(Order.progress_updates), selectinload(Order.milestones))
            .order_by(Order.created_at.desc(), Order.id.desc()))
    return paginate(session, stmt, page, page_size)


def status_counts(session: Session, *, buyer_org_id: int | None = None,
                  provider_org_id: int | None = None) -> dict[str, int]:
    """Orders per status (only statuses that occur), in one query."""
    return dict(session.execute(
        select(Order.status, func.count(Order.id))
        .where(*_scope(buyer_org_id=buyer_org_id, provider_org_id=provider_org_id))
        .group_by(Order.status)).all())


def groups_from(rows: dict[str, int], role: str) -> dict[str, int]:
    """The tab counts (GROUPS plus "todo" for ``role``) from per-status counts."""
    counts = {name: sum(rows.get(s, 0) for s in statuses) for name, statuses in GROUPS.items()}
    counts["todo"] = sum(rows.get(s, 0) for s in NEEDS_ACTION.get(role, ()))
    return counts


def group_counts(session: Session, role: str, *, buyer_org_id: int | None = None,
                 provider_org_id: int | None = None) -> dict[str, int]:
    return groups_from(status_counts(session, buyer_org_id=buyer_org_id,
                                     provider_org_id=provider_org_id), role)


def awaiting_transfer_count(session: Session) -> int:
    return session.scalar(select(func.count(Payment.id)).where(
        Payment.method == "bank_transfer", Payment.status == "pending")) or 0
