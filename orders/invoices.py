"""发票 (VAT invoices) of orders (issue 14; DESIGN.md §4 "Contracts and 发票").

- An enterprise keeps invoice profiles (开票信息): title, taxpayer number (its unified social
  credit code), address and phone, bank and account, 普通发票 or 增值税专用发票, and the
  email that receives the 发票. A 专票 needs the full address, phone and bank lines.
- The buyer requests a 发票 for an order with a profile, for an amount up to what it has
  paid minus refunds, less what is already requested or issued (``invoiceable``).
- The institution records the issued 发票: number (unique per institution), code, date,
  amount, tax rate and the PDF or OFD file (checked like every upload: providers.uploads).
  After a refund it may mark an issued 发票 red-letter reversed (红冲).
- Reconciliation, per order: issued total ≤ paid − refunded (``check_reconciles``).
- Staff see requests not issued within INVOICE_OVERDUE_DAYS (default 7) and can nudge.

"Paid" is the money captured from the buyer (card captured or transfer received) plus the
innovation-voucher share applied; "refunded" is what came back of either. The voucher share
is invoiced to the enterprise too: voucher reimbursement asks for a 发票 of the full price.

Services flush; the view commits.
"""

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from marketplace import credit_code
from marketplace.database import utcnow
from marketplace.i18n import format_date
from marketplace.models import User
from marketplace.notifications import notify_organisation
from orders.models import Order, Payment, SettlementStatement, VoucherRedemption
from orders.money import format_amount
from orders.paperwork_models import (
    INVOICE_KIND_NAMES,
    INVOICE_KINDS,
    Invoice,
    InvoiceProfile,
    PlatformFeeInvoice,
)
from providers import uploads

DEFAULT_OVERDUE_DAYS = 7
MAX_FILE_BYTES = uploads.DEFAULT_MAX_DOCUMENT_BYTES
FILE_TYPES = (uploads.PDF, uploads.OFD)
# 发票号码: 8 digits (older paper/electronic 发票) or 20 digits (全电发票 / 数电票);
# 发票代码: 10 or 12 digits, absent on 数电票.
NUMBER = re.compile(r"^(\d{8}|\d{20})$")
CODE = re.compile(r"^(\d{10}|\d{12})$")
TAX_RATES_BP = (0, 100, 300, 600, 900, 1300)  # the VAT rates in force, in basis points


class InvoiceError(ValueError):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


def overdue_days() -> int:
    try:
        return int(current_app.config.get("INVOICE_OVERDUE_DAYS", DEFAULT_OVERDUE_DAYS))
    except RuntimeError:
        return DEFAULT_OVERDUE_DAYS


# --------------------------------------------------------------------------- profiles

@dataclass
class ProfileInput:
    title: str
    taxpayer_number: str
    address: str = ""
    phone: str = ""
    bank_name: str = ""
    bank_account: str = ""
    kind: str = "ordinary"
    email: str = ""


def _require_enterprise(user: User) -> None:
    if user.role != "enterprise" or user.organisation_id is None:
        raise InvoiceError(_("Only enterprise accounts keep invoice profiles."), status=403)


def profiles_of(session: Session, organisation_id: int) -> list[InvoiceProfile]:
    return list(session.scalars(select(InvoiceProfile)
                                .where(InvoiceProfile.organisation_id == organisation_id)
                                .order_by(InvoiceProfile.id)))


def _clean_profile(data: ProfileInput) -> dict:
    title = " ".join((data.title or "").split())
    if not title:
        raise InvoiceError(_("Give the invoice title: the enterprise's full legal name."))
    try:
        number = credit_code.validate(data.taxpayer_number)
    except credit_code.CreditCodeError as exc:
        raise InvoiceError(_("Taxpayer number: %(error)s", error=exc)) from None
    if data.kind not in INVOICE_KINDS:
        raise InvoiceError(_("Choose an ordinary or a special VAT invoice."))
    values = {"title": title[:200], "taxpayer_number": number,
              "address": (data.address or "").strip()[:200],
              "phone": (data.phone or "").strip()[:40],
              "bank_name": (data.bank_name or "").strip()[:100],
              "bank_account": re.sub(r"\s+", "", data.bank_account or "")[:40],
              "kind": data.kind, "email": (data.email or "").strip()[:254]}
    if data.kind == "special" and not all(values[k] for k in ("address", "phone", "bank_name",
                                                                "bank_account")):
        raise InvoiceError(_("A special VAT invoice needs the registered address, phone, bank "
                             "and account number."))
    if values["email"] and not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", values["email"]):
        raise InvoiceError(_("The email address to receive the VAT invoice does not look right."))
    return values


def save_profile(session: Session, user: User, data: ProfileInput,
                 profile: InvoiceProfile | None = None) -> InvoiceProfile:
    _require_enterprise(user)
    if profile is not None and profile.organisation_id != user.organisation_id:
        raise InvoiceError(_("Not found."), status=404)
    values = _clean_profile(data)
    if profile is None:
        profile = InvoiceProfile(organisation_id=user.organisation_id, **values)
        session.add(profile)
    else:
        for key, value in values.items():
            setattr(profile, key, value)
    session.flush()
    return profile


def delete_profile(session: Session, user: User, profile: InvoiceProfile) -> None:
    """Requests keep their own snapshot of the profile, so deleting one loses nothing."""
    _require_enterprise(user)
    if profile.organisation_id != user.organisation_id:
        raise InvoiceError(_("Not found."), status=404)
    session.delete(profile)
    session.flush()


def snapshot(profile: InvoiceProfile) -> dict:
    return {key: getattr(profile, key) for key in (
        "title", "taxpayer_number", "address", "phone", "bank_name", "bank_account", "kind",
        "email")}


# --------------------------------------------------------------------------- amounts

@dataclass
class Amounts:
    paid: int  # captured money plus the voucher share applied
    refunded: int
    requested: int  # open requests
    issued: int  # issued and not reversed

    @property
    def net_paid(self) -> int:
        return self.paid - self.refunded

    @property
    def requestable(self) -> int:
        return max(0, self.net_paid - self.requested - self.issued)


def amounts(session: Session, order: Order) -> Amounts:
    cash = session.execute(select(func.coalesce(func.sum(Payment.amount_captured), 0),
                                  func.coalesce(func.sum(Payment.amount_refunded), 0))
                           .where(Payment.order_id == order.id, Payment.method != "voucher")).one()
    voucher = session.execute(select(func.coalesce(func.sum(VoucherRedemption.amount), 0),
                                     func.coalesce(func.sum(VoucherRedemption.returned), 0))
                              .where(VoucherRedemption.order_id == order.id)).one()
    rows = session.execute(select(Invoice.status, func.sum(Invoice.amount_requested),
                                  func.sum(Invoice.amount))
                           .where(Invoice.order_id == order.id).group_by(Invoice.status)).all()
    by_status = {status: (requested or 0, issued or 0) for status, requested, issued in rows}
    return Amounts(paid=int(cash[0]) + int(voucher[0]), refunded=int(cash[1]) + int(voucher[1]),
                   requested=int(by_status.get("requested", (0, 0))[0]),
                   issued=int(by_status.get("issued", (0, 0))[1]))


def check_reconciles(session: Session, order: Order) -> None:
    """Issued total ≤ paid − refunded, or an InvoiceError saying by how much it is over."""
    figures = amounts(session, order)
    if figures.issued > figures.net_paid:
        raise InvoiceError(_(
            "The VAT invoices issued for this order would total %(issued)s, more than the "
            "%(paid)s paid after refunds.", issued=format_amount(figures.issued, order.currency),
            paid=format_amount(figures.net_paid, order.currency)))


# --------------------------------------------------------------------------- requests

def for_order(session: Session, order_id: int) -> list[Invoice]:
    return list(session.scalars(select(Invoice).where(Invoice.order_id == order_id)
                                .order_by(Invoice.id)))


def request_invoice(session: Session, user: User, order: Order, profile: InvoiceProfile,
                    amount: int, note: str = "", now: datetime | None = None) -> Invoice:
    if user.role != "enterprise" or user.organisation_id != order.buyer_org_id:
        raise InvoiceError(_("Only the buying enterprise can request a VAT invoice for this "
                             "order."),
                           status=403)
    if profile.organisation_id != order.buyer_org_id:
        raise InvoiceError(_("Choose one of your enterprise's invoice profiles."), status=404)
    if amount <= 0:
        raise InvoiceError(_("The amount must be more than zero."))
    figures = amounts(session, order)
    if amount > figures.requestable:
        raise InvoiceError(_(
            "A VAT invoice for this order can be at most %(most)s: what you paid (%(paid)s) "
            "minus refunds (%(refunded)s) and VAT invoices already requested or issued.",
            most=format_amount(figures.requestable, order.currency),
            paid=format_amount(figures.paid, order.currency),
            refunded=format_amount(figures.refunded, order.currency)))
    now = now or utcnow()
    invoice = Invoice(order_id=order.id, buyer_org_id=order.buyer_org_id,
                      provider_org_id=order.provider_org_id, profile_id=profile.id,
                      profile=snapshot(profile), kind=profile.kind, currency=order.currency,
                      amount_requested=amount, note=(note or "").strip()[:2000],
                      requested_by_id=user.id, requested_at=now)
    session.add(invoice)
    session.flush()
    notify_organisation(session, order.provider, "invoice_requested",
                        lambda: _("VAT invoice requested for order %(number)s",
                                  number=order.number),
                        lambda: _("%(buyer)s asks for a %(kind)s of %(amount)s, title "
                                  "“%(title)s”.", buyer=order.buyer.name,
                                  kind=str(INVOICE_KIND_NAMES[profile.kind]),
                                  amount=format_amount(amount, order.currency),
                                  title=profile.title),
                        invoice_link(invoice))
    return invoice


def invoice_link(invoice: Invoice) -> str:
    return f"/invoices/{invoice.id}"


def can_view(user, invoice: Invoice) -> bool:
    if not getattr(user, "is_authenticated", False) or not user.active:
        return False
    if user.role in ("staff", "admin"):
        return True
    if user.role == "enterprise":
        return user.organisation_id == invoice.buyer_org_id
    if user.role == "provider":
        return user.organisation_id == invoice.provider_org_id
    return False


# --------------------------------------------------------------------------- issuing

@dataclass
class IssueInput:
    number: str
    code: str
    issued_on: date
    amount: int
    tax_rate_bp: int


def check_file(data: bytes, filename: str | None) -> uploads.CheckedFile:
    """A PDF or OFD of at most MAX_FILE_BYTES, checked from its content."""
    return uploads.check(data, filename, allowed=FILE_TYPES, max_bytes=MAX_FILE_BYTES)


def _require_institution(user: User, invoice: Invoice) -> None:
    if user.role != "provider" or user.organisation_id != invoice.provider_org_id:
        raise InvoiceError(_("Only the institution of this order can record its VAT invoices."),
                           status=403)


def issue(session: Session, user: User, invoice: Invoice, data: IssueInput,
          checked: uploads.CheckedFile, stored_name: str,
          now: datetime | None = None) -> Invoice:
    """Record the issued 发票. The caller writes the file under ``stored_name`` after this
    succeeds (and removes it if the commit fails)."""
    _require_institution(user, invoice)
    if invoice.status != "requested":
        raise InvoiceError(_("This VAT invoice was already recorded."), status=409)
    number = (data.number or "").strip()
    code = (data.code or "").strip()
    if not NUMBER.match(number):
        raise InvoiceError(_("The invoice number has 8 digits (or 20 for a digital invoice)."))
    if code and not CODE.match(code):
        raise InvoiceError(_("The invoice code has 10 or 12 digits (leave it empty for a "
                             "digital invoice)."))
    now = now or utcnow()
    if data.issued_on > now.date():
        raise InvoiceError(_("The issue date is in the future."))
    if data.tax_rate_bp not in TAX_RATES_BP:
        raise InvoiceError(_("Choose a VAT rate in force: 0%%, 1%%, 3%%, 6%%, 9%% or 13%%."))
    if data.amount <= 0:
        raise InvoiceError(_("The amount must be more than zero."))
    order = invoice.order
    figures = amounts(session, order)
    if figures.issued + data.amount > figures.net_paid:
        raise InvoiceError(_(
            "Issued VAT invoices may total at most what the buyer paid minus refunds: "
            "%(amount)s more for this order.",
            amount=format_amount(max(0, figures.net_paid - figures.issued), order.currency)))
    duplicate = session.scalar(select(Invoice).where(Invoice.provider_org_id
                                                     == invoice.provider_org_id,
                                                     Invoice.number == number))
    if duplicate is not None:
        raise InvoiceError(_("Your institution already recorded invoice number %(number)s "
                             "(order %(order)s). Each VAT invoice has its own number.",
                             number=number, order=duplicate.order.number), status=409)
    invoice.number, invoice.code = number, code or None
    invoice.issued_on, invoice.amount, invoice.tax_rate_bp = (data.issued_on, data.amount,
                                                             data.tax_rate_bp)
    invoice.file_stored_name, invoice.file_name = stored_name, checked.original_name
    invoice.file_content_type, invoice.file_size = checked.content_type, checked.size
    invoice.file_sha256 = checked.sha256
    invoice.issued_by_id, invoice.issued_at, invoice.status = user.id, now, "issued"
    try:
        session.flush()
    except IntegrityError:
        raise InvoiceError(_("Your institution already recorded invoice number %(number)s.",
                             number=number), status=409) from None
    check_reconciles(session, order)
    notify_organisation(session, order.buyer, "invoice_issued",
                        lambda: _("VAT invoice issued for order %(number)s",
                                  number=order.number),
                        lambda: _("%(institution)s issued VAT invoice %(number)s for "
                                  "%(amount)s. Download it from the order's paperwork page.",
                                  institution=order.provider.name, number=number,
                                  amount=format_amount(data.amount, order.currency)),
                        invoice_link(invoice))
    return invoice


def reverse(session: Session, user: User, invoice: Invoice, reversal_number: str,
            reason: str, now: datetime | None = None) -> Invoice:
    """Red-letter reversal (红冲) of an issued 发票 after a refund."""
    _require_institution(user, invoice)
    if invoice.status != "issued":
        raise InvoiceError(_("Only an issued VAT invoice can be reversed."), status=409)
    figures = amounts(session, invoice.order)
    if figures.refunded <= 0:
        raise InvoiceError(_("A red-letter reversal follows a refund, and this order has "
                             "none."), status=409)
    reversal_number = (reversal_number or "").strip()
    if not NUMBER.match(reversal_number):
        raise InvoiceError(_("Give the number of the red-letter invoice (8 or 20 digits)."))
    if not (reason or "").strip():
        raise InvoiceError(_("Say why the VAT invoice is reversed."))
    invoice.status = "reversed"
    invoice.reversed_at = now or utcnow()
    invoice.reversed_by_id = user.id
    invoice.reversal_number = reversal_number
    invoice.reversal_reason = reason.strip()[:2000]
    session.flush()
    order = invoice.order
    notify_organisation(session, order.buyer, "invoice_reversed",
                        lambda: _("VAT invoice %(number)s reversed (red-letter invoice)",
                                  number=invoice.number),
                        lambda: _("%(institution)s reversed VAT invoice %(number)s after the "
                                  "refund on order %(order)s. You can request a new VAT "
                                  "invoice for what remains paid.",
                                  institution=order.provider.name, number=invoice.number,
                                  order=order.number),
                        invoice_link(invoice))
    return invoice


# --------------------------------------------------------------------------- staff

def overdue(session: Session, now: datetime | None = None,
            days: int | None = None) -> list[Invoice]:
    now = now or utcnow()
    limit = now - timedelta(days=overdue_days() if days is None else days)
    return list(session.scalars(
        select(Invoice).where(Invoice.status == "requested", Invoice.requested_at < limit)
        .options(selectinload(Invoice.order), selectinload(Invoice.provider),
                 selectinload(Invoice.buyer))
        .order_by(Invoice.requested_at, Invoice.id)))


def nudge(session: Session, invoice: Invoice, staff: User, now: datetime | None = None) -> int:
    if invoice.status != "requested":
        raise InvoiceError(_("This VAT invoice is not waiting to be issued."), status=409)
    now = now or utcnow()
    order = invoice.order
    count = notify_organisation(
        session, order.provider, "invoice_nudge",
        lambda: _("Reminder: a VAT invoice for order %(number)s is overdue",
                  number=order.number),
        lambda: _("%(buyer)s asked for a %(kind)s of %(amount)s on %(day)s. Please issue it "
                  "and record it on the platform.", buyer=order.buyer.name,
                  kind=invoice.kind_label,
                  amount=format_amount(invoice.amount_requested, invoice.currency),
                  day=format_date(invoice.requested_at)),
        invoice_link(invoice))
    invoice.last_nudged_at = now
    from marketplace import audit

    audit.record(session, staff, "invoice_nudge", invoice, order=order.number, notified=count)
    session.flush()
    return count


def platform_fee_invoice(session: Session, staff: User, statement: SettlementStatement,
                         now: datetime | None = None) -> PlatformFeeInvoice:
    """The platform's 发票 for its fee on one statement (one per statement)."""
    now = now or utcnow()
    existing = session.scalar(select(PlatformFeeInvoice)
                              .where(PlatformFeeInvoice.statement_id == statement.id))
    if existing is not None:
        return existing
    if statement.fee <= 0:
        raise InvoiceError(_("This statement has no platform fee to invoice."), status=409)
    row = PlatformFeeInvoice(statement_id=statement.id, provider_org_id=statement.provider_org_id,
                             number=f"{now:%Y%m%d}{statement.id:012d}", issued_on=now.date(),
                             amount=statement.fee, currency=statement.batch.currency,
                             issued_by_id=staff.id, created_at=now)
    session.add(row)
    session.flush()
    notify_organisation(session, statement.provider, "platform_invoice",
                        lambda: _("Platform VAT invoice %(number)s for the service fee",
                                  number=row.number),
                        lambda: _("The platform invoiced its fee of %(amount)s on your "
                                  "statement for %(month)s.",
                                  amount=format_amount(row.amount, row.currency),
                                  month=statement.batch.period_start.strftime("%Y-%m")),
                        "/provider/statements")
    return row


def statements_to_invoice(session: Session, limit: int = 100) -> list[SettlementStatement]:
    """Paid statements with a platform fee and no platform 发票 yet, oldest first."""
    return list(session.scalars(
        select(SettlementStatement)
        .outerjoin(PlatformFeeInvoice, PlatformFeeInvoice.statement_id == SettlementStatement.id)
        .where(SettlementStatement.fee > 0, SettlementStatement.paid_at.is_not(None),
               PlatformFeeInvoice.id.is_(None))
        .options(selectinload(SettlementStatement.provider),
                 selectinload(SettlementStatement.batch))
        .order_by(SettlementStatement.id).limit(limit)))
