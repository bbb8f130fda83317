"""Technology contracts of orders (issue 14; DESIGN.md §4 "Contracts and 发票").

- An order created from an accepted quote (or an awarded proposal), or a package order at or
  above CONTRACT_THRESHOLD (default ¥50,000), gets a contract when it is created
  (``ensure_for_order``). The listing's category proposes the national contract type
  (``TYPE_BY_CATEGORY``); results ownership starts as "buyer".
- Its terms are a snapshot (``terms_for``): both parties with credit codes, scope,
  deliverables, milestones with amounts and dates, price and escrow payment terms. The PDF
  is rendered from the snapshot when first needed (orders.contract_pdf) and kept: the SHA-256
  of those exact bytes is what a signature confirms.
- The institution may change type and ownership until both have signed: each change makes
  a new version (the old one stays, superseded, with any signature it had), which both sign.
- A side signs by confirming its password; one signature per side per version.
- The order cannot start (or be delivered) until the live version is signed by both sides:
  ``start_blocked_reason``, asked by orders.workflow.check.

Services flush; the view or command commits.
"""

import hashlib
from datetime import date, datetime

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, object_session, selectinload

from marketplace.database import utcnow
from marketplace.i18n import format_datetime, local_day_bounds
from marketplace.models import User
from marketplace.notifications import notify, notify_organisation
from marketplace.passwords import verify_password
from marketplace.reference import REGION_LABELS, REGION_LABELS_ZH
from orders.models import Order, OrderEvent
from orders.money import format_amount
from orders.paperwork_models import (
    CONTRACT_TYPES,
    OWNERSHIP_CHOICES,
    Contract,
    ContractSignature,
)

DEFAULT_THRESHOLD = 5_000_000  # ¥50,000 in fen

# Which national contract type a category's work usually is. Sub-categories first, then
# their parent; anything else is a technology service (技术服务).
TYPE_BY_CATEGORY = {
    # intellectual property: searches and strategy are advice, filings and cases a service
    "patent-search": "consulting", "ip-strategy": "consulting",
    "patent-application": "service", "trademark-registration": "service",
    "ip-litigation": "service", "ip": "service",
    # evaluation and advisory: 技术咨询 (feasibility, evaluation, expert opinion)
    "evaluation": "consulting", "advisory": "consulting",
    # technology transfer: matching a result to a buyer transfers it; brokerage licenses it
    "achievement-matching": "transfer", "licensing-brokerage": "licence",
    "tech-manager": "service", "tech-transfer": "transfer",
    # R&D resources: pilot-scale work develops; instruments and labs are a service
    "pilot-facilities": "development", "rd-sharing": "service",
    "inspection": "service", "finance": "service",
}


class ContractError(ValueError):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


def _config(name: str, default):
    try:
        return current_app.config.get(name, default)
    except RuntimeError:
        return default


def threshold() -> int:
    return int(_config("CONTRACT_THRESHOLD", DEFAULT_THRESHOLD))


# --------------------------------------------------------------------------- which orders

def needs_contract(order: Order) -> bool:
    """Quote orders (and awarded proposals, which become quote orders) always; packages at
    or above the threshold; financial applications never (the bank's own loan contract)."""
    if order.kind == "quote" or order.quote_id is not None:
        return True
    return order.kind == "package" and order.subtotal >= threshold()


def proposed_type(order: Order) -> str:
    category = order.category
    while category is not None:
        if category.slug in TYPE_BY_CATEGORY:
            return TYPE_BY_CATEGORY[category.slug]
        category = category.parent
    return "service"


def live(session: Session, order_id: int) -> Contract | None:
    """The version in force (not superseded) of an order's contract, if it has one."""
    return session.scalar(select(Contract).where(Contract.order_id == order_id,
                                                 Contract.status != "superseded")
                          .options(selectinload(Contract.signatures)))


def versions(session: Session, order_id: int) -> list[Contract]:
    return list(session.scalars(select(Contract).where(Contract.order_id == order_id)
                                .options(selectinload(Contract.signatures))
                                .order_by(Contract.version.desc())))


def ensure_for_order(session: Session, order: Order, actor: User | None = None,
                     now: datetime | None = None) -> Contract | None:
    """Create version 1 of the order's contract if the order needs one (idempotent)."""
    if not needs_contract(order):
        return None
    existing = live(session, order.id)
    if existing is not None:
        return existing
    now = now or utcnow()
    contract = Contract(order_id=order.id, version=1, status="awaiting_signatures",
                        contract_type=proposed_type(order), ownership="buyer",
                        created_by_id=getattr(actor, "id", None), created_at=now)
    contract.terms = terms_for(order, contract.contract_type, contract.ownership, now)
    session.add(contract)
    session.flush()
    return contract


# --------------------------------------------------------------------------- terms

def _party(organisation, user: User | None) -> dict:
    region = organisation.region or ""
    return {"name": organisation.name, "credit_code": organisation.credit_code or "",
            "region": region, "region_zh": REGION_LABELS_ZH.get(region, region),
            "region_en": REGION_LABELS.get(region, region),
            "contact": organisation.contact_name
            or (user.full_name if user else ""), "phone": organisation.contact_phone or "",
            "email": organisation.contact_email or ""}


def _yuan(amount: int, currency: str) -> str:
    return format_amount(amount, currency)


def terms_for(order: Order, contract_type: str, ownership: str, now: datetime) -> dict:
    """Everything the contract says, frozen: later edits of the order or the organisations
    do not change a version that someone may already have signed."""
    session = object_session(order)
    if session is not None:
        session.refresh(order, ["lines", "milestones"])
    lines = [{"title": line.product_title, "package": line.package_name,
              "quantity": line.quantity, "amount": _yuan(line.line_total, order.currency),
              "deliverables": line.deliverables or "",
              "delivery_days": line.delivery_days} for line in order.lines]
    milestones = []
    for milestone in order.milestones:
        amount = order.subtotal * milestone.share_bp // 10_000
        milestones.append({"title": milestone.title, "share": f"{milestone.share_bp / 100:g}%",
                           "amount": _yuan(amount, order.currency),
                           "due_date": milestone.due_date.isoformat()
                           if milestone.due_date else ""})
    category = order.category
    field = field_en = ""
    if category is not None:
        field = (category.parent.name_zh + " / " if category.parent else "") + category.name_zh
        field_en = category.path
    return {
        "order_number": order.number, "order_title": order.title,
        "contract_type": contract_type, "ownership": ownership,
        "buyer": _party(order.buyer, order.buyer_user),
        "provider": _party(order.provider, None),
        "scope": order.requirements or order.title, "lines": lines, "milestones": milestones,
        "price": _yuan(order.subtotal, order.currency), "price_minor": order.subtotal,
        "currency": order.currency,
        "voucher": _yuan(order.voucher_amount, order.currency) if order.voucher_amount else "",
        "due_date": order.due_at.date().isoformat() if order.due_at else "",
        "field": field, "field_en": field_en, "region": order.buyer.region or "",
        "platform": {"name": _config("BANK_ACCOUNT_NAME", "Innovation Service Supermarket"),
                     "bank": _config("BANK_NAME", ""),
                     "account": _config("BANK_ACCOUNT_NUMBER", "")},
        "drafted_on": now.date().isoformat(),
    }


# --------------------------------------------------------------------------- PDF

def ensure_pdf(session: Session, contract: Contract) -> bytes:
    """The contract's PDF, rendered once and kept: its SHA-256 never changes after that."""
    if contract.pdf is None:
        from orders.contract_pdf import render_contract

        data = render_contract(contract, language="zh")
        contract.pdf = data
        contract.sha256 = hashlib.sha256(data).hexdigest()
        session.flush()
    return contract.pdf


def current_pdf(session: Session, contract: Contract) -> bytes:
    """The copy to download: with the signature page once both have signed (rendered the
    first time it is asked for, then kept)."""
    if contract.status != "signed":
        return ensure_pdf(session, contract)
    if contract.signed_pdf is None:
        from orders.contract_pdf import render_contract

        data = render_contract(contract, language="zh", signed=True)
        contract.signed_pdf = data
        contract.signed_sha256 = hashlib.sha256(data).hexdigest()
        session.flush()
    return contract.signed_pdf


# --------------------------------------------------------------------------- changing terms

def side_of(user: User | None, order: Order) -> str | None:
    """"buyer" or "provider" for a member of that organisation with the matching role: the
    people who may sign for it. Staff and everyone else: None."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.active:
        return None
    if user.role == "enterprise" and user.organisation_id == order.buyer_org_id:
        return "buyer"
    if user.role == "provider" and user.organisation_id == order.provider_org_id:
        return "provider"
    return None


def change_terms(session: Session, contract: Contract, actor: User, *, contract_type: str,
                 ownership: str, now: datetime | None = None) -> Contract:
    """The institution changes the type or the results ownership: a new version."""
    order = contract.order
    if side_of(actor, order) != "provider":
        raise ContractError(_("Only the institution's members can change the contract "
                              "terms."), status=403)
    if contract_type not in CONTRACT_TYPES:
        raise ContractError(_("Choose one of the five technology-contract types."))
    if ownership not in OWNERSHIP_CHOICES:
        raise ContractError(_("Choose who owns the results."))
    if contract.status != "awaiting_signatures":
        raise ContractError(_not_signable(session, contract), status=409)
    if (contract_type == contract.contract_type and ownership == contract.ownership
            and not terms_outdated(contract, now or utcnow())):
        raise ContractError(_("Nothing changed: the contract already says this."))
    return new_version(session, contract, actor, contract_type=contract_type,
                       ownership=ownership, now=now)


def terms_outdated(contract: Contract, now: datetime) -> bool:
    """Whether the order changed since the version was drafted (milestones added, due date
    moved...): saving then makes a version with the order's current terms."""
    fresh = terms_for(contract.order, contract.contract_type, contract.ownership, now)
    return {**fresh, "drafted_on": None} != {**contract.terms, "drafted_on": None}


def new_version(session: Session, contract: Contract, actor: User | None, *,
                contract_type: str | None = None, ownership: str | None = None,
                now: datetime | None = None) -> Contract:
    """Supersede ``contract`` (kept with its signatures) by the next version, with fresh
    terms from the order; both sides sign it again."""
    now = now or utcnow()
    order = contract.order
    contract.status = "superseded"
    contract.superseded_at = now
    session.flush()  # free the one-live-version index before the next version goes in
    successor = Contract(order_id=order.id, version=contract.version + 1,
                         status="awaiting_signatures",
                         contract_type=contract_type or contract.contract_type,
                         ownership=ownership or contract.ownership,
                         created_by_id=getattr(actor, "id", None), created_at=now)
    successor.terms = terms_for(order, successor.contract_type, successor.ownership, now)
    session.add(successor)
    try:
        session.flush()
    except IntegrityError:
        raise ContractError(_("The contract was changed by someone else a moment ago. "
                              "Reload the page."), status=409) from None
    _timeline(session, order, "contract_version", actor,
              f"Contract version {successor.version}: {successor.type_label}, "
              f"{successor.ownership_label}. Both sides sign again.")
    signed_before = [s for s in contract.signatures]
    for signature in signed_before:
        notify(session, signature.user, "contract_changed",
               lambda: _("Contract of order %(number)s changed: please sign version "
                         "%(version)s", number=order.number, version=successor.version),
               lambda: _("The terms changed after you signed; the earlier version is kept "
                         "but no longer in force."), contract_link(order, signature.side))
    return successor


def _timeline(session: Session, order: Order, name: str, actor: User | None, note: str) -> None:
    """An entry on the order's timeline (as orders.workflow.record_event writes them; that
    module asks this one whether work may start, so this one does not import it)."""
    role = side_of(actor, order) or ("staff" if getattr(actor, "is_staff", False)
                                     else "system")
    session.add(OrderEvent(order_id=order.id, name=name, actor_id=getattr(actor, "id", None),
                           actor_role=role, note=note))


def contract_link(order: Order, side: str) -> str:
    return f"/orders/{order.id}/contract"


# --------------------------------------------------------------------------- signing

def _not_signable(session: Session, contract: Contract) -> str:
    if contract.status == "superseded":
        current = live(session, contract.order_id)
        if current:
            return _("Version %(version)s of this contract is outdated: it was replaced by "
                     "version %(newer)s. Read and sign that one.",
                     version=contract.version, newer=current.version)
        return _("Version %(version)s of this contract is outdated: it was replaced by a "
                 "newer version. Read and sign that one.", version=contract.version)
    if contract.status == "signed":
        return _("This contract is already signed by both sides; it can no longer change.")
    return _("This contract cannot be signed now.")


def sign(session: Session, contract: Contract, user: User, password: str, *, ip: str = "",
         now: datetime | None = None) -> ContractSignature:
    """``user`` signs ``contract`` for their side, confirming with their password."""
    side = _signing_side(session, contract, user)
    if not password or not verify_password(user.password_hash, password):
        raise ContractError(_("That password is not right. Signing needs your account "
                              "password."))
    return _record(session, contract, user, side, ip, now or utcnow())


def record_signature(session: Session, contract: Contract, user: User, *, ip: str = "",
                     now: datetime | None = None) -> ContractSignature:
    """Record a signature whose signer is confirmed otherwise: the demo activity plays its
    users. Every rule of ``sign`` but the password holds."""
    side = _signing_side(session, contract, user)
    return _record(session, contract, user, side, ip, now or utcnow())


def _signing_side(session: Session, contract: Contract, user: User) -> str:
    side = side_of(user, contract.order)
    if side is None:
        raise ContractError(_("Only a member of the buying enterprise or of the institution "
                              "can sign this contract, each for their own organisation."),
                            status=403)
    if contract.status != "awaiting_signatures":
        raise ContractError(_not_signable(session, contract), status=409)
    existing = contract.signature_of(side)
    if existing is not None:
        raise ContractError(_("Your side signed version %(version)s already (%(name)s, "
                              "%(when)s).", version=contract.version,
                              name=existing.signer_name,
                              when=format_datetime(existing.signed_at)), status=409)
    return side


def _record(session: Session, contract: Contract, user: User, side: str, ip: str,
            now: datetime) -> ContractSignature:
    order = contract.order
    ensure_pdf(session, contract)
    organisation = order.buyer if side == "buyer" else order.provider
    signature = ContractSignature(contract_id=contract.id, side=side, user_id=user.id,
                                  organisation_id=organisation.id,
                                  signer_name=user.full_name[:100],
                                  organisation_name=organisation.name[:200],
                                  credit_code=organisation.credit_code, signed_at=now,
                                  ip=(ip or "")[:45], pdf_sha256=contract.sha256)
    session.add(signature)
    try:
        session.flush()
    except IntegrityError:
        raise ContractError(_("Your side signed this version a moment ago."),
                            status=409) from None
    session.refresh(contract, ["signatures"])
    _timeline(session, order, "contract_signed", user,
              f"{organisation.name} signed contract version {contract.version} "
              f"(SHA-256 {contract.sha256[:16]}…).")
    other = "provider" if side == "buyer" else "buyer"
    if contract.signature_of(other) is None:
        notify_organisation(session, order.provider if other == "provider" else order.buyer,
                            "contract_to_sign",
                            lambda: _("Please sign the contract of order %(number)s",
                                      number=order.number),
                            lambda: _("%(organisation)s signed the %(type)s. The work starts "
                                      "once you sign too.", organisation=organisation.name,
                                      type=contract.type_label),
                            contract_link(order, other))
        return signature
    _complete(session, contract, now)
    return signature


def _complete(session: Session, contract: Contract, now: datetime) -> None:
    # The signed copy (with the signature page) is rendered when first downloaded
    # (``current_pdf``): its content is fixed by now, and signing stays quick.
    contract.status = "signed"
    contract.signed_at = now
    session.flush()
    order = contract.order
    for organisation, side in ((order.buyer, "buyer"), (order.provider, "provider")):
        notify_organisation(session, organisation, "contract_signed",
                            lambda: _("Contract of order %(number)s signed by both sides",
                                      number=order.number),
                            lambda: _("The signed copy, with the signature page, is ready to "
                                      "download."),
                            contract_link(order, side))


def start_blocked_reason(order: Order) -> str | None:
    """Why the order may not start yet, or None. Orders without a contract are not held."""
    session = object_session(order)
    if session is None:
        return None
    contract = live(session, order.id)
    if contract is None:
        return None
    return _blocked_message(contract.status, contract.version,
                            {s.side for s in contract.signatures})


def _blocked_message(status: str, version: int, signed_sides: set[str]) -> str | None:
    if status == "signed":
        return None
    missing = [side for side in ("buyer", "provider") if side not in signed_sides]
    if missing == ["buyer"]:
        return _("The contract must be signed by both sides before work starts: waiting for "
                 "the buyer to sign version %(version)s.", version=version)
    if missing == ["provider"]:
        return _("The contract must be signed by both sides before work starts: waiting for "
                 "the institution to sign version %(version)s.", version=version)
    return _("The contract must be signed by both sides before work starts: waiting for the "
             "buyer and the institution to sign version %(version)s.", version=version)


def order_summary(session: Session, order_id: int) -> dict:
    """The order page's paperwork box in one statement: the live contract's version and
    status, whether it holds the work up, and how many 发票 the order has."""
    from orders.paperwork_models import Invoice

    live_contract = (select(Contract.id).where(Contract.order_id == order_id,
                                               Contract.status != "superseded")
                     .scalar_subquery())

    def signed(side: str):
        return (select(func.count(ContractSignature.id))
                .where(ContractSignature.contract_id == live_contract,
                       ContractSignature.side == side).scalar_subquery())

    row = session.execute(select(
        select(Contract.version).where(Contract.id == live_contract).scalar_subquery(),
        select(Contract.status).where(Contract.id == live_contract).scalar_subquery(),
        signed("buyer"), signed("provider"),
        select(func.count(Invoice.id)).where(Invoice.order_id == order_id).scalar_subquery(),
    )).one()
    version, status, buyer_signed, provider_signed, invoice_count = row
    sides = {side for side, done in (("buyer", buyer_signed), ("provider", provider_signed))
             if done}
    return {"version": version, "status": status, "invoice_count": invoice_count or 0,
            "blocked": _blocked_message(status, version, sides) if status else None}


# --------------------------------------------------------------------------- staff

def unsigned(session: Session, *, limit: int = 200) -> list[Contract]:
    """Contracts still waiting for a signature, oldest first (the staff nudge list)."""
    return list(session.scalars(
        select(Contract).where(Contract.status == "awaiting_signatures")
        .options(selectinload(Contract.signatures), selectinload(Contract.order))
        .order_by(Contract.created_at, Contract.id).limit(limit)))


def nudge(session: Session, contract: Contract, staff: User,
          now: datetime | None = None) -> int:
    """Remind the sides that have not signed; returns how many people were notified."""
    if contract.status != "awaiting_signatures":
        raise ContractError(_("This contract is not waiting for signatures."), status=409)
    now = now or utcnow()
    order = contract.order
    count = 0
    for side, organisation in (("buyer", order.buyer), ("provider", order.provider)):
        if contract.signature_of(side) is None:
            count += notify_organisation(
                session, organisation, "contract_nudge",
                lambda: _("Reminder: the contract of order %(number)s waits for your "
                          "signature", number=order.number),
                lambda: _("Platform staff remind you to read and sign version %(version)s "
                          "of the %(type)s. Work on the order starts once both sides have "
                          "signed.", version=contract.version, type=contract.type_label),
                contract_link(order, side))
    contract.last_nudged_at = now
    from marketplace import audit

    audit.record(session, staff, "contract_nudge", contract, order=order.number,
                 notified=count)
    session.flush()
    return count


def signed_in_period(session: Session, start: date, end: date) -> list[Contract]:
    """Contracts signed by both sides between ``start`` and ``end`` (inclusive days of the
    platform's calendar: a contract signed at 07:00 Beijing time on the 1st is in that month)."""
    low, high = local_day_bounds(start)[0], local_day_bounds(end)[1]
    return list(session.scalars(
        select(Contract).where(Contract.status == "signed", Contract.signed_at >= low,
                               Contract.signed_at < high)
        .options(selectinload(Contract.signatures), selectinload(Contract.order))
        .order_by(Contract.signed_at, Contract.id)))


def count_unsigned(session: Session) -> int:
    return session.scalar(select(func.count(Contract.id))
                          .where(Contract.status == "awaiting_signatures")) or 0
