"""The double-entry ledger of every order's money. Each posting is a set of lines that sums
to zero (debits positive, credits negative), so every order's entries sum to zero too.

Accounts (per order):

- ``buyer_funds_held``   the buyer's card authorisation held at Stripe for the order (debit
                         while held; captured into platform cash or released back)
- ``platform_cash``      money in the platform's Stripe balance or bank account
- ``escrow``             what the platform owes on an open order: to the provider once the
                         work is accepted, or back to the buyer/voucher if it is not (credit)
- ``voucher_receivable`` voucher value the funder reimburses (debit)
- ``platform_fee_revenue`` the platform's commission (credit)
- ``provider_payable``   what the platform owes the institution (credit until paid out)

Postings:

    held             Dr buyer_funds_held     Cr escrow             card authorised
    transfer         Dr platform_cash        Cr escrow             bank transfer received
    voucher          Dr voucher_receivable   Cr escrow             voucher applied
    capture          Dr platform_cash        Cr buyer_funds_held   card captured
    release          Dr escrow               Cr buyer_funds_held   hold cancelled/uncaptured part
    voucher_return   Dr escrow               Cr voucher_receivable voucher value given back
    refund           Dr escrow               Cr platform_cash      refund before recognition
    recognise        Dr escrow  Cr platform_fee_revenue, Cr provider_payable  (work accepted)
    refund/voucher_return after recognition: Dr provider_payable, Dr platform_fee_revenue,
                     Cr platform_cash / voucher_receivable (fee recomputed on what is left)
    milestone_release Dr escrow Cr platform_fee_revenue, Cr provider_payable  (a milestone
                     approved: its share leaves escrow while the order still runs; never
                     more than escrow holds in money the platform has: ``releasable``)
    clawback         Dr provider_payable, Dr platform_fee_revenue  Cr platform_cash  (staff
                     refund money already released; the institution's next statement
                     deducts it)
    payout           Dr provider_payable     Cr platform_cash      settled with the provider

Card money is captured when the institution accepts the order (issue 13), so from then on
``escrow`` is backed by platform cash: "held by the platform" is ``held_by_platform``.

All amount arithmetic is in orders.money.
"""

import uuid

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from orders.models import LEDGER_ACCOUNTS, LedgerEntry, Order
from orders.money import fee_split

# The words people read for the stored codes (staff order page, statements' ledger trace).
ACCOUNT_LABELS = {
    "buyer_funds_held": _l("Buyer funds held (card authorisation)"),
    "platform_cash": _l("Platform cash"),
    "escrow": _l("Escrow (owed on open orders)"),
    "voucher_receivable": _l("Voucher receivable (from funders)"),
    "platform_fee_revenue": _l("Platform fee revenue"),
    "provider_payable": _l("Payable to institutions"),
}
POSTING_LABELS = {
    "held": _l("Card held"), "transfer": _l("Bank transfer received"),
    "voucher": _l("Voucher applied"), "capture": _l("Card captured"),
    "release": _l("Hold released"), "voucher_return": _l("Voucher value given back"),
    "refund": _l("Refund to the buyer"), "recognise": _l("Work accepted"),
    "payout": _l("Payout to the institution"),
    "milestone_release": _l("Milestone approved: released"),
    "clawback": _l("Clawback from the institution"),
}


def account_label(account: str) -> str:
    return str(ACCOUNT_LABELS.get(account, account))


def posting_label(kind: str) -> str:
    return str(POSTING_LABELS.get(kind, kind))


class LedgerError(ValueError):
    """A posting that would not balance or would make no sense."""


def post(session: Session, order: Order, kind: str, lines: dict[str, int],
         memo: str = "") -> str:
    """Write one balanced posting; zero lines are left out. Returns the posting id."""
    lines = {account: amount for account, amount in lines.items() if amount}
    if not lines:
        return ""
    unknown = set(lines) - set(LEDGER_ACCOUNTS)
    if unknown:
        raise LedgerError(f"unknown accounts {sorted(unknown)}")
    if any(not isinstance(amount, int) or isinstance(amount, bool) for amount in lines.values()):
        raise LedgerError("ledger amounts are integers in minor units")
    if sum(lines.values()) != 0:
        raise LedgerError(f"unbalanced {kind} posting: {lines}")
    posting = uuid.uuid4().hex
    for account, amount in lines.items():
        session.add(LedgerEntry(order_id=order.id, posting=posting, kind=kind, account=account,
                                amount=amount, currency=order.currency, memo=memo[:200]))
    session.flush()
    return posting


def balances(session: Session, order_id: int) -> dict[str, int]:
    """Balance per account for one order (every account present, zero when untouched)."""
    session.flush()
    rows = session.execute(
        select(LedgerEntry.account, func.sum(LedgerEntry.amount))
        .where(LedgerEntry.order_id == order_id)
        .group_by(LedgerEntry.account)
    ).all()
    found = {account: int(total or 0) for account, total in rows}
    return {account: found.get(account, 0) for account in LEDGER_ACCOUNTS}


def entries(session: Session, order_id: int) -> list[LedgerEntry]:
    return list(session.scalars(
        select(LedgerEntry).where(LedgerEntry.order_id == order_id).order_by(LedgerEntry.id)))


def entries_by_order(session: Session, order_ids: list[int]) -> dict[int, list[LedgerEntry]]:
    """The entries of many orders (a settlement statement's), one query per 500 orders."""
    found: dict[int, list[LedgerEntry]] = {order_id: [] for order_id in order_ids}
    for start in range(0, len(order_ids), 500):
        for entry in session.scalars(
                select(LedgerEntry).where(LedgerEntry.order_id.in_(order_ids[start:start + 500]))
                .order_by(LedgerEntry.id)):
            found[entry.order_id].append(entry)
    return found


def recognised(session: Session, order: Order) -> bool:
    return any(entry.kind == "recognise" for entry in entries(session, order.id))


# --------------------------------------------------------------------------- postings

def card_held(session: Session, order: Order, amount: int) -> str:
    return post(session, order, "held", {"buyer_funds_held": amount, "escrow": -amount},
                "Card payment authorised and held")


def transfer_received(session: Session, order: Order, amount: int) -> str:
    return post(session, order, "transfer", {"platform_cash": amount, "escrow": -amount},
                "Bank transfer received")


def voucher_applied(session: Session, order: Order, amount: int) -> str:
    return post(session, order, "voucher", {"voucher_receivable": amount, "escrow": -amount},
                "Innovation voucher applied")


def captured(session: Session, order: Order, amount: int) -> str:
    return post(session, order, "capture", {"platform_cash": amount, "buyer_funds_held": -amount},
                "Card payment captured")


def released(session: Session, order: Order, amount: int) -> str:
    return post(session, order, "release", {"escrow": amount, "buyer_funds_held": -amount},
                "Card hold released to the buyer")


def _reduce_recognised(order: Order, current: dict[str, int], amount: int) -> dict[str, int]:
    """Lines that take ``amount`` back out of recognised revenue: the fee is recomputed on
    what is left, the provider bears the rest."""
    fee_now = -current["platform_fee_revenue"]
    base_now = fee_now - current["provider_payable"]
    if amount > base_now:
        raise LedgerError("cannot reverse more than was recognised")
    fee_after, _net = fee_split(base_now - amount, order.commission_bp)
    fee_back = fee_now - fee_after
    return {"platform_fee_revenue": fee_back, "provider_payable": amount - fee_back}


def _take_back(order: Order, current: dict[str, int], amount: int) -> dict[str, int]:
    """Debit lines for giving ``amount`` back: from escrow first (work not yet accepted),
    then out of recognised revenue."""
    from_escrow = min(amount, max(0, -current["escrow"]))
    lines = {"escrow": from_escrow}
    if amount > from_escrow:
        for account, value in _reduce_recognised(order, current, amount - from_escrow).items():
            lines[account] = lines.get(account, 0) + value
    return lines


def voucher_returned(session: Session, order: Order, amount: int) -> str:
    current = balances(session, order.id)
    if current["voucher_receivable"] < amount:
        raise LedgerError("cannot return more voucher value than was applied")
    lines = _take_back(order, current, amount)
    lines["voucher_receivable"] = lines.get("voucher_receivable", 0) - amount
    return post(session, order, "voucher_return", lines, "Voucher value given back")


def refunded(session: Session, order: Order, amount: int) -> str:
    """Money paid back to the buyer out of platform cash (card refund or bank transfer)."""
    current = balances(session, order.id)
    lines = _take_back(order, current, amount)
    lines["platform_cash"] = lines.get("platform_cash", 0) - amount
    return post(session, order, "refund", lines, "Refund to the buyer")


def recognise(session: Session, order: Order) -> str:
    """The buyer accepted the work (or staff ruled): what escrow holds is earned, split
    into the platform fee and the provider's payable."""
    base = -balances(session, order.id)["escrow"]
    if base < 0:
        raise LedgerError("escrow is overdrawn")
    fee, net = fee_split(base, order.commission_bp)
    return post(session, order, "recognise",
                {"escrow": base, "platform_fee_revenue": -fee, "provider_payable": -net},
                f"Earned: fee at {order.commission_bp / 100:.2f}%, rest payable to the institution")


def releasable(current: dict[str, int]) -> int:
    """What escrow holds in money the platform actually has (captured card, received
    transfer, voucher value): escrow's credit less what is still only a card hold."""
    return max(0, -current["escrow"] - max(0, current["buyer_funds_held"]))


def held_by_platform(current: dict[str, int]) -> int:
    """The order's money held by the platform in escrow ("托管中"), captured or received."""
    return releasable(current)


def milestone_release(session: Session, order: Order, amount: int, memo: str = "") -> tuple[str, int]:
    """Release up to ``amount`` of order value from escrow to the institution (a milestone
    approved), fee at the order's rate. Never more than ``releasable``: returns the posting
    id and what was released (0 and "" when escrow holds nothing in money)."""
    if amount < 0:
        raise LedgerError("a release is not negative")
    amount = min(amount, releasable(balances(session, order.id)))
    if amount <= 0:
        return "", 0
    fee, net = fee_split(amount, order.commission_bp)
    posting = post(session, order, "milestone_release",
                   {"escrow": amount, "platform_fee_revenue": -fee, "provider_payable": -net},
                   memo or "Milestone approved: its share released to the institution")
    return posting, amount


def clawback(session: Session, order: Order, amount: int) -> str:
    """Money already released to the institution refunded to the buyer (staff clawback):
    taken back out of the institution's payable and the platform fee (the fee on that part
    at the order's rate), deducted from the institution's next statement."""
    if amount <= 0:
        raise LedgerError("a clawback is positive")
    fee, net = fee_split(amount, order.commission_bp)
    return post(session, order, "clawback",
                {"provider_payable": net, "platform_fee_revenue": fee, "platform_cash": -amount},
                "Clawback: refunded from money released to the institution")


def released_total(session: Session, order_id: int) -> int:
    """Order value released from escrow by milestone approvals so far."""
    session.flush()
    return int(session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount), 0))
        .where(LedgerEntry.order_id == order_id, LedgerEntry.kind == "milestone_release",
               LedgerEntry.account == "escrow")) or 0)


def payout_amount(session: Session, order: Order, amount: int,
                  memo: str = "Paid out to the institution") -> str:
    """Pay ``amount`` of the order's payable (one statement line); a negative amount is a
    clawback taken back out of the institution's payout."""
    return post(session, order, "payout", {"provider_payable": amount, "platform_cash": -amount},
                memo)


def payout(session: Session, order: Order) -> str:
    amount = -balances(session, order.id)["provider_payable"]
    return post(session, order, "payout", {"provider_payable": amount, "platform_cash": -amount},
                "Paid out to the institution")


# --------------------------------------------------------------------------- views of money

def buyer_view(session: Session, order: Order) -> dict[str, int]:
    """What the buyer sees: price, voucher share, what they paid, what came back."""
    payments = [p for p in order.payments if p.method != "voucher"]
    return {
        "price": order.subtotal,
        "voucher": order.voucher_amount,
        "to_pay": order.amount_due,
        "held": sum(p.amount_authorised - p.amount_captured for p in payments
                    if p.status == "held"),
        "paid": sum(p.amount_captured for p in payments),
        "refunded": sum(p.amount_refunded for p in payments),
        "released": sum(p.amount_authorised for p in payments if p.status == "released"),
    }


def balances_of(rows: list[LedgerEntry]) -> dict[str, int]:
    """Balance per account from entries already read (the order page reads them once)."""
    found = {account: 0 for account in LEDGER_ACCOUNTS}
    for e in rows:
        found[e.account] += e.amount
    return found


def provider_view(session: Session, order: Order,
                  rows: list[LedgerEntry] | None = None) -> dict[str, int]:
    """What the institution sees: order value, commission and its net, expected or earned.
    ``rows``: the order's entries, if already read."""
    rows = entries(session, order.id) if rows is None else rows
    current = balances_of(rows)
    fee_posted = -current["platform_fee_revenue"]
    payable = -current["provider_payable"]
    paid_out = sum(-e.amount for e in rows
                   if e.kind == "payout" and e.account == "platform_cash")
    if fee_posted or payable or paid_out:
        fee, net, earned = fee_posted, payable + paid_out, True
    else:
        fee, net = fee_split(order.subtotal, order.commission_bp)
        earned = False
    return {"value": order.subtotal, "rate_bp": order.commission_bp, "fee": fee, "net": net,
            "payable": payable, "paid_out": paid_out, "earned": earned}


def money_panel(session: Session, order: Order, rows: list[LedgerEntry] | None = None) -> dict:
    """The order page's money panel (buyer, institution and staff): paid in, still on the
    card, held by the platform, released per milestone and at completion or ruling, refunded,
    platform fee, payable and paid out; with each figure's posting ids (staff link to the
    ledger entries). ``rows``: the order's entries, if already read."""
    rows = entries(session, order.id) if rows is None else rows
    current: dict[str, int] = {account: 0 for account in LEDGER_ACCOUNTS}
    paid_in = refunded = at_close = clawed_back = 0
    postings: dict[str, list[str]] = {"paid_in": [], "refunded": [], "at_close": [],
                                      "clawback": []}
    for e in rows:
        current[e.account] += e.amount
        if e.account == "escrow" and e.kind in ("held", "transfer", "voucher"):
            paid_in -= e.amount
            postings["paid_in"].append(e.posting)
        if ((e.kind == "release" and e.account == "buyer_funds_held")
                or (e.kind == "refund" and e.account == "platform_cash")
                or (e.kind == "voucher_return" and e.account == "voucher_receivable")):
            refunded -= e.amount
            postings["refunded"].append(e.posting)
        if e.kind == "recognise" and e.account == "escrow":
            at_close += e.amount
            postings["at_close"].append(e.posting)
        if e.kind == "clawback" and e.account == "platform_cash":
            clawed_back -= e.amount
            postings["clawback"].append(e.posting)
    amounts_by_posting = {e.posting: e.amount for e in rows
                          if e.kind == "milestone_release" and e.account == "escrow"}
    releases = [{"title": m.title, "position": m.position + 1, "amount": m.released_amount,
                 "posting": m.release_posting, "by": m.approved_by, "at": m.decided_at}
                for m in order.milestones if m.release_posting in amounts_by_posting]
    return {
        "paid_in": paid_in,
        "on_card": max(0, current["buyer_funds_held"]),
        "held": held_by_platform(current),
        "releases": releases,
        "released": sum(amounts_by_posting.values()),
        "at_close": at_close,
        "refunded": refunded,
        "clawed_back": clawed_back,
        "fee": -current["platform_fee_revenue"],
        "payable": -current["provider_payable"],
        "postings": {key: list(dict.fromkeys(value)) for key, value in postings.items()},
    }
