"""Catalogue: the two-level category tree, products (listings) and their packages."""

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.database import Base, utcnow
from marketplace.i18n import local_text
from marketplace.models import Organisation

PRICING_MODES = ("packaged", "quote", "financial")
PRODUCT_STATUSES = ("draft", "pending_review", "published", "suspended", "archived")


class Category(Base):
    __tablename__ = "category"

    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("category.id"), index=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    name_zh: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    position: Mapped[int] = mapped_column(Integer, default=0)

    parent: Mapped["Category | None"] = relationship(
        remote_side="Category.id", back_populates="children"
    )
    children: Mapped[list["Category"]] = relationship(
        back_populates="parent", order_by="Category.position"
    )

    @property
    def path(self) -> str:
        return f"{self.parent.name} › {self.name}" if self.parent else self.name

    def __repr__(self) -> str:
        return f"<Category {self.slug}>"


class Product(Base):
    __tablename__ = "product"
    __table_args__ = (
        CheckConstraint("pricing_mode in ('packaged', 'quote', 'financial')", name="pricing_mode"),
        CheckConstraint(
            "status in ('draft', 'pending_review', 'published', 'suspended', 'archived')",
            name="status",
        ),
        # Covers the per-institution counts of a category's listings (demand matching,
        # migration 0022) as well as the (status, category) reads it replaced.
        Index("ix_product_status_category_provider", "status", "category_id", "provider_id"),
        Index("ix_product_status_published_at", "status", "published_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("category.id"))
    title: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(String(500))
    # Optional second-language title and summary (Chinese for an English listing, English for
    # a Chinese one): pages show the viewer's language first (``local_title``), search
    # indexes both.
    title_alt: Mapped[str | None] = mapped_column(String(200))
    summary_alt: Mapped[str | None] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text, default="")  # Markdown, sanitised on render
    regions: Mapped[list] = mapped_column(default=list)
    tags: Mapped[list] = mapped_column(default=list)
    delivery_days: Mapped[int | None] = mapped_column(Integer)
    voucher_eligible: Mapped[bool] = mapped_column(Boolean, default=False)
    pricing_mode: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    # Lowest price a buyer can pay (cheapest package, or the financial service fee), in
    # minor units; None for quote listings. Kept for sorting and price filters.
    price_from: Mapped[int | None] = mapped_column(BigInteger)
    # Quote mode: what the buyer must describe when asking for a quote.
    quote_brief: Mapped[str | None] = mapped_column(Text)
    # Financial mode: amounts in minor units, rates in basis points, terms in months.
    amount_min: Mapped[int | None] = mapped_column(BigInteger)
    amount_max: Mapped[int | None] = mapped_column(BigInteger)
    rate_min_bp: Mapped[int | None] = mapped_column(Integer)
    rate_max_bp: Mapped[int | None] = mapped_column(Integer)
    term_min_months: Mapped[int | None] = mapped_column(Integer)
    term_max_months: Mapped[int | None] = mapped_column(Integer)
    service_fee: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    # Staff's reason when a submission was rejected (shown to the institution on the draft).
    rejection_reason: Mapped[str | None] = mapped_column(Text)
    featured: Mapped[bool] = mapped_column(Boolean, default=False)
    view_count: Mapped[int] = mapped_column(Integer, default=0)
    favourite_count: Mapped[int] = mapped_column(Integer, default=0)
    sales_count: Mapped[int] = mapped_column(Integer, default=0)
    # Ratings from published, visible buyer reviews (catalog.reviews keeps these in step):
    # the mean review score x100 (None while unrated) and how many reviews count.
    rating_x100: Mapped[int | None] = mapped_column(Integer)
    rating_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    published_at: Mapped[datetime | None]

    provider: Mapped[Organisation] = relationship()
    category: Mapped[Category] = relationship()
    packages: Mapped[list["Package"]] = relationship(
        back_populates="product", order_by="Package.position", cascade="all, delete-orphan"
    )

    @property
    def rating_average(self) -> float | None:
        """Average buyer rating (1.00-5.00), None while no review counts."""
        return self.rating_x100 / 100 if self.rating_x100 is not None else None

    @property
    def local_title(self) -> str:
        """The title in the viewer's language when the listing has one, else its title."""
        return local_text(self.title, self.title_alt)

    @property
    def local_summary(self) -> str:
        return local_text(self.summary, self.summary_alt)

    def __repr__(self) -> str:
        return f"<Product {self.id} {self.title!r} {self.status}>"


class Package(Base):
    __tablename__ = "package"
    __table_args__ = (CheckConstraint("price >= 0", name="price_not_negative"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    name: Mapped[str] = mapped_column(String(60))
    price: Mapped[int] = mapped_column(BigInteger)  # minor units, currency of the product
    delivery_days: Mapped[int] = mapped_column(Integer)
    deliverables: Mapped[str] = mapped_column(Text, default="")  # one per line

    product: Mapped[Product] = relationship(back_populates="packages")

    @property
    def deliverable_list(self) -> list[str]:
        return [line.strip() for line in self.deliverables.splitlines() if line.strip()]


class ProductRevision(Base):
    """A proposed change to a published listing. The public page keeps showing the Product row
    until staff approve the revision; then its snapshot is copied onto the product."""

    __tablename__ = "product_revision"
    __table_args__ = (
        CheckConstraint(
            "status in ('draft', 'pending', 'approved', 'rejected', 'withdrawn')", name="status"
        ),
        Index("ix_product_revision_product_status", "product_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id", ondelete="CASCADE"))
    # Snapshot of the editable fields (title, summary, description, category_id, regions, tags,
    # pricing fields and packages) as plain JSON.
    data: Mapped[dict] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    reason: Mapped[str | None] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    submitted_at: Mapped[datetime | None]
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    decided_at: Mapped[datetime | None]

    product: Mapped[Product] = relationship()


class SearchOutbox(Base):
    """Listings whose search document must be refreshed. Written in the same transaction as
    the listing change; applied to the Whoosh index by a single writer, then deleted."""

    __tablename__ = "search_outbox"
    # An append-only log read by cursors: ids must never be reused, even on SQLite after
    # the rows were pruned (migration 0016).
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(Integer, index=True)  # no FK: deletions are events too
    reason: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SearchReplica(Base):
    """One search-index replica (one per app host): the id of the last outbox row it applied.
    The outbox is a log every replica reads; rows below the lowest cursor may be pruned."""

    __tablename__ = "search_replica"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    applied_id: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Favourite(Base):
    """An enterprise member's starred ("collected") product or institution."""

    __tablename__ = "favourite"
    __table_args__ = (
        UniqueConstraint("user_id", "product_id", name="uq_favourite_user_product"),
        UniqueConstraint("user_id", "provider_id", name="uq_favourite_user_provider"),
        CheckConstraint(
            "(product_id IS NULL) <> (provider_id IS NULL)", name="exactly_one_target"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"),
                                         index=True)
    product_id: Mapped[int | None] = mapped_column(ForeignKey("product.id", ondelete="CASCADE"),
                                                   index=True)
    provider_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"), index=True)
    # Price seen when starred/last notified, to tell the user when it changes.
    seen_price_from: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    product: Mapped[Product | None] = relationship()
    provider: Mapped[Organisation | None] = relationship()


REVIEW_SIDES = ("buyer", "provider")
# The dimensions each side scores, in display order.
BUYER_DIMENSIONS = ("quality", "timeliness", "communication", "value")
PROVIDER_DIMENSIONS = ("clarity", "cooperation", "payment")


def _score_check(column: str) -> CheckConstraint:
    return CheckConstraint(f"{column} IS NULL OR ({column} >= 1 AND {column} <= 5)",
                           name=f"{column}_range")


class Review(Base):
    """One side's rating of a completed order (DESIGN.md §6).

    side "buyer": written by the buying enterprise about the institution (quality, timeliness,
    communication, value); side "provider": written by the institution about the buyer
    (clarity, cooperation, payment). Double-blind: ``published_at`` stays None until both
    sides are in or the blind window has passed. A review counts (averages, public pages)
    when it is published and not hidden: ``catalog.reviews.counted_reviews_condition()``.
    """

    __tablename__ = "review"
    __table_args__ = (
        UniqueConstraint("order_id", "side", name="uq_review_order_side"),
        CheckConstraint("side in ('buyer', 'provider')", name="side"),
        *(_score_check(column) for column in BUYER_DIMENSIONS + PROVIDER_DIMENSIONS),
        CheckConstraint("score_x100 >= 100 AND score_x100 <= 500", name="score_range"),
        Index("ix_review_subject_published", "subject_org_id", "side", "published_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(
        ForeignKey("purchase_order.id", ondelete="CASCADE"), index=True)
    side: Mapped[str] = mapped_column(String(8))
    author_org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    author_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    subject_org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    product_id: Mapped[int | None] = mapped_column(
        ForeignKey("product.id", ondelete="SET NULL"), index=True)
    quality: Mapped[int | None] = mapped_column(Integer)
    timeliness: Mapped[int | None] = mapped_column(Integer)
    communication: Mapped[int | None] = mapped_column(Integer)
    value: Mapped[int | None] = mapped_column(Integer)
    clarity: Mapped[int | None] = mapped_column(Integer)
    cooperation: Mapped[int | None] = mapped_column(Integer)
    payment: Mapped[int | None] = mapped_column(Integer)
    # Mean of the side's dimensions x100, rounded half up (4.25 -> 425).
    score_x100: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_at: Mapped[datetime | None]
    hidden_at: Mapped[datetime | None]
    hidden_reason: Mapped[str | None] = mapped_column(Text)
    hidden_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    reply: Mapped[str | None] = mapped_column(Text)
    replied_at: Mapped[datetime | None]

    author_org: Mapped[Organisation] = relationship(foreign_keys=[author_org_id])
    subject_org: Mapped[Organisation] = relationship(foreign_keys=[subject_org_id])
    product: Mapped[Product | None] = relationship()

    @property
    def dimensions(self) -> tuple[str, ...]:
        return BUYER_DIMENSIONS if self.side == "buyer" else PROVIDER_DIMENSIONS

    @property
    def score(self) -> float:
        return self.score_x100 / 100

    @property
    def is_published(self) -> bool:
        return self.published_at is not None

    @property
    def is_hidden(self) -> bool:
        return self.hidden_at is not None

    def __repr__(self) -> str:
        return f"<Review {self.id} order={self.order_id} {self.side} {self.score_x100}>"


class CatalogVersion(Base):
    """One row (id 1): a counter bumped in the same transaction as every change that the
    public catalogue pages show (``catalog/page_cache.py``), which keys the whole-page cache
    for visitors and the cached category counts by it."""

    __tablename__ = "catalog_version"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)


class CatalogChange(Base):
    """What one catalogue version changed (``catalog/page_cache.py``): the scopes of the pages
    that show it (``p:<listing>``, ``o:<institution>``, ``c:<category>``, ... or ``*`` for
    every page), written in the same transaction as the version bump. A process that has
    cached pages at an older version reads the rows since then and drops only the pages of
    those scopes; a gap in the rows (pruned, or a restore) drops everything."""

    __tablename__ = "catalog_change"

    version: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    scopes: Mapped[str] = mapped_column(Text)
