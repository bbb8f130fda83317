"""Institution onboarding: qualification documents and team invitations."""

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.database import Base, utcnow
from marketplace.models import Organisation

DOCUMENT_KINDS = {
    "business_licence": "Business licence · 营业执照",
    "financial_licence": "Financial licence · 金融许可证",
    "ip_agency_licence": "IP agency licence · 专利代理机构执业许可",
    "certification": "Certification / accreditation · 资质认证",
    "other": "Other supporting document · 其他",
}


class QualificationDocument(Base):
    __tablename__ = "qualification_document"
    __table_args__ = (
        CheckConstraint("content_type in ('application/pdf', 'image/png', 'image/jpeg')",
                        name="content_type"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    original_name: Mapped[str] = mapped_column(String(200))  # sanitised, for display only
    stored_name: Mapped[str] = mapped_column(String(80), unique=True)  # generated; never user input
    content_type: Mapped[str] = mapped_column(String(40))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)

    organisation: Mapped[Organisation] = relationship()


class Invitation(Base):
    """An invitation to join an institution's team, redeemed by link or by code."""

    __tablename__ = "invitation"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    # SHA-256 of the secret code; the code itself is only ever in the email/link.
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    accepted_at: Mapped[datetime | None]
    accepted_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    revoked_at: Mapped[datetime | None]

    organisation: Mapped[Organisation] = relationship()


class CredibilitySnapshot(Base):
    """A credibility score of an organisation as it was computed (providers/credibility.py):
    written at the first computation and whenever the score or level changes; the trend and
    the history chart are drawn from these rows."""

    __tablename__ = "credibility_snapshot"
    __table_args__ = (
        CheckConstraint("score >= 0 and score <= 100", name="score_range"),
        Index("ix_credibility_snapshot_org_time", "organisation_id", "computed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"))
    score: Mapped[int] = mapped_column(Integer)
    level: Mapped[str] = mapped_column(String(4))
    breakdown: Mapped[dict] = mapped_column(default=dict)  # the parts, as shown to people
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)

    organisation: Mapped[Organisation] = relationship()


class CredibilityDirty(Base):
    """An organisation whose credibility must be recomputed (providers/credibility/store.py):
    written in the transaction of the change that moved an input (an order transition), so
    the recompute runs after commit, off the user's request, and a crash loses no mark.
    ``marks`` counts the marks, so a drain deletes only a row nobody marked again meanwhile."""

    __tablename__ = "credibility_dirty"

    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"), primary_key=True)
    since: Mapped[datetime] = mapped_column(default=utcnow)  # the oldest unprocessed mark
    marks: Mapped[int] = mapped_column(Integer, default=1)
