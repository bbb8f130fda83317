"""Buying: carts, checkouts, orders and their workflow records, payments, vouchers, quotes,
commission rates and the double-entry ledger.

Money is always an integer amount in minor units next to a currency code (orders.money).
Constraints the business depends on are enforced by the database, not only by code: one
checkout per token, one live payment per order, one PaymentIntent per payment row, one
processed webhook per event id, budgets and balances that cannot go negative, refunds that
cannot exceed what was captured.
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
    false,
    text,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from catalog.models import Category, Package, Product
from marketplace.database import Base, utcnow
from marketplace.models import Organisation, User
from orders import states

ORDER_STATUSES = states.VALUES  # the one table of statuses: orders/states.py
ORDER_KINDS = ("package", "quote", "application")
# The payment methods the database accepts (CHECK constraints; a new one needs a migration).
# Each is a module of orders/payments/ registered under this name; orders.payments checks
# at import that every registered method is listed here.
PAYMENT_METHODS = ("card", "bank_transfer", "voucher")
# A checkout is paid with a method the buyer chooses; the voucher only ever pays a share.
CHECKOUT_PAYMENT_METHODS = tuple(m for m in PAYMENT_METHODS if m != "voucher")
# pending: created, waiting for the card confirmation or the bank transfer;
# requires_action: 3-D Secure authentication outstanding; held: funds authorised (card);
# captured: money with the platform (card captured or transfer received); failed: the
# attempt was declined; released: the hold was cancelled; canceled: attempt abandoned.
PAYMENT_STATUSES = ("pending", "requires_action", "held", "captured", "failed", "released",
                    "canceled")
LIVE_PAYMENT_STATUSES = ("pending", "requires_action", "held", "captured")
LEDGER_ACCOUNTS = (
    "buyer_funds_held", "escrow", "platform_cash", "voucher_receivable",
    "platform_fee_revenue", "provider_payable",
)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} in (" + ", ".join(f"'{value}'" for value in values) + ")"


# --------------------------------------------------------------------------- cart

class Cart(Base):
    """One cart per enterprise user, kept in the database so it survives logging out."""

    __tablename__ = "cart"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    lines: Mapped[list["CartLine"]] = relationship(
        back_populates="cart", order_by="CartLine.id", cascade="all, delete-orphan")


class CartLine(Base):
    __tablename__ = "cart_line"
    __table_args__ = (
        UniqueConstraint("cart_id", "package_id", name="uq_cart_line_cart_package"),
        CheckConstraint("quantity >= 1 and quantity <= 99", name="quantity_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cart_id: Mapped[int] = mapped_column(ForeignKey("cart.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id", ondelete="CASCADE"))
    package_id: Mapped[int] = mapped_column(ForeignKey("package.id", ondelete="CASCADE"))
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    added_at: Mapped[datetime] = mapped_column(default=utcnow)

    cart: Mapped[Cart] = relationship(back_populates="lines")
    product: Mapped[Product] = relationship()
    package: Mapped[Package] = relationship()


class Checkout(Base):
    """One submitted checkout. The token comes from a hidden field of the checkout page and
    is UNIQUE, so a double click or a re-posted form can only ever create one of these."""

    __tablename__ = "checkout"
    __table_args__ = (CheckConstraint(_in("payment_method", CHECKOUT_PAYMENT_METHODS),
                                      name="payment_method"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    buyer_org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    payment_method: Mapped[str] = mapped_column(String(16))
    voucher_id: Mapped[int | None] = mapped_column(ForeignKey("voucher.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    orders: Mapped[list["Order"]] = relationship(back_populates="checkout", order_by="Order.id")


# --------------------------------------------------------------------------- orders

class Order(Base):
    """What one buyer bought from one provider. Its status only changes through
    orders.workflow.transition()."""

    __tablename__ = "purchase_order"
    __table_args__ = (
        CheckConstraint(_in("status", ORDER_STATUSES), name="status"),
        CheckConstraint(_in("kind", ORDER_KINDS), name="kind"),
        CheckConstraint("subtotal >= 0 and voucher_amount >= 0 and voucher_amount <= subtotal",
                        name="amounts"),
        Index("ix_purchase_order_buyer_status", "buyer_org_id", "status"),
        Index("ix_purchase_order_provider_status", "provider_org_id", "status"),
        # Scale indexes (migration 0009; bench/scale.py): SLA deadlines per state (console
        # progress list and dashboard), settlement candidates per period, GMV by paid day.
        Index("ix_purchase_order_status_due_at", "status", "due_at"),
        Index("ix_purchase_order_status_accept_by", "status", "accept_by"),
        Index("ix_purchase_order_status_completed_at", "status", "completed_at"),
        Index("ix_purchase_order_status_closed_at", "status", "closed_at"),
        Index("ix_purchase_order_paid_at", "paid_at", "currency", "subtotal"),
        # Console progress list (migration 0009): per-state ordered reads for the amount and
        # placed sorts, index-only open-order counts per category.
        Index("ix_purchase_order_status_subtotal", "status", "subtotal"),
        Index("ix_purchase_order_status_created_at", "status", "created_at"),
        Index("ix_purchase_order_category_status", "category_id", "status"),
        Index("ix_purchase_order_status_updated_at", "status", "updated_at"),
        # The settlement backlog (migration 0012): orders completed or ruled on and in no
        # batch yet. Only those rows are indexed, so the staff batch list reads the backlog
        # and not every order a batch already holds.
        Index("ix_purchase_order_unbatched_completed", "completed_at",
              sqlite_where=text("status = 'completed' AND batched_at IS NULL"),
              postgresql_where=text("status = 'completed' AND batched_at IS NULL")),
        Index("ix_purchase_order_unbatched_resolved", "closed_at",
              sqlite_where=text("status = 'resolved' AND batched_at IS NULL"),
              postgresql_where=text("status = 'resolved' AND batched_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[str] = mapped_column(String(16), default="package")
    status: Mapped[str] = mapped_column(String(20), default=states.INITIAL, index=True)
    # Bumped by every transition; transitions are conditional on it (no lost updates).
    version: Mapped[int] = mapped_column(Integer, default=1)
    checkout_id: Mapped[int | None] = mapped_column(ForeignKey("checkout.id"), index=True)
    buyer_org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    buyer_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    provider_org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    # The main listing (first line) and its category decide the commission rate.
    product_id: Mapped[int | None] = mapped_column(ForeignKey("product.id", ondelete="SET NULL"))
    category_id: Mapped[int | None] = mapped_column(ForeignKey("category.id"))
    title: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    subtotal: Mapped[int] = mapped_column(BigInteger)  # what the service costs, minor units
    voucher_amount: Mapped[int] = mapped_column(BigInteger, default=0)  # covered by a voucher
    commission_bp: Mapped[int] = mapped_column(Integer, default=0)  # snapshot at checkout
    requirements: Mapped[str] = mapped_column(Text, default="")
    payment_method: Mapped[str] = mapped_column(String(16), default="card")
    bank_reference: Mapped[str | None] = mapped_column(String(32), unique=True)
    due_at: Mapped[datetime | None]
    payment_due_at: Mapped[datetime | None]
    paid_at: Mapped[datetime | None]
    accept_by: Mapped[datetime | None]  # a paid order not accepted by then declines itself
    accepted_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]  # declined, cancelled, resolved or settled
    # When a settlement batch took the order: set in the same transaction as its
    # settlement_item row (orders.settlement.run_period), never cleared.
    batched_at: Mapped[datetime | None]
    decline_reason: Mapped[str | None] = mapped_column(Text)
    # Staff dispute ruling: how much of the order value goes back to the buyer.
    ruling: Mapped[str | None] = mapped_column(String(16))
    ruling_refund: Mapped[int | None] = mapped_column(BigInteger)
    quote_id: Mapped[int | None] = mapped_column(ForeignKey("quote.id"))
    # Financial products: the amount and term the enterprise applies for.
    application_amount: Mapped[int | None] = mapped_column(BigInteger)
    application_term_months: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    checkout: Mapped[Checkout | None] = relationship(back_populates="orders")
    buyer: Mapped[Organisation] = relationship(foreign_keys=[buyer_org_id])
    buyer_user: Mapped[User | None] = relationship(foreign_keys=[buyer_user_id])
    provider: Mapped[Organisation] = relationship(foreign_keys=[provider_org_id])
    product: Mapped[Product | None] = relationship()
    category: Mapped[Category | None] = relationship()
    lines: Mapped[list["OrderLine"]] = relationship(
        back_populates="order", order_by="OrderLine.id", cascade="all, delete-orphan")
    events: Mapped[list["OrderEvent"]] = relationship(
        back_populates="order", order_by="OrderEvent.id", cascade="all, delete-orphan")
    milestones: Mapped[list["Milestone"]] = relationship(
        back_populates="order", order_by="Milestone.position", cascade="all, delete-orphan")
    progress_updates: Mapped[list["ProgressUpdate"]] = relationship(
        back_populates="order", order_by="ProgressUpdate.id", cascade="all, delete-orphan")
    messages: Mapped[list["OrderMessage"]] = relationship(
        back_populates="order", order_by="OrderMessage.id", cascade="all, delete-orphan")
    payments: Mapped[list["Payment"]] = relationship(
        back_populates="order", order_by="Payment.id")

    @property
    def amount_due(self) -> int:
        """What the buyer pays with money (the rest is covered by a voucher)."""
        return self.subtotal - self.voucher_amount

    @property
    def live_payment(self) -> "Payment | None":
        for payment in reversed(self.payments):
            if payment.status in LIVE_PAYMENT_STATUSES:
                return payment
        return None

    @property
    def progress_percent(self) -> int:
        if self.status in ("delivered", "completed", "settled"):
            return 100
        # What a submission the buyer sent back reported is not done (sla.py: the same in SQL).
        sent_back = {m.submission_update_id for m in self.milestones
                     if m.status == states.MILESTONE_SENT_BACK}
        done = [p.percent for p in self.progress_updates if p.id not in sent_back]
        milestone_share = sum(m.share_bp for m in self.milestones
                              if m.status in states.MILESTONE_REACHED) // 100
        return max([0, milestone_share, *done])

    def __repr__(self) -> str:
        return f"<Order {self.number} {self.status}>"


class OrderLine(Base):
    """A snapshot of what was bought: names and prices as they were at checkout."""

    __tablename__ = "order_line"
    __table_args__ = (
        CheckConstraint("quantity >= 1", name="quantity_positive"),
        CheckConstraint("unit_price >= 0", name="unit_price_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(
        ForeignKey("purchase_order.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int | None] = mapped_column(ForeignKey("product.id", ondelete="SET NULL"))
    package_id: Mapped[int | None] = mapped_column(ForeignKey("package.id", ondelete="SET NULL"))
    product_title: Mapped[str] = mapped_column(String(200))
    package_name: Mapped[str] = mapped_column(String(60))
    unit_price: Mapped[int] = mapped_column(BigInteger)
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    delivery_days: Mapped[int | None] = mapped_column(Integer)
    deliverables: Mapped[str] = mapped_column(Text, default="")

    order: Mapped[Order] = relationship(back_populates="lines")

    @property
    def line_total(self) -> int:
        return self.unit_price * self.quantity


class OrderEvent(Base):
    """One entry of the order timeline: who did what, when, with which note."""

    __tablename__ = "order_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(
        ForeignKey("purchase_order.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(32))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    actor_role: Mapped[str] = mapped_column(String(16))  # buyer, provider, staff, system
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str | None] = mapped_column(String(20))
    note: Mapped[str] = mapped_column(Text, default="")
    # A note the platform wrote: its key and values, put into the reader's language when
    # shown (orders/timeline.py); ``note`` then holds the English text.
    note_key: Mapped[str | None] = mapped_column(String(40))
    note_args: Mapped[dict | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    order: Mapped[Order] = relationship(back_populates="events")
    actor: Mapped[User | None] = relationship()


class Milestone(Base):
    __tablename__ = "milestone"
    __table_args__ = (
        CheckConstraint("share_bp >= 0 and share_bp <= 10000", name="share_range"),
        CheckConstraint(_in("status", states.MILESTONE_VALUES), name="status"),
        CheckConstraint("released_amount >= 0", name="released_not_negative"),
        # Percent done of many orders from the index alone (orders/sla.py: done_expr).
        Index("ix_milestone_order_status_share", "order_id", "status", "share_bp"),
        # Milestones past due / due soon, whatever the order (orders/sla.py, orders/alerts.py).
        Index("ix_milestone_status_due_date", "status", "due_date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(
        ForeignKey("purchase_order.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    title: Mapped[str] = mapped_column(String(200))
    share_bp: Mapped[int] = mapped_column(Integer)  # share of the order price, basis points
    due_date: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # states.MILESTONE_*
    completed_at: Mapped[datetime | None]  # last submitted (the work reported done)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Submission and the buyer's answer (issue 13): the note and files of the submission live
    # on a progress update (the order's upload rules), the reason for changes here.
    submitted_at: Mapped[datetime | None]
    submission_note: Mapped[str] = mapped_column(Text, default="", server_default="")
    submission_update_id: Mapped[int | None] = mapped_column(
        ForeignKey("progress_update.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None]
    decision_note: Mapped[str] = mapped_column(Text, default="", server_default="")
    approved_by: Mapped[str | None] = mapped_column(String(16))  # buyer / timer / completion
    auto_notice_at: Mapped[datetime | None]  # the buyer was told of the coming auto-approval
    released_amount: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    release_posting: Mapped[str | None] = mapped_column(String(32))  # ledger posting id

    order: Mapped[Order] = relationship(back_populates="milestones")
    submission: Mapped["ProgressUpdate | None"] = relationship(
        foreign_keys=[submission_update_id])


class MilestoneAlert(Base):
    """One deviation alert sent for a milestone (orders/alerts.py): the unique key
    (milestone, kind, due date) makes the daily job tell buyer, institution and staff once
    per deviation; a milestone extended to a new due date can deviate, and alert, again."""

    __tablename__ = "milestone_alert"
    __table_args__ = (
        CheckConstraint("kind in ('overdue', 'at_risk')", name="kind"),
        UniqueConstraint("milestone_id", "kind", "due_date", name="uq_milestone_alert_once"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(
        ForeignKey("purchase_order.id", ondelete="CASCADE"), index=True)
    milestone_id: Mapped[int] = mapped_column(ForeignKey("milestone.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # overdue / at_risk
    due_date: Mapped[date] = mapped_column(Date)  # the milestone's due date it was sent for
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    milestone: Mapped[Milestone] = relationship()


class ProgressUpdate(Base):
    __tablename__ = "progress_update"
    __table_args__ = (
        CheckConstraint("percent >= 0 and percent <= 100", name="percent_range"),
        # Best percent per order from the index alone (orders/sla.py: done_expr).
        Index("ix_progress_update_order_percent", "order_id", "percent"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(
        ForeignKey("purchase_order.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    percent: Mapped[int] = mapped_column(Integer)
    note: Mapped[str] = mapped_column(Text, default="")
    is_delivery: Mapped[bool] = mapped_column(Boolean, default=False,
                                              server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    order: Mapped[Order] = relationship(back_populates="progress_updates")
    author: Mapped[User | None] = relationship()
    files: Mapped[list["OrderFile"]] = relationship(
        back_populates="progress_update", order_by="OrderFile.id")


class OrderMessage(Base):
    """The thread between buyer and provider (staff can read it)."""

    __tablename__ = "order_message"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(
        ForeignKey("purchase_order.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    author_role: Mapped[str] = mapped_column(String(16))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    order: Mapped[Order] = relationship(back_populates="messages")
    author: Mapped[User | None] = relationship()
    files: Mapped[list["OrderFile"]] = relationship(
        back_populates="message", order_by="OrderFile.id")


class OrderFile(Base):
    """An uploaded file of an order or a quote request, stored outside static/ under a
    generated name and served only to the parties and staff."""

    __tablename__ = "order_file"
    __table_args__ = (
        CheckConstraint("(order_id IS NULL) <> (quote_request_id IS NULL)",
                        name="exactly_one_owner"),
        CheckConstraint(_in("purpose", ("requirements", "progress", "delivery", "message",
                                        "quote_request")), name="purpose"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int | None] = mapped_column(
        ForeignKey("purchase_order.id", ondelete="CASCADE"), index=True)
    quote_request_id: Mapped[int | None] = mapped_column(
        ForeignKey("quote_request.id", ondelete="CASCADE"), index=True)
    progress_update_id: Mapped[int | None] = mapped_column(
        ForeignKey("progress_update.id", ondelete="SET NULL"))
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("order_message.id", ondelete="SET NULL"))
    purpose: Mapped[str] = mapped_column(String(16))
    original_name: Mapped[str] = mapped_column(String(200))
    stored_name: Mapped[str] = mapped_column(String(80), unique=True)
    content_type: Mapped[str] = mapped_column(String(40))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    progress_update: Mapped[ProgressUpdate | None] = relationship(back_populates="files")
    message: Mapped[OrderMessage | None] = relationship(back_populates="files")
    uploaded_by: Mapped[User | None] = relationship()


# --------------------------------------------------------------------------- payments

class Payment(Base):
    """One attempt to pay an order. A declined card ends its attempt (failed); a retry is a
    new row. At most one live attempt per order (partial unique index)."""

    __tablename__ = "payment"
    __table_args__ = (
        CheckConstraint(_in("method", PAYMENT_METHODS), name="method"),
        CheckConstraint(_in("status", PAYMENT_STATUSES), name="status"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("amount_authorised >= 0 and amount_authorised <= amount",
                        name="authorised_range"),
        CheckConstraint("amount_captured >= 0 and amount_captured <= amount",
                        name="captured_range"),
        CheckConstraint("amount_refunded >= 0 and amount_refunded <= amount_captured",
                        name="refund_within_captured"),
        Index("uq_payment_live_per_order", "order_id", unique=True,
              sqlite_where=text(_in("status", LIVE_PAYMENT_STATUSES)),
              postgresql_where=text(_in("status", LIVE_PAYMENT_STATUSES))),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("purchase_order.id"), index=True)
    method: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[int] = mapped_column(BigInteger)
    amount_authorised: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_captured: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_refunded: Mapped[int] = mapped_column(BigInteger, default=0)
    stripe_payment_intent_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    stripe_client_secret: Mapped[str | None] = mapped_column(String(128))
    card_brand: Mapped[str | None] = mapped_column(String(20))
    card_last4: Mapped[str | None] = mapped_column(String(4))
    failure_code: Mapped[str | None] = mapped_column(String(64))
    failure_message: Mapped[str | None] = mapped_column(Text)
    received_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    received_reference: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    authorised_at: Mapped[datetime | None]
    captured_at: Mapped[datetime | None]

    order: Mapped[Order] = relationship(back_populates="payments")
    refunds: Mapped[list["Refund"]] = relationship(back_populates="payment", order_by="Refund.id")

    @property
    def refundable(self) -> int:
        return self.amount_captured - self.amount_refunded


class Refund(Base):
    """Money given back on an order: ``amount`` to the buyer's card or bank account (through
    ``payment``) and ``voucher_amount`` to the innovation voucher. A staff refund is one row
    even when the voucher takes all of it (no cash, no payment). ``form_token`` is the
    one-time token of the refund form: UNIQUE, so a double-submitted form refunds once."""

    __tablename__ = "refund"
    __table_args__ = (
        CheckConstraint("amount >= 0 and voucher_amount >= 0 and amount + voucher_amount > 0",
                        name="amounts_positive"),
        CheckConstraint("status in ('succeeded', 'pending_transfer')", name="status"),
        Index("uq_refund_form_token", "form_token", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payment.id"), index=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("purchase_order.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    voucher_amount: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # Card refunds go through Stripe; bank-transfer refunds are paid out by staff.
    status: Mapped[str] = mapped_column(String(20), default="succeeded")
    stripe_refund_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    form_token: Mapped[str | None] = mapped_column(String(64))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    payment: Mapped[Payment | None] = relationship(back_populates="refunds")


class StripeWebhookEvent(Base):
    """Stripe events already handled; the UNIQUE event id makes a replay a no-op."""

    __tablename__ = "stripe_webhook_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    type: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[str | None] = mapped_column(String(64), index=True)
    outcome: Mapped[str] = mapped_column(String(200), default="")
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


# --------------------------------------------------------------------------- vouchers

class VoucherProgramme(Base):
    """An innovation-voucher scheme of a funder (e.g. a district science bureau)."""

    __tablename__ = "voucher_programme"
    __table_args__ = (
        CheckConstraint("budget > 0", name="budget_positive"),
        CheckConstraint("remaining >= 0 and remaining <= budget", name="remaining_range"),
        CheckConstraint("max_share_bp > 0 and max_share_bp <= 10000", name="share_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    funder: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    budget: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)
    # Category ids (top-level or sub); empty means every voucher-eligible listing.
    eligible_category_ids: Mapped[list] = mapped_column(default=list)
    # Region codes (marketplace/reference.py) of the enterprises it funds, a parent region
    # covering its districts (orders/vouchers.py region_covers); empty means any region.
    regions: Mapped[list] = mapped_column(default=list)
    max_share_bp: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    vouchers: Mapped[list["Voucher"]] = relationship(back_populates="programme",
                                                     order_by="Voucher.id")


class Voucher(Base):
    __tablename__ = "voucher"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("balance >= 0 and balance <= amount", name="balance_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    programme_id: Mapped[int] = mapped_column(ForeignKey("voucher_programme.id"), index=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    code: Mapped[str] = mapped_column(String(24), unique=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    balance: Mapped[int] = mapped_column(BigInteger)
    note: Mapped[str] = mapped_column(Text, default="")
    granted_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    granted_at: Mapped[datetime] = mapped_column(default=utcnow)

    programme: Mapped[VoucherProgramme] = relationship(back_populates="vouchers")
    organisation: Mapped[Organisation] = relationship()


class VoucherRedemption(Base):
    """Voucher value applied to one order; ``returned`` is what came back on cancellation
    or refund. Reported to the funder for reimbursement."""

    __tablename__ = "voucher_redemption"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("returned >= 0 and returned <= amount", name="returned_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    voucher_id: Mapped[int] = mapped_column(ForeignKey("voucher.id"), index=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("purchase_order.id"), unique=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    returned: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    voucher: Mapped[Voucher] = relationship()
    order: Mapped[Order] = relationship()

    @property
    def net(self) -> int:
        return self.amount - self.returned


# --------------------------------------------------------------------------- ledger

class LedgerEntry(Base):
    """One line of a balanced posting. Amounts are signed: debit positive, credit negative;
    the lines of a posting (and so of an order) sum to zero."""

    __tablename__ = "ledger_entry"
    __table_args__ = (
        CheckConstraint(_in("account", LEDGER_ACCOUNTS), name="account"),
        CheckConstraint("amount <> 0", name="amount_not_zero"),
        Index("ix_ledger_entry_order_account", "order_id", "account"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("purchase_order.id"))
    posting: Mapped[str] = mapped_column(String(32), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    account: Mapped[str] = mapped_column(String(32))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    memo: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CommissionRate(Base):
    """Platform commission for a category (a sub-category falls back to its parent)."""

    __tablename__ = "commission_rate"
    __table_args__ = (CheckConstraint("rate_bp >= 0 and rate_bp <= 10000", name="rate_range"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("category.id", ondelete="CASCADE"),
                                             unique=True)
    rate_bp: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    category: Mapped[Category] = relationship()


class ProviderCommission(Base):
    """A provider's contract rate, overriding the category rates."""

    __tablename__ = "provider_commission"
    __table_args__ = (CheckConstraint("rate_bp >= 0 and rate_bp <= 10000", name="rate_range"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_org_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"), unique=True)
    rate_bp: Mapped[int] = mapped_column(Integer)
    note: Mapped[str] = mapped_column(String(200), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    provider: Mapped[Organisation] = relationship()


# --------------------------------------------------------------------------- quotes

class QuoteRequest(Base):
    __tablename__ = "quote_request"
    __table_args__ = (
        CheckConstraint(_in("status", ("open", "quoted", "accepted", "declined", "expired",
                                       "withdrawn")), name="status"),
        Index("ix_quote_request_provider_status", "provider_org_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # The listing asked; none for the award of a proposal from an institution without
    # published listings (demand.services.award): then ``title`` and ``category_id`` (the
    # need's) say what the order is for and which category's commission and contract apply.
    product_id: Mapped[int | None] = mapped_column(ForeignKey("product.id"))
    title: Mapped[str | None] = mapped_column(String(200))
    category_id: Mapped[int | None] = mapped_column(ForeignKey("category.id"))
    buyer_org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    buyer_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    provider_org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    need: Mapped[str] = mapped_column(Text)
    budget: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    deadline: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]  # an unanswered request lapses

    product: Mapped[Product | None] = relationship()
    category: Mapped[Category | None] = relationship()
    buyer: Mapped[Organisation] = relationship(foreign_keys=[buyer_org_id])
    provider: Mapped[Organisation] = relationship(foreign_keys=[provider_org_id])
    quotes: Mapped[list["Quote"]] = relationship(back_populates="request", order_by="Quote.id")
    files: Mapped[list[OrderFile]] = relationship(order_by="OrderFile.id")

    @property
    def subject(self) -> str:
        """What the request is about, as lists and pages name it: the listing's title, or
        (no listing) the title it was given."""
        return self.product.title if self.product is not None else (self.title or "")


class Quote(Base):
    __tablename__ = "quote"
    __table_args__ = (
        # Zero only for an awarded zero-fee financial proposal (demand.services.award);
        # institutions' own quotes are more than zero (orders.quotes.send_quote).
        CheckConstraint("price >= 0", name="price_not_negative"),
        CheckConstraint(_in("status", ("sent", "accepted", "declined", "expired", "superseded")),
                        name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("quote_request.id", ondelete="CASCADE"),
                                            index=True)
    price: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    due_date: Mapped[date] = mapped_column(Date)
    note: Mapped[str] = mapped_column(Text, default="")
    # [{"title": ..., "share_bp": ..., "due_date": "YYYY-MM-DD"}], shares summing to 10000.
    milestones: Mapped[list] = mapped_column(default=list)
    valid_until: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default="sent")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]

    request: Mapped[QuoteRequest] = relationship(back_populates="quotes")


# --------------------------------------------------------------------------- settlement

class SettlementBatch(Base):
    """The settlement of one period (a calendar month by default): the orders completed or
    ruled on in it, one statement per provider. A later run for the same period adds a
    supplementary batch (``sequence`` 2, 3...) holding only orders not yet in any batch."""

    __tablename__ = "settlement_batch"
    __table_args__ = (
        UniqueConstraint("period_start", "period_end", "currency", "sequence",
                         name="uq_settlement_batch_period"),
        CheckConstraint("period_end >= period_start", name="period_order"),
        CheckConstraint("sequence >= 1", name="sequence_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)  # inclusive
    sequence: Mapped[int] = mapped_column(Integer, default=1)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    order_count: Mapped[int] = mapped_column(Integer, default=0)
    gross: Mapped[int] = mapped_column(BigInteger, default=0)
    refunds: Mapped[int] = mapped_column(BigInteger, default=0)
    voucher: Mapped[int] = mapped_column(BigInteger, default=0)
    fee: Mapped[int] = mapped_column(BigInteger, default=0)
    net: Mapped[int] = mapped_column(BigInteger, default=0)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    created_by: Mapped[User | None] = relationship()
    statements: Mapped[list["SettlementStatement"]] = relationship(
        back_populates="batch", order_by="SettlementStatement.id")


class SettlementStatement(Base):
    """What the platform owes one provider for one batch, and whether it was paid."""

    __tablename__ = "settlement_statement"
    __table_args__ = (
        UniqueConstraint("batch_id", "provider_org_id", name="uq_settlement_statement_provider"),
        CheckConstraint("(paid_at IS NULL) = (payout_reference IS NULL)", name="paid_reference"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("settlement_batch.id"), index=True)
    provider_org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    order_count: Mapped[int] = mapped_column(Integer, default=0)
    gross: Mapped[int] = mapped_column(BigInteger, default=0)
    refunds: Mapped[int] = mapped_column(BigInteger, default=0)
    voucher: Mapped[int] = mapped_column(BigInteger, default=0)
    fee: Mapped[int] = mapped_column(BigInteger, default=0)
    net: Mapped[int] = mapped_column(BigInteger, default=0)
    payout_reference: Mapped[str | None] = mapped_column(String(64))
    paid_at: Mapped[datetime | None]
    paid_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))

    batch: Mapped[SettlementBatch] = relationship(back_populates="statements")
    provider: Mapped[Organisation] = relationship()
    paid_by: Mapped[User | None] = relationship()
    items: Mapped[list["SettlementItem"]] = relationship(
        back_populates="statement", order_by="SettlementItem.id")


SETTLEMENT_ITEM_KINDS = ("order", "release", "clawback")


class SettlementItem(Base):
    """One line of a statement, with its figures read from the ledger: a whole order
    (``kind`` "order": completed or ruled on; what its earlier release items did not already
    settle), or one ledger posting of a still running or settled order (issue 13: a milestone
    ``release``, or a staff ``clawback`` against the institution). A posting is in at most
    one batch (``posting`` UNIQUE), and an order's whole-order line too (partial UNIQUE index
    on ``order_id`` where ``posting`` is NULL)."""

    __tablename__ = "settlement_item"
    __table_args__ = (
        CheckConstraint(_in("kind", SETTLEMENT_ITEM_KINDS), name="kind"),
        CheckConstraint("(kind = 'order') = (posting IS NULL)", name="kind_posting"),
        Index("uq_settlement_item_whole_order", "order_id", unique=True,
              sqlite_where=text("posting IS NULL"), postgresql_where=text("posting IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("settlement_batch.id"), index=True)
    statement_id: Mapped[int] = mapped_column(ForeignKey("settlement_statement.id"), index=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("purchase_order.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="order", server_default="order")
    posting: Mapped[str | None] = mapped_column(String(32), unique=True)
    gross: Mapped[int] = mapped_column(BigInteger)
    refunds: Mapped[int] = mapped_column(BigInteger)
    voucher: Mapped[int] = mapped_column(BigInteger)
    fee: Mapped[int] = mapped_column(BigInteger)
    net: Mapped[int] = mapped_column(BigInteger)

    statement: Mapped[SettlementStatement] = relationship(back_populates="items")
    order: Mapped[Order] = relationship()


# --------------------------------------------------------------------------- console figures

class OrderDayFigure(Base):
    """Daily roll-up of orders for the monitors' dashboard (orders/figures.py keeps it in the
    same transaction as every order change it reflects): per UTC day, order category (0: none)
    and currency, the orders placed that day, the orders paid that day and their value."""

    __tablename__ = "order_day_figure"

    day: Mapped[date] = mapped_column(primary_key=True)
    category_id: Mapped[int] = mapped_column(Integer, primary_key=True)  # 0: no category
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    orders_created: Mapped[int] = mapped_column(BigInteger, default=0)
    orders_paid: Mapped[int] = mapped_column(BigInteger, default=0)
    gmv: Mapped[int] = mapped_column(BigInteger, default=0)  # subtotals paid, minor units


class OrderStateCount(Base):
    """Orders per status, kept by orders/figures.py with every insert and status change."""

    __tablename__ = "order_state_count"

    status: Mapped[str] = mapped_column(String(20), primary_key=True)
    orders: Mapped[int] = mapped_column(BigInteger, default=0)
