"""Listing management (institutions) and moderation (staff).

Life of a listing::

    draft ──submit──▶ pending_review ──approve──▶ published ──archive──▶ archived
      ▲                 │    │ withdraw              │  ▲                  │
      └──── reject ─────┘    └──▶ draft        suspend│  │reinstate        └─restore─▶ draft
                                                      ▼  │
                                                   suspended

A draft that was never published is edited in place. Editing a *published* listing never
touches the public row: the change is a ``ProductRevision`` (draft → pending → approved /
rejected / withdrawn) whose JSON snapshot is copied onto the product when staff approve it.
``ListingData`` with ``read_product`` / ``write_product`` is the one place that knows how a
listing is turned into a snapshot and back.

Every function takes a session and the acting user, checks permission (PermissionDenied) and
state (RuleError), and records audit entries, notifications and search-outbox rows in the
same transaction. Nothing here commits.
"""

import difflib
import re
from dataclasses import asdict, dataclass, field, fields
from decimal import Decimal, InvalidOperation

from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, literal, null, select, union_all
from sqlalchemy.orm import Session, joinedload, selectinload

from catalog.models import PRICING_MODES, Category, Package, Product, ProductRevision
from catalog.search import outbox as search_outbox
from catalog.services import Page, paginate
from marketplace import audit, notifications, permissions, reference
from marketplace.database import utcnow
from marketplace.i18n import local_name, local_text
from marketplace.models import AuditLog, Organisation
from marketplace.permissions import can_manage_institution, has_role
from orders.money import format_amount, format_rate
from providers import links
from providers.errors import PermissionDenied, RuleError
from providers.state import advance

MAX_TAGS = 10
MAX_TAG_LENGTH = 30
MAX_PACKAGES = 3
MAX_DESCRIPTION = 20_000
OPEN_REVISION = ("draft", "pending")
STATUS_LABELS = {
    "draft": (_l("Draft"), "草稿", "text-bg-secondary"),
    "pending_review": (_l("In review"), "审核中", "text-bg-warning"),
    "published": (_l("Published"), "已上架", "text-bg-success"),
    "suspended": (_l("Suspended"), "已暂停", "text-bg-danger"),
    "archived": (_l("Archived"), "已归档", "text-bg-light"),
}
MODE_LABELS = {"packaged": _l("Packaged price"), "quote": _l("Quote on request"),
               "financial": _l("Financial product")}
ACTION_LABELS = {
    "listing.create": (_l("Created"), "bi-plus-circle", "text-bg-light"),
    "listing.submit": (_l("Submitted for review"), "bi-send", "text-bg-primary"),
    "listing.submit_change": (_l("Change submitted for review"), "bi-send", "text-bg-primary"),
    "listing.withdraw": (_l("Submission withdrawn"), "bi-arrow-return-left", "text-bg-light"),
    "listing.discard_change": (_l("Change discarded"), "bi-x-lg", "text-bg-light"),
    "listing.approve": (_l("Approved and published"), "bi-check-circle-fill", "text-bg-success"),
    "listing.approve_change": (_l("Change approved"), "bi-check-circle-fill", "text-bg-success"),
    "listing.reject": (_l("Rejected"), "bi-x-circle", "text-bg-danger"),
    "listing.reject_change": (_l("Change rejected"), "bi-x-circle", "text-bg-danger"),
    "listing.suspend": (_l("Suspended by staff"), "bi-slash-circle", "text-bg-danger"),
    "listing.reinstate": (_l("Reinstated by staff"), "bi-arrow-counterclockwise",
                          "text-bg-success"),
    "listing.archive": (_l("Archived"), "bi-archive", "text-bg-secondary"),
    "listing.restore": (_l("Restored as draft"), "bi-arrow-counterclockwise", "text-bg-light"),
    "listing.duplicate": (_l("Created as a copy"), "bi-copy", "text-bg-light"),
}


# --------------------------------------------------------------------------- the snapshot

@dataclass
class PackageData:
    name: str
    price: int  # minor units
    delivery_days: int
    deliverables: str = ""


@dataclass
class ListingData:
    """Everything an institution edits about a listing, as plain values."""

    category_id: int
    title: str
    summary: str
    description: str
    regions: list[str]
    tags: list[str]
    delivery_days: int | None
    voucher_eligible: bool
    pricing_mode: str
    packages: list[PackageData] = field(default_factory=list)
    quote_brief: str | None = None
    amount_min: int | None = None
    amount_max: int | None = None
    rate_min_bp: int | None = None
    rate_max_bp: int | None = None
    term_min_months: int | None = None
    term_max_months: int | None = None
    service_fee: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ListingData":
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        values["packages"] = [PackageData(**package) for package in data.get("packages") or []]
        values["regions"] = list(values.get("regions") or [])
        values["tags"] = list(values.get("tags") or [])
        return cls(**values)

    @property
    def price_from(self) -> int | None:
        if self.pricing_mode == "packaged":
            return min((p.price for p in self.packages), default=None)
        if self.pricing_mode == "financial":
            return self.service_fee if self.service_fee is not None else 0
        return None


_SCALARS = ("category_id", "title", "summary", "description", "regions", "tags",
            "delivery_days", "voucher_eligible", "pricing_mode", "quote_brief", "amount_min",
            "amount_max", "rate_min_bp", "rate_max_bp", "term_min_months", "term_max_months",
            "service_fee")
_MODE_FIELDS = {
    "packaged": (),
    "quote": ("quote_brief",),
    "financial": ("amount_min", "amount_max", "rate_min_bp", "rate_max_bp", "term_min_months",
                  "term_max_months", "service_fee"),
}


def read_product(product: Product) -> ListingData:
    """The listing's current (public, for a published one) content as a snapshot."""
    values = {name: getattr(product, name) for name in _SCALARS}
    values["regions"] = list(product.regions or [])
    values["tags"] = list(product.tags or [])
    values["voucher_eligible"] = bool(product.voucher_eligible)
    packages = [PackageData(p.name, p.price, p.delivery_days, p.deliverables or "")
                for p in sorted(product.packages, key=lambda p: p.position)]
    return ListingData(packages=packages if product.pricing_mode == "packaged" else [], **values)


def write_product(product: Product, data: ListingData) -> None:
    """Copy a snapshot onto the product and its packages (the only writer of listing content).

    Packages are updated in place by position, so their ids stay stable for orders.
    """
    for name in _SCALARS:
        setattr(product, name, getattr(data, name))
    product.regions = list(data.regions)
    product.tags = list(data.tags)
    # Fields of the other pricing modes are cleared, so nothing stale is ever shown.
    for mode, names in _MODE_FIELDS.items():
        if mode != data.pricing_mode:
            for name in names:
                setattr(product, name, None)
    wanted = data.packages if data.pricing_mode == "packaged" else []
    existing = sorted(product.packages, key=lambda p: p.position)
    for position, package in enumerate(wanted):
        if position < len(existing):
            row = existing[position]
        else:
            row = Package(position=position)
            product.packages.append(row)
        row.position = position
        row.name, row.price = package.name, package.price
        row.delivery_days, row.deliverables = package.delivery_days, package.deliverables
    for row in existing[len(wanted):]:
        product.packages.remove(row)
    if data.pricing_mode == "packaged" and data.delivery_days is None and wanted:
        product.delivery_days = min(p.delivery_days for p in wanted)
    product.price_from = data.price_from


# --------------------------------------------------------------------------- validation

def parse_tags(text: str | list | None) -> list[str]:
    """Comma-separated tags (either comma, 中文逗号 too), trimmed, de-duplicated, at most 10."""
    raw = text if isinstance(text, list) else re.split(r"[,，、;；]", text or "")
    tags: list[str] = []
    seen: set[str] = set()
    for tag in raw:
        tag = " ".join(str(tag).split()).lstrip("#")
        if not tag:
            continue
        if len(tag) > MAX_TAG_LENGTH:
            raise RuleError(_("Tags are at most %(max)d characters: “%(tag)s…” is too long.",
                              max=MAX_TAG_LENGTH, tag=tag[:40]), field="tags")
        if tag.casefold() not in seen:
            seen.add(tag.casefold())
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise RuleError(_("Use at most %(max)d tags (you gave %(count)d).", max=MAX_TAGS,
                          count=len(tags)), field="tags")
    return tags


def subcategory_choices(session: Session) -> list[tuple[str, list[tuple[int, str]]]]:
    """Sub-categories grouped under their top-level category, for the category select."""
    tops = session.scalars(select(Category).where(Category.parent_id.is_(None))
                           .options(selectinload(Category.children))
                           .order_by(Category.position, Category.id))
    return [(local_name(top), [(child.id, local_name(child)) for child in top.children])
            for top in tops]


def validate(session: Session, data: ListingData) -> ListingData:
    """The invariants of a listing; raises RuleError naming the field. Returns ``data``."""
    category = session.get(Category, data.category_id) if data.category_id else None
    if category is None or category.parent_id is None:
        raise RuleError(_("Choose a sub-category (for example “Patent application”)."),
                        field="category_id")
    data.title = " ".join((data.title or "").split())
    data.summary = " ".join((data.summary or "").split())
    if not 5 <= len(data.title) <= 200:
        raise RuleError(_("The title needs 5 to 200 characters."), field="title")
    if not 10 <= len(data.summary) <= 500:
        raise RuleError(_("The summary needs 10 to 500 characters."), field="summary")
    if len(data.description or "") > MAX_DESCRIPTION:
        raise RuleError(_("The description is limited to %(max)s characters.",
                          max=format(MAX_DESCRIPTION, ",")), field="description")
    if not data.regions or any(r not in reference.REGION_LABELS for r in data.regions):
        raise RuleError(_("Choose at least one region you serve from the list."), field="regions")
    data.regions = [code for code, _en, _zh in reference.REGIONS if code in data.regions]
    data.tags = parse_tags(data.tags)
    if data.delivery_days is not None and not 1 <= data.delivery_days <= 730:
        raise RuleError(_("Delivery time is 1 to 730 days."), field="delivery_days")
    if data.pricing_mode not in PRICING_MODES:
        raise RuleError(_("Choose how the service is priced."), field="pricing_mode")
    if data.pricing_mode == "packaged":
        _validate_packages(data.packages)
    elif data.pricing_mode == "quote":
        if len((data.quote_brief or "").strip()) < 10:
            raise RuleError(_("Tell buyers what they must describe to get a quote (at least a "
                              "sentence)."), field="quote_brief")
    else:
        _validate_financial(data)
    return data


def _validate_packages(packages: list[PackageData]) -> None:
    if not 1 <= len(packages) <= MAX_PACKAGES:
        raise RuleError(_("A packaged listing has one to three packages."), field="packages")
    names = [p.name.strip().casefold() for p in packages]
    if any(not name for name in names):
        raise RuleError(_("Every package needs a name, like “Basic” or “Standard”."), field="packages")
    if len(set(names)) != len(names):
        raise RuleError(_("Give each package a different name."), field="packages")
    for package in packages:
        if package.price <= 0:
            raise RuleError(_("Package “%(name)s” needs a price above zero.", name=package.name),
                            field="packages")
        if not 1 <= package.delivery_days <= 730:
            raise RuleError(_("Package “%(name)s”: delivery time is 1 to 730 days.",
                              name=package.name), field="packages")


def _validate_financial(data: ListingData) -> None:
    def pair(low, high, missing, reversed_, field_name):
        if low is None or high is None:
            raise RuleError(missing, field=field_name)
        if low > high:
            raise RuleError(reversed_, field=field_name)

    pair(data.amount_min, data.amount_max, _("Give the amount range (from and to)."),
         _("The amount range starts above where it ends."), "amount_min")
    if data.amount_min <= 0:
        raise RuleError(_("The smallest amount must be above zero."), field="amount_min")
    pair(data.rate_min_bp, data.rate_max_bp, _("Give the rate range (from and to)."),
         _("The rate range starts above where it ends."), "rate_min")
    if data.rate_max_bp > 10_000:
        raise RuleError(_("Rates are percentages between 0 and 100."), field="rate_min")
    pair(data.term_min_months, data.term_max_months, _("Give the term range (from and to)."),
         _("The term range starts above where it ends."), "term_min_months")
    if data.term_min_months < 1 or data.term_max_months > 600:
        raise RuleError(_("Terms are 1 to 600 months."), field="term_min_months")
    if data.service_fee is None or data.service_fee < 0:
        raise RuleError(_("Give the service fee (zero is allowed)."), field="service_fee")


# --------------------------------------------------------------------------- guards & lookups

def require_manager(user, product: Product) -> None:
    if not can_manage_institution(user, product.provider):
        raise PermissionDenied(_("Only members of the listing's institution can do that."))


def require_staff(user) -> None:
    if not has_role(user, "staff"):
        raise PermissionDenied(_("Only platform staff can do that."))


def open_revision(session: Session, product: Product) -> ProductRevision | None:
    return session.scalar(
        select(ProductRevision)
        .where(ProductRevision.product_id == product.id, ProductRevision.status.in_(OPEN_REVISION))
        .order_by(ProductRevision.id.desc()).limit(1))


def latest_revision(session: Session, product: Product) -> ProductRevision | None:
    return session.scalar(select(ProductRevision).where(ProductRevision.product_id == product.id)
                          .order_by(ProductRevision.id.desc()).limit(1))


@dataclass
class Workspace:
    """What the edit page shows: the data to edit and where it came from."""

    data: ListingData
    revision: ProductRevision | None  # the open change of a published listing
    rejected: ProductRevision | None  # the latest change, if staff rejected it

    @property
    def locked_reason(self) -> str | None:
        if self.revision is not None and self.revision.status == "pending":
            return _("Your change is waiting for staff review. Withdraw it to edit again.")
        return None


def workspace(session: Session, product: Product) -> Workspace:
    latest = latest_revision(session, product) if product.published_at else None
    if latest is not None and latest.status in OPEN_REVISION:
        return Workspace(ListingData.from_dict(latest.data), latest, None)
    if latest is not None and latest.status == "rejected" and product.status == "published":
        return Workspace(ListingData.from_dict(latest.data), None, latest)
    return Workspace(read_product(product), None, None)


def _require_can_publish(org: Organisation) -> None:
    if not org.is_verified:
        raise RuleError(_("Your institution must be verified by platform staff before its "
                          "listings can be submitted. Complete and submit your institution "
                          "application first."))
    if org.suspended:
        raise RuleError(_("Your institution is suspended, so its listings cannot be submitted "
                          "or published. Contact platform staff."))


# --------------------------------------------------------------------------- institution actions

def create_listing(session: Session, user, org: Organisation, data: ListingData) -> Product:
    """A new draft. Institutions may prepare drafts before they are verified."""
    if not can_manage_institution(user, org):
        raise PermissionDenied(_("Only members of this institution can create its listings."))
    validate(session, data)
    product = Product(provider_id=org.id, status="draft", currency="CNY",
                      **{name: getattr(data, name) for name in ("category_id", "title", "summary",
                                                                "pricing_mode")})
    product.provider = org
    write_product(product, data)
    session.add(product)
    session.flush()
    audit.record(session, user, "listing.create", product)
    return product


def save_listing(session: Session, user, product: Product, data: ListingData) -> str:
    """Save an edit. Returns "draft" (edited in place), "revision" (a change to a published
    listing kept aside until approved) or "unchanged"."""
    require_manager(user, product)
    validate(session, data)
    if product.status == "draft":
        write_product(product, data)
        session.flush()
        return "draft"
    if product.status == "pending_review":
        raise RuleError(_("This listing is waiting for staff review. Withdraw it to make changes."))
    if product.status != "published":
        raise RuleError(_("An archived listing cannot be edited. Restore it as a draft first.")
                        if product.status == "archived" else
                        _("A suspended listing cannot be edited. Contact platform staff."))
    revision = open_revision(session, product)
    if revision is not None and revision.status == "pending":
        raise RuleError(_("Your change is waiting for staff review. Withdraw it to edit again."))
    if data.to_dict() == read_product(product).to_dict():
        if revision is not None:
            revision.status = "withdrawn"
            session.flush()
        return "unchanged"
    if revision is None:
        revision = ProductRevision(product_id=product.id, status="draft", created_by_id=user.id)
        session.add(revision)
    revision.data = data.to_dict()
    session.flush()
    return "revision"


def submit(session: Session, user, product: Product) -> str:
    """Send a draft listing, or the open change of a published one, to moderation."""
    require_manager(user, product)
    _require_can_publish(product.provider)
    if product.status == "draft":
        validate(session, read_product(product))
        advance(session, product, "status", ("draft",), _("This listing was already submitted."),
                status="pending_review", rejection_reason=None)
        audit.record(session, user, "listing.submit", product)
        kind = "listing"
    elif product.status == "published":
        revision = open_revision(session, product)
        if revision is None or revision.status != "draft":
            raise RuleError(_("There is no saved change to submit. Edit the listing first."))
        validate(session, ListingData.from_dict(revision.data))
        advance(session, revision, "status", ("draft",), _("This change was already submitted."),
                status="pending", submitted_at=utcnow(), reason=None)
        audit.record(session, user, "listing.submit_change", product, revision_id=revision.id)
        kind = "change"
    else:
        raise RuleError(_("Only drafts and changes to published listings can be submitted."))
    for member in session.scalars(permissions.staff_users()):
        notifications.notify(session, member, "moderation.submitted",
                             _l("Listing to review: %(title)s", title=product.title),
                             _l("%(name)s submitted a new listing.", name=product.provider.name)
                             if kind == "listing" else
                             _l("%(name)s submitted a change to a listing.",
                                name=product.provider.name),
                             link=links.staff_moderation(product.id), email=False)
    return kind


def withdraw(session: Session, user, product: Product) -> None:
    """Take a submission back from moderation (the listing or change returns to draft)."""
    require_manager(user, product)
    if product.status == "pending_review":
        advance(session, product, "status", ("pending_review",),
                _("This listing is no longer waiting for review."), status="draft")
        audit.record(session, user, "listing.withdraw", product)
        return
    revision = open_revision(session, product)
    if revision is None or revision.status != "pending":
        raise RuleError(_("Nothing of this listing is waiting for review."))
    advance(session, revision, "status", ("pending",), _("This change is no longer waiting for review."),
            status="draft", submitted_at=None)
    audit.record(session, user, "listing.withdraw", product, revision_id=revision.id)


def discard_change(session: Session, user, product: Product) -> None:
    """Drop the proposed change of a published listing; the public version stays."""
    require_manager(user, product)
    latest = latest_revision(session, product)
    if latest is None or latest.status not in ("draft", "pending", "rejected"):
        raise RuleError(_("There is no change to discard."))
    advance(session, latest, "status", ("draft", "pending", "rejected"),
            _("This change was decided in the meantime."), status="withdrawn")
    audit.record(session, user, "listing.discard_change", product, revision_id=latest.id)


def archive(session: Session, user, product: Product) -> None:
    require_manager(user, product)
    was_public = product.status == "published"
    advance(session, product, "status", ("draft", "pending_review", "published", "suspended"),
            _("This listing is already archived."), status="archived")
    for revision in session.scalars(select(ProductRevision).where(
            ProductRevision.product_id == product.id, ProductRevision.status.in_(OPEN_REVISION))):
        revision.status = "withdrawn"
    audit.record(session, user, "listing.archive", product)
    if was_public:
        search_outbox.enqueue(session, product.id, "archived")
    session.flush()


def restore(session: Session, user, product: Product) -> None:
    require_manager(user, product)
    advance(session, product, "status", ("archived",), _("Only archived listings can be restored."),
            status="draft")
    audit.record(session, user, "listing.restore", product)


def duplicate(session: Session, user, product: Product) -> Product:
    """A new draft with the same content (the working version, including an unsaved change)."""
    require_manager(user, product)
    data = workspace(session, product).data
    data.title = _("Copy of %(title)s", title=data.title)[:200]
    copy = Product(provider_id=product.provider_id, status="draft", currency=product.currency,
                   category_id=data.category_id, title=data.title, summary=data.summary,
                   pricing_mode=data.pricing_mode)
    copy.provider = product.provider
    write_product(copy, data)
    session.add(copy)
    session.flush()
    audit.record(session, user, "listing.duplicate", copy, source_id=product.id)
    return copy


# --------------------------------------------------------------------------- moderation (staff)

@dataclass
class ModerationItem:
    product: Product
    revision: ProductRevision | None  # None: a new listing (pending_review)

    @property
    def submitted_at(self):
        if self.revision is not None:
            return self.revision.submitted_at or self.revision.created_at
        return self.product.updated_at

    @property
    def kind(self) -> str:
        return "change" if self.revision else "new"

    @property
    def proposed(self) -> ListingData:
        return ListingData.from_dict(self.revision.data) if self.revision else read_product(
            self.product)

    @property
    def published(self) -> ListingData | None:
        return read_product(self.product) if self.revision else None


def moderation_queue(session: Session, *, page: int = 1, page_size: int = 24) -> Page:
    """One page of what waits for review, new listings and changes to published ones
    together, the longest-waiting first. Items are ModerationItems, loaded with what the
    queue shows, in a fixed number of queries."""
    waiting = union_all(
        select(literal("new").label("kind"), Product.id.label("product_id"),
               null().label("revision_id"), Product.updated_at.label("submitted_at"))
        .where(Product.status == "pending_review"),
        select(literal("change"), ProductRevision.product_id, ProductRevision.id,
               func.coalesce(ProductRevision.submitted_at, ProductRevision.created_at))
        .where(ProductRevision.status == "pending"),
    ).subquery()
    rows = paginate(session, select(waiting.c.product_id, waiting.c.revision_id)
                    .order_by(waiting.c.submitted_at, waiting.c.product_id, waiting.c.kind),
                    page, page_size, scalars=False)
    products = {p.id: p for p in session.scalars(
        select(Product).where(Product.id.in_({row.product_id for row in rows.items}))
        .options(joinedload(Product.provider), joinedload(Product.category),
                 selectinload(Product.packages)))} if rows.items else {}
    revision_ids = {row.revision_id for row in rows.items if row.revision_id is not None}
    revisions = {r.id: r for r in session.scalars(
        select(ProductRevision).where(ProductRevision.id.in_(revision_ids)))} if revision_ids \
        else {}
    rows.items = [ModerationItem(products[row.product_id], revisions.get(row.revision_id))
                  for row in rows.items]
    return rows


def suspended_listings(session: Session, *, page: int = 1, page_size: int = 24) -> Page:
    """One page of the listings staff have suspended, the latest first."""
    return paginate(session, select(Product).where(Product.status == "suspended")
                    .options(joinedload(Product.provider))
                    .order_by(Product.updated_at.desc(), Product.id.desc()), page, page_size)


def pending_item(session: Session, product: Product) -> ModerationItem | None:
    if product.status == "pending_review":
        return ModerationItem(product, None)
    revision = open_revision(session, product)
    if revision is not None and revision.status == "pending":
        return ModerationItem(product, revision)
    return None


def _require_pending(session: Session, product: Product) -> ModerationItem:
    item = pending_item(session, product)
    if item is None:
        raise RuleError(_("Nothing of this listing is waiting for review (it may have been "
                          "withdrawn or decided by someone else)."))
    return item


def approve(session: Session, staff, product: Product, note: str | None = None) -> ModerationItem:
    require_staff(staff)
    note = (note or "").strip()[:2000] or None
    item = _require_pending(session, product)
    org = product.provider
    if not permissions.is_listed_provider(org):
        raise RuleError(f"{org.name} is not verified or is suspended, so its listings cannot be "
                        "published.")
    now = utcnow()
    if item.revision is None:
        validate(session, read_product(product))
        advance(session, product, "status", ("pending_review",),
                _("This listing is no longer waiting for review."),
                status="published", published_at=now, rejection_reason=None)
        audit.record(session, staff, "listing.approve", product, reason=note)
        search_outbox.enqueue(session, product.id, "published")
        title, body = (_l("Listing published: %(title)s", title=product.title),
                       _l("Platform staff approved your listing; it is now visible in the "
                          "supermarket."))
    else:
        data = validate(session, ListingData.from_dict(item.revision.data))
        advance(session, item.revision, "status", ("pending",),
                _("This change is no longer waiting for review."),
                status="approved", decided_by_id=staff.id, decided_at=now)
        write_product(product, data)
        audit.record(session, staff, "listing.approve_change", product, reason=note,
                     revision_id=item.revision.id)
        search_outbox.enqueue(session, product.id, "revision_approved")
        title, body = (_l("Change approved: %(title)s", title=product.title),
                       _l("Platform staff approved your change; the public page shows it now."))
    session.flush()
    notifications.notify_organisation(session, org, "moderation.approved", title,
                                      lambda: str(body) + notifications.staff_note(note),
                                      link=links.product_page(product.id))
    return item


def reject(session: Session, staff, product: Product, reason: str) -> ModerationItem:
    require_staff(staff)
    reason = (reason or "").strip()
    if len(reason) < 5:
        raise RuleError(_("Give a reason for the rejection: the institution will see it."),
                        field="reason")
    item = _require_pending(session, product)
    if item.revision is None:
        advance(session, product, "status", ("pending_review",),
                _("This listing is no longer waiting for review."),
                status="draft", rejection_reason=reason)
        audit.record(session, staff, "listing.reject", product, reason=reason)
        title = _l("Listing not approved: %(title)s", title=product.title)
        body = _l("It is back in your drafts. Reason: %(reason)s", reason=reason)
    else:
        advance(session, item.revision, "status", ("pending",),
                _("This change is no longer waiting for review."),
                status="rejected", reason=reason, decided_by_id=staff.id, decided_at=utcnow())
        audit.record(session, staff, "listing.reject_change", product, reason=reason,
                     revision_id=item.revision.id)
        title = _l("Change not approved: %(title)s", title=product.title)
        body = _l("The public page keeps the previous version. Reason: %(reason)s", reason=reason)
    notifications.notify_organisation(session, product.provider, "moderation.rejected", title,
                                      body, link=links.listing_edit(product.id))
    return item


def suspend_listing(session: Session, staff, product: Product, reason: str) -> None:
    """Hide one published listing. The reason is kept in ``rejection_reason`` for the owner."""
    require_staff(staff)
    reason = (reason or "").strip()
    if len(reason) < 5:
        raise RuleError(_("Give a reason for the suspension: the institution will see it."),
                        field="reason")
    advance(session, product, "status", ("published",), _("Only a published listing can be suspended."),
            status="suspended", rejection_reason=reason)
    audit.record(session, staff, "listing.suspend", product, reason=reason)
    search_outbox.enqueue(session, product.id, "suspended")
    notifications.notify_organisation(
        session, product.provider, "moderation.suspended",
        _l("Listing suspended: %(title)s", title=product.title),
        _l("Platform staff have hidden this listing. Reason: %(reason)s", reason=reason),
        link=links.listing_edit(product.id))


def reinstate_listing(session: Session, staff, product: Product, note: str | None = None) -> None:
    require_staff(staff)
    advance(session, product, "status", ("suspended",),
            _("Only a suspended listing can be reinstated."),
            status="published", rejection_reason=None)
    audit.record(session, staff, "listing.reinstate", product, reason=(note or "").strip() or None)
    search_outbox.enqueue(session, product.id, "reinstated")
    notifications.notify_organisation(
        session, product.provider, "moderation.reinstated",
        _l("Listing reinstated: %(title)s", title=product.title),
        _l("Platform staff have restored this listing."), link=links.product_page(product.id))


def history(session: Session, product: Product) -> list[AuditLog]:
    return list(session.scalars(
        select(AuditLog).where(AuditLog.target_type == "product", AuditLog.target_id == product.id)
        .options(selectinload(AuditLog.actor))
        .order_by(AuditLog.created_at.desc(), AuditLog.id.desc())))


# --------------------------------------------------------------------------- the diff

@dataclass
class FieldChange:
    label: str
    kind: str  # "text": inline diff segments; "value": old → new
    old: str
    new: str
    segments: list[tuple[str, str]] = field(default_factory=list)  # (equal|insert|delete, text)

    @property
    def changed(self) -> bool:
        return self.old != self.new


_TOKEN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|\s+|[^\s\u3400-\u9fff\uf900-\ufaff]+")


def text_segments(old: str, new: str) -> list[tuple[str, str]]:
    """A word-level diff (character-level for Chinese) of two texts, with difflib."""
    a, b = _TOKEN.findall(old or ""), _TOKEN.findall(new or "")
    segments: list[tuple[str, str]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            segments.append(("equal", "".join(a[i1:i2])))
            continue
        if tag in ("delete", "replace"):
            segments.append(("delete", "".join(a[i1:i2])))
        if tag in ("insert", "replace"):
            segments.append(("insert", "".join(b[j1:j2])))
    return segments


def _money(amount: int | None) -> str:
    return "—" if amount is None else format_amount(amount, "CNY")


def _range(low, high, fmt) -> str:
    if low is None and high is None:
        return "—"
    return f"{fmt(low)} – {fmt(high)}"


def _package_text(packages: list[PackageData]) -> str:
    lines = []
    for package in packages:
        lines.append(_("%(name)s: %(price)s, %(days)d days", name=package.name,
                       price=_money(package.price), days=package.delivery_days))
        lines.extend(f"  • {line.strip()}" for line in package.deliverables.splitlines()
                     if line.strip())
    return "\n".join(lines)


def _locale() -> str:
    """The language gettext uses right now (the viewer's, or a recipient's under
    force_locale), so names and labels of one text agree."""
    return str(get_locale() or "")


def _category_path(category: Category) -> str:
    """"Parent › Child" in the current language."""
    locale = _locale()
    names = [local_name(category.parent, locale)] if category.parent is not None else []
    return " › ".join([*names, local_name(category, locale)])


def _region(code: str) -> str:
    for region, en, zh in reference.REGIONS:
        if region == code:
            return local_text(en, zh, _locale())
    return code


def display_values(session: Session, data: ListingData) -> list[tuple[str, str, str]]:
    """(label, kind, display text) for every field of a snapshot, in page order."""
    category = session.get(Category, data.category_id)
    rows = [
        (_("Title"), "text", data.title),
        (_("Category"), "value", _category_path(category) if category else "—"),
        (_("Summary"), "text", data.summary),
        (_("Description (Markdown)"), "text", data.description or ""),
        (_("Regions"), "value", ", ".join(_region(r) for r in data.regions)),
        (_("Tags"), "value", ", ".join(data.tags) or "—"),
        (_("Delivery time"), "value",
         _("%(days)d days", days=data.delivery_days) if data.delivery_days else "—"),
        (_("Innovation vouchers"), "value",
         _("Vouchers accepted") if data.voucher_eligible else _("Vouchers not accepted")),
        (_("Pricing"), "value", str(MODE_LABELS.get(data.pricing_mode, data.pricing_mode))),
    ]
    if data.pricing_mode == "packaged":
        rows.append((_("Packages"), "text", _package_text(data.packages)))
    elif data.pricing_mode == "quote":
        rows.append((_("What the buyer must describe"), "text", data.quote_brief or ""))
    else:
        rows += [
            (_("Amount"), "value", _range(data.amount_min, data.amount_max, _money)),
            (_("Annual rate"), "value", _range(data.rate_min_bp, data.rate_max_bp,
                                            lambda bp: "—" if bp is None else format_rate(bp))),
            (_("Term"), "value", _range(data.term_min_months, data.term_max_months,
                                        lambda m: "—" if m is None else _("%(num)d months",
                                                                          num=m))),
            (_("Service fee"), "value", _money(data.service_fee)),
        ]
    return rows


def diff(session: Session, old: ListingData | None, new: ListingData) -> list[FieldChange]:
    """Field-by-field comparison of a proposal against the published version (or nothing)."""
    before = {label: text for label, _kind, text in display_values(session, old)} if old else {}
    changes = []
    for label, kind, text in display_values(session, new):
        previous = before.pop(label, "")
        change = FieldChange(label, kind, previous, text)
        if kind == "text" and old is not None:
            change.segments = text_segments(previous, text)
        changes.append(change)
    # Fields that only the old version had (the pricing mode changed).
    changes += [FieldChange(label, "value", text, "") for label, text in before.items()]
    return changes


# --------------------------------------------------------------------------- the dashboard

@dataclass
class Dashboard:
    by_status: dict[str, list[Product]]
    revisions: dict[int, ProductRevision]  # product id → open or rejected change
    to_fix: list[tuple[Product, str]]  # (listing, staff reason)

    @property
    def total(self) -> int:
        return sum(len(items) for items in self.by_status.values())

    @property
    def views(self) -> int:
        return sum(p.view_count for items in self.by_status.values() for p in items)

    @property
    def favourites(self) -> int:
        return sum(p.favourite_count for items in self.by_status.values() for p in items)


def dashboard(session: Session, org: Organisation) -> Dashboard:
    products = list(session.scalars(
        select(Product).where(Product.provider_id == org.id)
        .options(selectinload(Product.category))
        .order_by(Product.updated_at.desc(), Product.id.desc())))
    by_status: dict[str, list[Product]] = {status: [] for status in STATUS_LABELS}
    for product in products:
        by_status[product.status].append(product)
    latest_ids = (select(func.max(ProductRevision.id))
                  .join(Product, Product.id == ProductRevision.product_id)
                  .where(Product.provider_id == org.id)
                  .group_by(ProductRevision.product_id))
    revisions = {r.product_id: r for r in session.scalars(
        select(ProductRevision).where(ProductRevision.id.in_(latest_ids),
                                      ProductRevision.status.in_(("draft", "pending", "rejected"))))}
    to_fix = [(p, p.rejection_reason) for p in by_status["draft"] if p.rejection_reason]
    to_fix += [(p, p.rejection_reason or "") for p in by_status["suspended"]]
    to_fix += [(r.product, r.reason or "") for r in revisions.values()
               if r.status == "rejected" and r.product.status == "published"]
    return Dashboard(by_status, revisions, to_fix)


def parse_percent(text: str) -> int:
    """"3.85" (percent) → 385 basis points; at most two decimals."""
    message = _("Enter a percentage with at most two decimals, like 3.85.")
    raw = (text or "").strip().rstrip("%").strip()
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ValueError(message) from None
    if not value.is_finite() or value < 0:
        raise ValueError(message)
    scaled = value.scaleb(2)
    if scaled != scaled.to_integral_value():
        raise ValueError(message)
    return int(scaled)
