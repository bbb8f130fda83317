"""Needs (需求), invitations, proposals and their messages.

Money is in minor units (fen) with the need's currency. Status columns are guarded by CHECK
constraints; every status change goes through ``demand.services``.
"""

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from catalog.models import Category, Product
from marketplace.database import Base, utcnow
from marketplace.models import Organisation, User

NEED_STATUSES = ("draft", "submitted", "open", "awarded", "closed", "expired")
BUDGET_KINDS = ("fixed", "range", "open")
VISIBILITIES = ("public", "invited")
INVITATION_SOURCES = ("matched", "staff", "favourite")
INVITATION_STATUSES = ("invited", "declined", "proposed", "removed")
PROPOSAL_STATUSES = ("active", "withdrawn", "awarded", "not_selected")


def _in(column: str, values) -> str:
    return f"{column} in ({', '.join(repr(v) for v in values)})"


class Need(Base):
    """What an enterprise wants done. Edits after opening bump ``version`` and write a
    ``NeedVersion`` that invited institutions can read."""

    __tablename__ = "need"
    __table_args__ = (
        CheckConstraint(_in("status", NEED_STATUSES), name="status"),
        CheckConstraint(_in("budget_kind", BUDGET_KINDS), name="budget_kind"),
        CheckConstraint(_in("visibility", VISIBILITIES), name="visibility"),
        CheckConstraint("budget_min IS NULL OR budget_max IS NULL OR budget_min <= budget_max",
                        name="budget_order"),
        Index("ix_need_status_deadline", "status", "proposal_deadline"),
        Index("ix_need_buyer_status", "buyer_org_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    buyer_org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")  # Markdown, sanitised on render
    category_id: Mapped[int] = mapped_column(ForeignKey("category.id"), index=True)
    budget_kind: Mapped[str] = mapped_column(String(8), default="open")
    budget_min: Mapped[int | None] = mapped_column(BigInteger)
    budget_max: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    # Financial needs (S&T finance): the amount wanted, the term and what it is for.
    financial_amount: Mapped[int | None] = mapped_column(BigInteger)
    financial_term_months: Mapped[int | None] = mapped_column(Integer)
    financial_purpose: Mapped[str | None] = mapped_column(Text)
    proposal_deadline: Mapped[datetime]
    wanted_delivery: Mapped[date | None] = mapped_column(Date)
    region: Mapped[str | None] = mapped_column(String(32))
    visibility: Mapped[str] = mapped_column(String(8), default="public")
    show_company: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(12), default="draft", index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    rejection_reason: Mapped[str | None] = mapped_column(Text)  # staff, on a returned draft
    close_reason: Mapped[str | None] = mapped_column(Text)  # enterprise, when closing
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    submitted_at: Mapped[datetime | None]
    opened_at: Mapped[datetime | None] = mapped_column(index=True)
    awarded_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]  # awarded, closed or expired
    reminded_at: Mapped[datetime | None]  # deadline passed with proposals: buyer reminded
    awarded_proposal_id: Mapped[int | None] = mapped_column(Integer)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("purchase_order.id"))

    buyer: Mapped[Organisation] = relationship(foreign_keys=[buyer_org_id])
    author: Mapped[User | None] = relationship()
    category: Mapped[Category] = relationship()
    versions: Mapped[list["NeedVersion"]] = relationship(
        back_populates="need", order_by="NeedVersion.version", cascade="all, delete-orphan")
    files: Mapped[list["NeedFile"]] = relationship(
        primaryjoin="and_(NeedFile.need_id == Need.id, NeedFile.proposal_id.is_(None))",
        order_by="NeedFile.id", viewonly=True)
    invitations: Mapped[list["NeedInvitation"]] = relationship(
        back_populates="need", order_by="NeedInvitation.score.desc()")
    proposals: Mapped[list["Proposal"]] = relationship(
        back_populates="need", order_by="Proposal.id")

    @property
    def is_financial(self) -> bool:
        top = self.category.parent or self.category
        return top.slug == "finance"

    def __repr__(self) -> str:
        return f"<Need {self.id} {self.status} {self.title!r}>"


class NeedVersion(Base):
    """The need as it read at one version (written when it opens and at every later edit)."""

    __tablename__ = "need_version"
    __table_args__ = (UniqueConstraint("need_id", "version", name="uq_need_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    need_id: Mapped[int] = mapped_column(ForeignKey("need.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    snapshot: Mapped[dict] = mapped_column(default=dict)
    note: Mapped[str] = mapped_column(Text, default="")  # what changed, in the author's words
    author_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    need: Mapped[Need] = relationship(back_populates="versions")


class NeedFile(Base):
    """A file attached to a need (``proposal_id`` None) or to a proposal: the same checks
    as institution documents (providers.uploads)."""

    __tablename__ = "need_file"
    __table_args__ = (
        CheckConstraint("content_type in ('application/pdf', 'image/png', 'image/jpeg')",
                        name="content_type"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    need_id: Mapped[int] = mapped_column(ForeignKey("need.id", ondelete="CASCADE"), index=True)
    proposal_id: Mapped[int | None] = mapped_column(
        ForeignKey("proposal.id", ondelete="CASCADE"), index=True)
    original_name: Mapped[str] = mapped_column(String(200))
    stored_name: Mapped[str] = mapped_column(String(80), unique=True)
    content_type: Mapped[str] = mapped_column(String(40))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)


class NeedInvitation(Base):
    """An institution asked to answer a need: by matching (with its score and the parts of
    it), by staff, or from the enterprise's favourites."""

    __tablename__ = "need_invitation"
    __table_args__ = (
        UniqueConstraint("need_id", "provider_org_id", name="uq_need_invitation_provider"),
        CheckConstraint(_in("source", INVITATION_SOURCES), name="source"),
        CheckConstraint(_in("status", INVITATION_STATUSES), name="status"),
        Index("ix_need_invitation_provider_status", "provider_org_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    need_id: Mapped[int] = mapped_column(ForeignKey("need.id", ondelete="CASCADE"), index=True)
    provider_org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    product_id: Mapped[int | None] = mapped_column(ForeignKey("product.id", ondelete="SET NULL"))
    score: Mapped[int] = mapped_column(Integer, default=0)  # 0-100
    score_parts: Mapped[list] = mapped_column(default=list)  # [{key,label,points,max,detail}]
    source: Mapped[str] = mapped_column(String(10), default="matched")
    status: Mapped[str] = mapped_column(String(10), default="invited")
    decline_reason: Mapped[str | None] = mapped_column(String(24))
    decline_note: Mapped[str | None] = mapped_column(Text)
    invited_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    answered_at: Mapped[datetime | None]

    need: Mapped[Need] = relationship(back_populates="invitations")
    provider: Mapped[Organisation] = relationship()
    product: Mapped[Product | None] = relationship()


class Proposal(Base):
    """An institution's answer to a need; the current terms are on this row, every version
    (the first included) in ``ProposalVersion``."""

    __tablename__ = "proposal"
    __table_args__ = (
        UniqueConstraint("need_id", "provider_org_id", name="uq_proposal_provider"),
        CheckConstraint(_in("status", PROPOSAL_STATUSES), name="status"),
        # A financial proposal's price is its service fee, which may be zero (DESIGN.md §3).
        CheckConstraint("price >= 0", name="price_not_negative"),
        Index("ix_proposal_provider_status", "provider_org_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    need_id: Mapped[int] = mapped_column(ForeignKey("need.id", ondelete="CASCADE"), index=True)
    provider_org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    # The listing the order will be placed on when this proposal wins; none for a verified
    # institution without published listings (the order then stands on the need itself).
    product_id: Mapped[int | None] = mapped_column(ForeignKey("product.id"))
    status: Mapped[str] = mapped_column(String(14), default="active")
    version: Mapped[int] = mapped_column(Integer, default=1)
    shortlisted: Mapped[bool] = mapped_column(Boolean, default=False)
    price: Mapped[int] = mapped_column(BigInteger)  # service price (financial: the fee)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    delivery_date: Mapped[date] = mapped_column(Date)
    # [{"title", "share_bp", "due_date": "YYYY-MM-DD"}], shares summing to 10000.
    milestones: Mapped[list] = mapped_column(default=list)
    team: Mapped[str] = mapped_column(Text, default="")
    cover_note: Mapped[str] = mapped_column(Text, default="")
    # Financial needs: the offer itself.
    offered_amount: Mapped[int | None] = mapped_column(BigInteger)
    rate_bp: Mapped[int | None] = mapped_column(Integer)
    term_months: Mapped[int | None] = mapped_column(Integer)
    conditions: Mapped[str | None] = mapped_column(Text)
    feedback: Mapped[str | None] = mapped_column(Text)  # the enterprise's, when not selected
    quote_id: Mapped[int | None] = mapped_column(ForeignKey("quote.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]

    need: Mapped[Need] = relationship(back_populates="proposals")
    provider: Mapped[Organisation] = relationship()
    product: Mapped[Product | None] = relationship()
    versions: Mapped[list["ProposalVersion"]] = relationship(
        back_populates="proposal", order_by="ProposalVersion.version",
        cascade="all, delete-orphan")
    messages: Mapped[list["ProposalMessage"]] = relationship(
        back_populates="proposal", order_by="ProposalMessage.id", cascade="all, delete-orphan")
    files: Mapped[list[NeedFile]] = relationship(
        primaryjoin="NeedFile.proposal_id == Proposal.id", order_by="NeedFile.id",
        viewonly=True)


class ProposalVersion(Base):
    __tablename__ = "proposal_version"
    __table_args__ = (UniqueConstraint("proposal_id", "version", name="uq_proposal_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("proposal.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    snapshot: Mapped[dict] = mapped_column(default=dict)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    proposal: Mapped[Proposal] = relationship(back_populates="versions")


class ProposalMessage(Base):
    """The thread between the enterprise and one proposing institution (staff can read)."""

    __tablename__ = "proposal_message"
    __table_args__ = (CheckConstraint("side in ('buyer', 'provider', 'staff')", name="side"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("proposal.id", ondelete="CASCADE"),
                                             index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    side: Mapped[str] = mapped_column(String(8))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    proposal: Mapped[Proposal] = relationship(back_populates="messages")
    author: Mapped[User | None] = relationship()
