"""Quotes for quote-mode listings, and applications for financial products.

Quote: the buyer sends a request (need, budget, deadline, files) → the institution answers
with a price, a due date and milestones (a newer quote supersedes the previous one) → the
buyer accepts (an order awaiting payment, with the quote's milestones) or declines. Unanswered
requests and unaccepted quotes expire.

Application: "apply" on a financial product creates an order of kind ``application``. Its
price is the service fee (often zero: then it is paid at once); the institution approves
(``accept``) or declines it like any order.
"""

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, joinedload, selectinload

from catalog.models import Product
from catalog.services import paginate, visible_products_condition
from marketplace import permissions
from marketplace.database import utcnow
from marketplace.i18n import format_date, local_today
from marketplace.models import User
from marketplace.notifications import notify_organisation
from orders import checkout, commission, contracts, payments, timeline, workflow
from orders.models import Milestone, Order, OrderLine, Quote, QuoteRequest
from orders.money import MoneyError, format_amount, parse_share

DEFAULT_REQUEST_DAYS = 14
DEFAULT_VALID_DAYS = 14
REQUEST_STATUS = {
    "open": (_l("Waiting for a quote"), "warning"), "quoted": (_l("Quote received"), "info"),
    # "Quote accepted/declined", not the order statuses' "Accepted"/"Declined" (已接单/已拒单).
    "accepted": (_l("Quote accepted"), "success"), "declined": (_l("Quote declined"), "secondary"),
    "expired": (_l("Expired"), "secondary"), "withdrawn": (_l("Withdrawn"), "secondary"),
}
# The institution's own words where they differ from the buyer's: it SENT the quote.
PROVIDER_REQUEST_STATUS = {
    **REQUEST_STATUS,
    "quoted": (_l("Quote sent"), "info"),
}


def request_statuses(side: str) -> dict[str, tuple[str, str]]:
    """Status -> (label, badge colour) of quote requests as ``side`` (buyer/provider) says it."""
    return PROVIDER_REQUEST_STATUS if side == "provider" else REQUEST_STATUS


class QuoteError(ValueError):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


def _setting(name: str, default: int) -> int:
    try:
        return int(current_app.config.get(name, default))
    except RuntimeError:
        return default


def _visible(session: Session, product: Product) -> bool:
    return session.scalar(select(Product.id).where(Product.id == product.id,
                                                   visible_products_condition())) is not None


def _require_buyer(user: User) -> None:
    if not permissions.is_buyer_account(user):
        raise QuoteError(_("Only enterprise accounts can request quotes or apply."), status=403)
    if user.organisation is not None and user.organisation.suspended:
        from providers.credibility import suspended_buyer_message

        raise QuoteError(suspended_buyer_message(user.organisation), status=403)


# --------------------------------------------------------------------------- requests

def request_quote(session: Session, user: User, product: Product, need: str,
                  budget: int | None, deadline: date | None,
                  now: datetime | None = None) -> QuoteRequest:
    _require_buyer(user)
    now = now or utcnow()
    if product.pricing_mode != "quote" or not _visible(session, product):
        raise QuoteError(_("This service does not take quote requests."), status=404)
    if deadline is not None and deadline < local_today(now):
        raise QuoteError(_("The deadline is in the past."))
    request = QuoteRequest(
        product_id=product.id, buyer_org_id=user.organisation_id, buyer_user_id=user.id,
        provider_org_id=product.provider_id, need=need.strip(), budget=budget,
        currency=product.currency, deadline=deadline, created_at=now,
        expires_at=now + timedelta(days=_setting("QUOTE_REQUEST_DAYS", DEFAULT_REQUEST_DAYS)))
    session.add(request)
    session.flush()
    notify_organisation(
        session, product.provider, "quote_request",
        lambda: _("New quote request: %(title)s", title=product.title),
        lambda: _("%(buyer)s asks for a quote.", buyer=user.organisation.name)
        + "\n\n" + need.strip()[:500],
        f"/provider/quotes/{request.id}")
    return request


def send_quote(session: Session, user: User, request: QuoteRequest, price: int, due_date: date,
               note: str, milestones: list[dict], valid_days: int,
               now: datetime | None = None) -> Quote:
    now = now or utcnow()
    if user.role != "provider" or user.organisation_id != request.provider_org_id:
        raise QuoteError(_("Only the institution asked can answer this request."), status=403)
    if request.status not in ("open", "quoted"):
        raise QuoteError(_("This request is closed."), status=409)
    if price <= 0:
        raise QuoteError(_("The price must be more than zero."))
    if due_date < local_today(now):
        raise QuoteError(_("The delivery date is in the past."))
    if milestones and sum(m["share_bp"] for m in milestones) != 10_000:
        raise QuoteError(_("Milestone shares must add up to 100%."))
    session.execute(update(Quote).where(Quote.request_id == request.id, Quote.status == "sent")
                    .values(status="superseded"))
    quote = Quote(request_id=request.id, price=price, currency=request.currency,
                  due_date=due_date, note=note.strip(), milestones=milestones,
                  valid_until=now + timedelta(days=valid_days), created_by_id=user.id,
                  created_at=now)
    session.add(quote)
    request.status = "quoted"
    session.flush()
    session.refresh(request)
    notify_organisation(
        session, request.buyer, "quote_received",
        lambda: _("Quote received: %(price)s", price=format_amount(price, request.currency)),
        lambda: _("%(institution)s sent a quote for “%(title)s”, delivery by %(date)s.",
                  institution=request.provider.name, title=request.subject,
                  date=format_date(due_date)),
        f"/quotes/{request.id}")
    return quote


def parse_milestones(text: str) -> list[dict]:
    """"title | share % | YYYY-MM-DD" per line → [{"title", "share_bp", "due_date"}]."""
    result = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        parts = [part.strip() for part in raw.split("|")]
        if len(parts) < 2 or not parts[0]:
            raise QuoteError(_("Milestone line %(number)d: write “title | share %% | due date”.",
                               number=number))
        try:
            share = parse_share(parts[1])
        except MoneyError as exc:
            raise QuoteError(_("Milestone line %(number)d: %(error)s", number=number,
                               error=exc)) from None
        due = None
        if len(parts) > 2 and parts[2]:
            try:
                due = date.fromisoformat(parts[2]).isoformat()
            except ValueError:
                raise QuoteError(_("Milestone line %(number)d: dates are YYYY-MM-DD.",
                                   number=number)) from None
        result.append({"title": parts[0][:200], "share_bp": share, "due_date": due})
    return result


def decide(session: Session, user: User, quote: Quote, accept: bool,
           now: datetime | None = None) -> Order | None:
    """The buyer accepts (→ an order awaiting payment) or declines a quote."""
    now = now or utcnow()
    request = quote.request
    if user.role != "enterprise" or user.organisation_id != request.buyer_org_id:
        raise QuoteError(_("Only the enterprise that asked can decide on this quote."),
                         status=403)
    if quote.status != "sent" or request.status != "quoted":
        raise QuoteError(_("This quote can no longer be accepted or declined."), status=409)
    if quote.valid_until < now:
        raise QuoteError(_("This quote has expired. Ask the institution for a new one."),
                         status=409)
    if accept:
        _require_buyer(user)  # a suspended enterprise places no new orders
    taken = session.execute(update(Quote).where(Quote.id == quote.id, Quote.status == "sent")
                            .values(status="accepted" if accept else "declined", decided_at=now)
                            .execution_options(synchronize_session=False))
    if taken.rowcount != 1:
        raise QuoteError(_("This quote was decided a moment ago."), status=409)
    request.status = "accepted" if accept else "declined"
    session.refresh(quote)
    if not accept:
        notify_organisation(
            session, request.provider, "quote_declined", lambda: _("Quote declined"),
            lambda: _("%(buyer)s declined your quote for “%(title)s”.",
                      buyer=request.buyer.name, title=request.subject),
            f"/provider/quotes/{request.id}")
        session.flush()
        return None
    order = _order_for_quote(session, user, quote, now)
    notify_organisation(
        session, request.provider, "quote_accepted",
        lambda: _("Quote accepted: order %(number)s", number=order.number),
        lambda: _("%(buyer)s accepted your quote of %(price)s. The order starts once it is "
                  "paid.", buyer=request.buyer.name,
                  price=format_amount(quote.price, quote.currency)),
        workflow.order_link(order, "provider"))
    return order


def _new_order(session: Session, user: User, product: Product | None, kind: str, price: int,
               title: str, package_name: str, requirements: str, now: datetime, *,
               provider_org_id: int | None = None, category_id: int | None = None,
               currency: str | None = None, **fields) -> Order:
    """An order awaiting payment on ``product``, or (no listing: an awarded proposal of an
    institution without listings) for ``provider_org_id`` in ``category_id``."""
    if product is not None:
        provider_org_id, category_id = product.provider_id, product.category_id
        currency = product.currency
    order = Order(number=f"tmp-{uuid.uuid4().hex[:24]}", kind=kind,
                  buyer_org_id=user.organisation_id, buyer_user_id=user.id,
                  provider_org_id=provider_org_id,
                  product_id=product.id if product is not None else None,
                  category_id=category_id, title=title[:200], currency=currency or "CNY",
                  subtotal=price,
                  commission_bp=commission.rate_for(session, provider_org_id, category_id),
                  requirements=requirements, created_at=now,
                  payment_due_at=now + timedelta(days=_setting(
                      "PAYMENT_WINDOW_DAYS", checkout.DEFAULT_PAYMENT_WINDOW_DAYS)), **fields)
    order.lines.append(OrderLine(product_id=order.product_id, package_id=None,
                                 product_title=title[:200] if product is None else product.title,
                                 package_name=package_name, unit_price=price, quantity=1,
                                 delivery_days=product.delivery_days if product else None))
    session.add(order)
    session.flush()
    order.number = checkout.order_number(order, now)
    return order


def _order_for_quote(session: Session, user: User, quote: Quote, now: datetime) -> Order:
    request = quote.request
    due = datetime.combine(quote.due_date, datetime.min.time(), tzinfo=now.tzinfo)
    order = _new_order(session, user, request.product, "quote", quote.price, request.subject,
                       f"Quote #{quote.id}", request.need, now, quote_id=quote.id, due_at=due,
                       provider_org_id=request.provider_org_id,
                       category_id=request.category_id, currency=quote.currency)
    for position, item in enumerate(quote.milestones or []):
        session.add(Milestone(order_id=order.id, position=position, title=item["title"],
                              share_bp=item["share_bp"],
                              due_date=date.fromisoformat(item["due_date"])
                              if item.get("due_date") else None))
    workflow.record_event(session, order, "placed", user, note=timeline.note(
        "quote_accepted", price_amount=quote.price, currency=quote.currency,
        due_date=quote.due_date))
    session.flush()
    contracts.ensure_for_order(session, order, user, now)  # its technology contract (合同)
    # A zero price (an awarded zero-fee financial proposal) leaves nothing to pay: the order
    # is paid at once and waits for the institution to accept it, like a free application.
    payments.voucher.paid_in_full(session, order, workflow.SYSTEM, now=now)
    return order


# --------------------------------------------------------------------------- applications

def apply(session: Session, user: User, product: Product, amount: int | None,
          term_months: int | None, need: str, now: datetime | None = None) -> Order:
    """Apply for a financial product: an application order the institution approves or
    declines. A zero service fee means it goes straight to the institution."""
    _require_buyer(user)
    now = now or utcnow()
    if product.pricing_mode != "financial" or not _visible(session, product):
        raise QuoteError(_("This service does not take applications."), status=404)
    if amount is not None:
        if product.amount_min is not None and amount < product.amount_min:
            raise QuoteError(_("The smallest amount is %(amount)s.",
                               amount=format_amount(product.amount_min, product.currency)))
        if product.amount_max is not None and amount > product.amount_max:
            raise QuoteError(_("The largest amount is %(amount)s.",
                               amount=format_amount(product.amount_max, product.currency)))
    if term_months is not None:
        if product.term_min_months and term_months < product.term_min_months:
            raise QuoteError(_("The shortest term is %(num)d months.",
                               num=product.term_min_months))
        if product.term_max_months and term_months > product.term_max_months:
            raise QuoteError(_("The longest term is %(num)d months.",
                               num=product.term_max_months))
    fee = product.service_fee or 0
    order = _new_order(session, user, product, "application", fee,
                       f"Application: {product.title}", "Service fee" if fee else "Application",
                       need.strip(), now, application_amount=amount,
                       application_term_months=term_months)
    workflow.record_event(session, order, "placed", user,
                          note=timeline.note("application_submitted"))
    payments.voucher.paid_in_full(session, order, workflow.SYSTEM, now=now)  # a zero fee
    session.flush()
    return order


# --------------------------------------------------------------------------- queries

def load_request(session: Session, request_id: int) -> QuoteRequest | None:
    return session.scalar(select(QuoteRequest).where(QuoteRequest.id == request_id).options(
        joinedload(QuoteRequest.product), joinedload(QuoteRequest.buyer),
        joinedload(QuoteRequest.provider), selectinload(QuoteRequest.quotes),
        selectinload(QuoteRequest.files)))


def requests_for(session: Session, *, page: int = 1, page_size: int = 24,
                 buyer_org_id: int | None = None, provider_org_id: int | None = None,
                 status: str | None = None):
    """One page of an enterprise's or an institution's quote requests, newest first, with
    what each row shows (service, both organisations) loaded with it; only those in
    ``status`` when given (one of REQUEST_STATUS)."""
    stmt = select(QuoteRequest).options(joinedload(QuoteRequest.product),
                                        joinedload(QuoteRequest.buyer),
                                        joinedload(QuoteRequest.provider))
    if buyer_org_id is not None:
        stmt = stmt.where(QuoteRequest.buyer_org_id == buyer_org_id)
    if provider_org_id is not None:
        stmt = stmt.where(QuoteRequest.provider_org_id == provider_org_id)
    if status in REQUEST_STATUS:
        stmt = stmt.where(QuoteRequest.status == status)
    return paginate(session, stmt.order_by(QuoteRequest.created_at.desc(),
                                           QuoteRequest.id.desc()), page, page_size)


def unanswered_count(session: Session, provider_org_id: int) -> int:
    """Quote requests to an institution still waiting for its quote."""
    return session.scalar(select(func.count(QuoteRequest.id)).where(
        QuoteRequest.provider_org_id == provider_org_id, QuoteRequest.status == "open")) or 0


def current_quote(request: QuoteRequest) -> Quote | None:
    live = [q for q in request.quotes if q.status in ("sent", "accepted")]
    return live[-1] if live else None


@dataclass
class Expired:
    requests: int
    quotes: int


def expire(session: Session, now: datetime) -> Expired:
    """Open requests past their date and sent quotes past their validity lapse."""
    quotes = session.execute(update(Quote).where(Quote.status == "sent", Quote.valid_until < now)
                             .values(status="expired")
                             .execution_options(synchronize_session=False)).rowcount
    session.expire_all()
    # A quoted request whose quotes all lapsed expires with them.
    stale = session.scalars(select(QuoteRequest).where(QuoteRequest.status == "quoted")
                            .options(selectinload(QuoteRequest.quotes))).all()
    requests = 0
    for request in stale:
        if request.quotes and all(q.status in ("expired", "superseded") for q in request.quotes):
            request.status = "expired"
            requests += 1
    requests += session.execute(
        update(QuoteRequest).where(QuoteRequest.status == "open", QuoteRequest.expires_at < now)
        .values(status="expired").execution_options(synchronize_session=False)).rowcount
    session.flush()
    return Expired(requests=requests, quotes=quotes)
