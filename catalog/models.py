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
        Index("ix_product_status_category", "status", "category_id"),
        Index("ix_product_status_published_at", "status", "published_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("category.id"))
    title: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(String(500))
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
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    published_at: Mapped[datetime | None]

    provider: Mapped[Organisation] = relationship()
    category: Mapped[Category] = relationship()
    packages: Mapped[list["Package"]] = relationship(
        back_populates="product", order_by="Package.position", cascade="all, delete-orphan"
    )

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

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(Integer, index=True)  # no FK: deletions are events too
    reason: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


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
