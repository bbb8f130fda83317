"""Paperwork of an order (issue 14): technology contracts signed online, and 发票 (VAT
invoices) requested by the buyer and recorded by the institution.

Rules live in orders/contracts.py and orders/invoices.py; the database backs the ones that
must hold even under two clicks at once: one live contract version per order, one signature
per side of a version, one invoice number per institution.
"""

from datetime import date, datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, deferred, mapped_column, relationship

from marketplace.database import Base, utcnow
from marketplace.models import Organisation, User
from orders.models import Order, SettlementStatement

# The five national technology-contract types (《民法典》第二十章 技术合同).
CONTRACT_TYPES = {
    "development": ("技术开发合同", "Technology development contract"),
    "transfer": ("技术转让合同", "Technology transfer contract"),
    "licence": ("技术许可合同", "Technology licence contract"),
    "consulting": ("技术咨询合同", "Technology consulting contract"),
    "service": ("技术服务合同", "Technology service contract"),
}
# Who owns the results of the work: a choice, never free text.
OWNERSHIP_CHOICES = {
    "buyer": ("成果归委托方（买方）所有", "Results owned by the buyer"),
    "institution_with_licence": ("成果归服务机构所有，委托方享有免费、非独占的实施许可",
                                 "Results owned by the institution; the buyer holds a free, "
                                 "non-exclusive licence"),
    "joint": ("成果由双方共有", "Results owned jointly by both parties"),
}
SIDES = ("buyer", "provider")
SIDE_LABELS = {"buyer": ("委托方（甲方）", "Client (Party A)"),
               "provider": ("受托方（乙方）", "Contractor (Party B)")}
CONTRACT_STATUSES = ("draft", "awaiting_signatures", "signed", "superseded")
INVOICE_KINDS = {
    "ordinary": ("增值税普通发票", "Ordinary VAT invoice"),
    "special": ("增值税专用发票", "Special VAT invoice"),
}
INVOICE_STATUSES = ("requested", "issued", "reversed")

# The same labels for the pages, in the viewer's language (the tables above keep the
# contract's own Chinese and English wording for the PDFs and the registration export).
CONTRACT_TYPE_NAMES = {
    "development": _l("Technology development contract"),
    "transfer": _l("Technology transfer contract"),
    "licence": _l("Technology licence contract"),
    "consulting": _l("Technology consulting contract"),
    "service": _l("Technology service contract"),
}
OWNERSHIP_NAMES = {
    "buyer": _l("Results owned by the buyer"),
    "institution_with_licence": _l("Results owned by the institution; the buyer holds a free, "
                                   "non-exclusive licence"),
    "joint": _l("Results owned jointly by both parties"),
}
INVOICE_KIND_NAMES = {"ordinary": _l("Ordinary VAT invoice"),
                      "special": _l("Special VAT invoice")}


def _in(column: str, values) -> str:
    return f"{column} in (" + ", ".join(f"'{value}'" for value in values) + ")"


class Contract(Base):
    """One version of the technology contract of an order. A change of terms after the
    first signature supersedes the version (kept, with its PDF and signatures) and creates
    the next one, which both sides sign again. ``pdf`` is the exact document signed (its
    SHA-256 in ``sha256``); ``signed_pdf`` adds the signature page once both have signed."""

    __tablename__ = "contract"
    __table_args__ = (
        UniqueConstraint("order_id", "version", name="uq_contract_order_version"),
        CheckConstraint(_in("status", CONTRACT_STATUSES), name="status"),
        CheckConstraint(_in("contract_type", CONTRACT_TYPES), name="contract_type"),
        CheckConstraint(_in("ownership", OWNERSHIP_CHOICES), name="ownership"),
        CheckConstraint("version >= 1", name="version_positive"),
        # One live version per order: two people editing at once cannot fork the contract.
        Index("uq_contract_live_per_order", "order_id", unique=True,
              sqlite_where=text("status <> 'superseded'"),
              postgresql_where=text("status <> 'superseded'")),
        Index("ix_contract_status_signed_at", "status", "signed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("purchase_order.id"), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(20), default="awaiting_signatures")
    contract_type: Mapped[str] = mapped_column(String(16))
    ownership: Mapped[str] = mapped_column(String(32))
    # Everything the document says, as it was when this version was made: parties, scope,
    # milestones, price... (orders.contracts.terms_for). The PDF is rendered from it.
    terms: Mapped[dict] = mapped_column(default=dict)
    pdf: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))
    sha256: Mapped[str | None] = mapped_column(String(64))
    signed_pdf: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))
    signed_sha256: Mapped[str | None] = mapped_column(String(64))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    signed_at: Mapped[datetime | None]  # when the second signature came in
    superseded_at: Mapped[datetime | None]
    last_nudged_at: Mapped[datetime | None]

    order: Mapped[Order] = relationship()
    created_by: Mapped[User | None] = relationship()
    signatures: Mapped[list["ContractSignature"]] = relationship(
        back_populates="contract", order_by="ContractSignature.id")

    @property
    def type_label(self) -> str:
        return str(CONTRACT_TYPE_NAMES[self.contract_type])  # viewer's language

    @property
    def ownership_label(self) -> str:
        return str(OWNERSHIP_NAMES[self.ownership])

    def signature_of(self, side: str) -> "ContractSignature | None":
        return next((s for s in self.signatures if s.side == side), None)


class ContractSignature(Base):
    """One side's signature of one contract version: who, for which organisation, when,
    from where, and the SHA-256 of the exact PDF they confirmed."""

    __tablename__ = "contract_signature"
    __table_args__ = (
        UniqueConstraint("contract_id", "side", name="uq_contract_signature_side"),
        CheckConstraint(_in("side", SIDES), name="side"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contract.id"), index=True)
    side: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    signer_name: Mapped[str] = mapped_column(String(100))  # as it was when signing
    organisation_name: Mapped[str] = mapped_column(String(200))
    credit_code: Mapped[str | None] = mapped_column(String(18))
    signed_at: Mapped[datetime] = mapped_column(default=utcnow)
    ip: Mapped[str] = mapped_column(String(45), default="")
    pdf_sha256: Mapped[str] = mapped_column(String(64))

    contract: Mapped[Contract] = relationship(back_populates="signatures")
    user: Mapped[User] = relationship()
    organisation: Mapped[Organisation] = relationship()


class InvoiceProfile(Base):
    """An enterprise's 开票信息: what goes on the 发票 it asks for."""

    __tablename__ = "invoice_profile"
    __table_args__ = (CheckConstraint(_in("kind", INVOICE_KINDS), name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))  # 发票抬头
    taxpayer_number: Mapped[str] = mapped_column(String(20))  # 纳税人识别号 = credit code
    address: Mapped[str] = mapped_column(String(200), default="")
    phone: Mapped[str] = mapped_column(String(40), default="")
    bank_name: Mapped[str] = mapped_column(String(100), default="")
    bank_account: Mapped[str] = mapped_column(String(40), default="")
    kind: Mapped[str] = mapped_column(String(16), default="ordinary")
    email: Mapped[str] = mapped_column(String(254), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    organisation: Mapped[Organisation] = relationship()

    @property
    def kind_label(self) -> str:
        return str(INVOICE_KIND_NAMES[self.kind])


class Invoice(Base):
    """A 发票 for an order: requested by the buyer (with a snapshot of its profile), issued
    by the institution (number, code, date, amount, tax rate, PDF/OFD file), and possibly
    red-letter reversed (红冲) after a refund. The invoice number is UNIQUE per institution."""

    __tablename__ = "invoice"
    __table_args__ = (
        CheckConstraint(_in("status", INVOICE_STATUSES), name="status"),
        CheckConstraint(_in("kind", INVOICE_KINDS), name="kind"),
        CheckConstraint("amount_requested > 0", name="amount_requested_positive"),
        CheckConstraint("amount IS NULL OR amount > 0", name="amount_positive"),
        CheckConstraint("tax_rate_bp IS NULL OR (tax_rate_bp >= 0 AND tax_rate_bp <= 10000)",
                        name="tax_rate_range"),
        CheckConstraint("status = 'requested' OR (number IS NOT NULL AND amount IS NOT NULL)",
                        name="issued_has_number"),
        UniqueConstraint("provider_org_id", "number", name="uq_invoice_provider_number"),
        Index("ix_invoice_status_requested_at", "status", "requested_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("purchase_order.id"), index=True)
    buyer_org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    provider_org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    profile_id: Mapped[int | None] = mapped_column(
        ForeignKey("invoice_profile.id", ondelete="SET NULL"))
    profile: Mapped[dict] = mapped_column(default=dict)  # the profile as it was requested
    kind: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    amount_requested: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="requested")
    note: Mapped[str] = mapped_column(Text, default="")
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Issued (开具) by the institution.
    number: Mapped[str | None] = mapped_column(String(20))  # 发票号码
    code: Mapped[str | None] = mapped_column(String(12))  # 发票代码 (none on 数电票)
    issued_on: Mapped[date | None] = mapped_column(Date)
    amount: Mapped[int | None] = mapped_column(BigInteger)  # 价税合计, minor units
    tax_rate_bp: Mapped[int | None] = mapped_column(Integer)  # 600 = 6%
    file_stored_name: Mapped[str | None] = mapped_column(String(80), unique=True)
    file_name: Mapped[str | None] = mapped_column(String(200))
    file_content_type: Mapped[str | None] = mapped_column(String(40))
    file_size: Mapped[int | None] = mapped_column(Integer)
    file_sha256: Mapped[str | None] = mapped_column(String(64))
    issued_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    issued_at: Mapped[datetime | None]
    # Red-letter reversal (红字发票) after a refund.
    reversed_at: Mapped[datetime | None]
    reversed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    reversal_number: Mapped[str | None] = mapped_column(String(20))
    reversal_reason: Mapped[str | None] = mapped_column(Text)
    last_nudged_at: Mapped[datetime | None]

    order: Mapped[Order] = relationship()
    buyer: Mapped[Organisation] = relationship(foreign_keys=[buyer_org_id])
    provider: Mapped[Organisation] = relationship(foreign_keys=[provider_org_id])

    @property
    def kind_label(self) -> str:
        return str(INVOICE_KIND_NAMES[self.kind])


class PlatformFeeInvoice(Base):
    """The platform's own 发票 to an institution for the fee of one settlement statement."""

    __tablename__ = "platform_fee_invoice"

    id: Mapped[int] = mapped_column(primary_key=True)
    statement_id: Mapped[int] = mapped_column(ForeignKey("settlement_statement.id"),
                                              unique=True)
    provider_org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    issued_on: Mapped[date] = mapped_column(Date)
    amount: Mapped[int] = mapped_column(BigInteger)
    tax_rate_bp: Mapped[int] = mapped_column(Integer, default=600)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    issued_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    statement: Mapped[SettlementStatement] = relationship()
    provider: Mapped[Organisation] = relationship()
