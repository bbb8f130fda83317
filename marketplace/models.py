"""Accounts: organisations (enterprises and service institutions) and their users."""

from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.database import Base, utcnow

ORG_KINDS = ("enterprise", "provider")
ROLES = ("enterprise", "provider", "staff", "admin")
VERIFICATION_STATUSES = ("unverified", "pending", "more_info", "rejected", "verified")


class Organisation(Base):
    __tablename__ = "organisation"
    __table_args__ = (
        CheckConstraint("kind in ('enterprise', 'provider')", name="kind"),
        CheckConstraint(
            "verification_status in ('unverified', 'pending', 'more_info', 'rejected', 'verified')",
            name="verification_status",
        ),
        # Newest sign-ups on the staff dashboard (migration 0009, console figures).
        Index("ix_organisation_created_at", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # Unified social credit code (GB 32100-2015); institutions supply it when they apply.
    credit_code: Mapped[str | None] = mapped_column(String(18), unique=True)
    region: Mapped[str | None] = mapped_column(String(32))
    industry: Mapped[str | None] = mapped_column(String(32))
    size: Mapped[str | None] = mapped_column(String(16))
    institution_type: Mapped[str | None] = mapped_column(String(32), index=True)
    regions_served: Mapped[list] = mapped_column(default=list)
    description: Mapped[str] = mapped_column(Text, default="")
    website: Mapped[str | None] = mapped_column(String(300))
    logo_file: Mapped[str | None] = mapped_column(String(80))  # generated name in UPLOAD_DIR
    contact_name: Mapped[str | None] = mapped_column(String(100))
    contact_phone: Mapped[str | None] = mapped_column(String(40))
    contact_email: Mapped[str | None] = mapped_column(String(254))
    founded_year: Mapped[int | None] = mapped_column(Integer)
    verification_status: Mapped[str] = mapped_column(String(16), default="unverified")
    verified_at: Mapped[datetime | None]
    submitted_at: Mapped[datetime | None]  # last time the institution application was sent
    # Latest staff reason shown to the institution (rejection or documents requested).
    verification_note: Mapped[str | None] = mapped_column(Text)
    suspended: Mapped[bool] = mapped_column(Boolean, default=False)
    suspended_reason: Mapped[str | None] = mapped_column(Text)
    watch: Mapped[bool] = mapped_column(Boolean, default=False)  # staff watch list
    # Credibility (providers/credibility.py): current score 0-100 and level, None until the
    # first computation; history in credibility_snapshot.
    credibility_score: Mapped[int | None] = mapped_column(Integer, index=True)
    credibility_level: Mapped[str | None] = mapped_column(String(4))
    credibility_updated_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    members: Mapped[list["User"]] = relationship(back_populates="organisation")

    @property
    def is_provider(self) -> bool:
        return self.kind == "provider"

    @property
    def is_verified(self) -> bool:
        return self.verification_status == "verified"

    @property
    def is_listed(self) -> bool:
        """Whether the institution's published listings may be shown to the public."""
        return self.is_provider and self.is_verified and not self.suspended

    def __repr__(self) -> str:
        return f"<Organisation {self.id} {self.kind} {self.name!r}>"


class User(UserMixin, Base):
    __tablename__ = "user_account"
    __table_args__ = (
        CheckConstraint("role in ('enterprise', 'provider', 'staff', 'admin')", name="role"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    full_name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(40))
    role: Mapped[str] = mapped_column(String(16), index=True)
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"), index=True)
    is_org_owner: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Part of the login cookie: bumping it (password change) signs out every other session.
    session_version: Mapped[int] = mapped_column(Integer, default=1)
    # The language the member chose with the navbar switch (None: follow the browser).
    locale: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]

    organisation: Mapped[Organisation | None] = relationship(back_populates="members")

    def get_id(self) -> str:
        return f"{self.id}:{self.session_version}"

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_staff(self) -> bool:
        return self.role in ("staff", "admin")

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email} {self.role}>"


class AuditLog(Base):
    """Who did what to which object, when and why. Staff decisions always land here."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_target", "target_type", "target_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    actor: Mapped[User | None] = relationship()


class Notification(Base):
    """An in-app notice for one user (the notification centre; unread count in the navbar)."""

    __tablename__ = "notification"
    __table_args__ = (Index("ix_notification_user_unread", "user_id", "read_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(48))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    link: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None]


class EmailMessage(Base):
    """Outgoing email, queued with the decision that caused it and delivered by
    ``flask send-mail`` (marketplace/mail.py): ``sent_at`` once delivered, ``error`` the last
    failure. A failure of this message (not of the server) counts in ``attempts`` and puts
    the next try off to ``retry_after``; a permanent refusal, or too many failures, sets
    ``gave_up_at`` and it is never tried again. With MAIL_BACKEND=outbox it is only stored
    here."""

    __tablename__ = "email_message"
    __table_args__ = (
        # What send-mail reads every few seconds: the few rows still to be sent.
        Index("ix_email_message_pending", "created_at", "id",
              sqlite_where=text("sent_at IS NULL AND gave_up_at IS NULL"),
              postgresql_where=text("sent_at IS NULL AND gave_up_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    to_address: Mapped[str] = mapped_column(String(254), index=True)
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    retry_after: Mapped[datetime | None]
    gave_up_at: Mapped[datetime | None]


class LoginThrottle(Base):
    """Failed logins per email address, for the lockout with back-off
    (marketplace/accounts_service.py). Keyed by the address typed, not by account, so an
    unknown address is throttled exactly like a real one and the lockout never reveals
    whether an account exists. Cleared by a successful login or password reset, or by staff.
    """

    __tablename__ = "login_throttle"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)  # since the last lockout
    lockouts: Mapped[int] = mapped_column(Integer, default=0)  # in a row: drives the back-off
    locked_until: Mapped[datetime | None] = mapped_column(index=True)
    last_failure_at: Mapped[datetime | None]
