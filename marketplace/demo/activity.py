"""Demo activity: about nine months of trade among the demo organisations.

``load_demo_activity(session, now=..., seed=..., orders=...)`` runs after the demo
supermarket (``marketplace.demo.catalogue``) and the demo vouchers are loaded, and gives the monitors'
console, the ratings and the buyers' and institutions' order pages something to show:
a few hundred orders in every state of the workflow, in all three pricing modes (packages,
accepted quotes, financial applications), paid by corporate bank transfer and innovation
vouchers, with milestones, progress updates, messages, disputes and rulings, two-way
reviews with a few replies, monthly settlement batches (all paid but the last month's),
and credibility histories.

Everything is made through the real services (cart and checkout, quotes, payments and the
ledger, ``orders.workflow.transition``, milestones and progress, messages, reviews,
settlement, the order timers), so every ledger posting is the one production would make.
The history is played as a discrete-event simulation: each order is a story (a generator
that yields the moment of its next step); all steps of all stories, the daily run of the
order timers (auto-decline, auto-complete, unpaid cancellation, quote expiry, publication
of reviews after the blind window) and the monthly settlement run are executed in
chronological order, with the process clock moved to each step's moment by ``time-machine``
so that every timestamp the services write (events, payments, ledger entries, notifications,
audit rows, credibility snapshots) is the historical one and consistent with the others.

Deterministic: the same ``seed`` and ``now`` on the same demo give the same orders, numbers
and amounts (every choice comes from ``random.Random(seed)``; voucher codes and password
hashes are random by design and are not part of that promise).
"""

import heapq
import random
import time
from collections import Counter
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import time_machine
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, selectinload

from catalog import reviews
from catalog.models import Package, Product, Review
from catalog.search import outbox as search_outbox
from catalog.services import visible_products_condition
from marketplace.demo.catalogue import BUYER_EMAIL, PROVIDER_EMAIL, STAFF_EMAIL
from marketplace.models import Notification, Organisation, User
from orders import (
    cart,
    checkout,
    ledger,
    paperwork_demo,
    payments,
    quotes,
    services,
    settlement,
    states,
    timers,
    vouchers,
)
from orders import milestones as milestone_flow
from orders.models import (
    Order,
    Quote,
    QuoteRequest,
    SettlementBatch,
    SettlementStatement,
    Voucher,
)
from orders.money import apply_rate
from providers.credibility import recompute_all

DEFAULT_SEED = 20261124
DEFAULT_ORDERS = 300
HISTORY_DAYS = 270  # about nine months
CURRENCY = "CNY"
TIMER_HOUR = 2  # the order timers run every night at 02:00 UTC (cron)
AUTO_COMPLETE_DAYS = 7

# Final state each story aims at -> weight among the orders of the past (closed) ...
CLOSED_FATES = {
    "completed": 64, "revision": 5, "auto_complete": 4, "buyer_review_missing": 4,
    "declined": 4, "declined_auto": 2, "cancelled_unpaid": 3, "cancelled_buyer": 3,
    "cancelled_staff": 2, "resolved_full": 2, "resolved_partial": 3, "resolved_none": 2,
    "quote_declined": 2,
}
# ... and the share of all orders still open at ``now``.
OPEN_FATES = {
    "pending_payment": 0.03, "paid": 0.03, "accepted": 0.02, "in_progress": 0.05,
    "overdue": 0.025, "at_risk": 0.02, "delivered": 0.03, "disputed": 0.006,
    "quote_open": 0.01,
}
MODE_WEIGHTS = {"packaged": 62, "quote": 23, "financial": 15}

NEEDS = [
    "We need this for our new product line; please confirm the documents you need from us.",
    "Our high-tech enterprise renewal is due this year, so timing matters.",
    "我们正在准备科技型中小企业评价材料，希望尽快启动。",
    "Please coordinate with our R&D manager, Ms. Chen, for technical questions.",
    "We would like a short kick-off call in the first week.",
    "需要配合我司年度研发项目申报，请提前告知所需资料清单。",
    "The work supports a customer audit next quarter; a bilingual report is preferred.",
]
BUYER_MESSAGES = [
    "Thank you. We uploaded the technical disclosure to our shared folder; what else do you need?",
    "您好，资料已经整理好，请问什么时候方便电话沟通？",
    "Could you confirm the expected timeline for the first draft?",
    "Our finance team asks for the invoice details; please send them with the delivery.",
]
PROVIDER_MESSAGES = [
    "Received, thank you. Our consultant will call you tomorrow morning.",
    "收到，我们的项目经理会在两个工作日内与您联系。",
    "The first draft is on schedule; we will share it for comments by Friday.",
    "We need the last three years' R&D expense ledger to continue.",
]
PROGRESS_NOTES = [  # by stage of the work: under 25%, 50%, 75%, then the rest
    ["Kick-off meeting held; materials received and checked.", "项目启动会已召开，资料已收齐并完成初审。"],
    ["Search and analysis under way; first findings shared by e-mail.", "检索与分析进行中，初步结论已邮件发送。"],
    ["Draft shared with the client for comments.", "报告初稿已提交客户征求意见。"],
    ["Comments incorporated; final review by the senior consultant.", "已根据意见修改，正在终审。"],
]
DELIVERY_NOTES = [
    "Final report delivered as agreed, with the supporting documents.",
    "正式报告及附件已交付，请查收。",
    "Delivered: the filing receipts and the summary memo.",
]
DECLINE_REASONS = [
    "Our team is fully booked this month; we cannot meet the timeline.",
    "This request is outside our licensed scope of business.",
    "经评估，贵司目前条件暂不符合本产品的准入要求。",
]
DISPUTE_REASONS = [
    "The delivered report misses the analysis promised in the package.",
    "交付物与约定内容不符，缺少检测报告原件。",
    "The delivery was three weeks late and incomplete.",
]
RULING_NOTES = {
    "full": "The service was not delivered as described; the buyer gets everything back.",
    "partial": "Part of the work was delivered and usable; the rest is refunded.",
    "none": "The delivery matches the package description; no refund.",
}
CANCEL_REASONS = [
    "Our budget for this quarter was cut; we will order again later.",
    "Ordered twice by mistake.",
    "项目计划调整，暂不需要该服务。",
]
STAFF_CANCEL_REASONS = [
    "The institution and the buyer agreed to end the engagement; cancelled on their request.",
]
BUYER_REVIEWS = {
    5: ["Excellent work, clear communication and delivered ahead of schedule.",
        "专业、高效，报告质量很高，推荐！", "Very thorough; they understood our technology."],
    4: ["Good result, a few days late but kept us informed.", "服务不错，沟通及时。",
        "Solid work; the report could be more concise."],
    3: ["Acceptable, but we had to chase them for updates.", "质量一般，交付时间偏长。"],
    2: ["The first draft was weak and needed two rounds of corrections."],
    1: ["Disappointing: late, and the result did not match the description."],
}
PROVIDER_REVIEWS = [
    "Clear requirements and quick feedback; a pleasure to work with.",
    "需求明确，配合积极，付款及时。",
    "Materials arrived late, but the team was cooperative.",
    "",
]
REPLIES = [
    "Thank you for the kind words; we look forward to working with you again.",
    "感谢您的评价，我们会继续提升服务质量。",
    "We are sorry about the delay and have changed our scheduling to avoid it.",
]


class ActivityError(RuntimeError):
    """The demo activity cannot be loaded; the message says why."""


@dataclass
class ActivityReport:
    orders_by_status: Counter = field(default_factory=Counter)
    reviews: int = 0
    replies: int = 0
    quote_requests: int = 0
    batches: int = 0
    batches_paid: int = 0
    invoices: int = 0  # 发票 requested (orders/paperwork_demo.py)
    seconds: float = 0.0
    skipped: bool = False

    def summary(self) -> str:
        if self.skipped:
            return "Demo activity: orders already exist; nothing loaded."
        states = ", ".join(f"{status} {count}" for status, count
                           in sorted(self.orders_by_status.items()))
        return (f"Demo activity: {sum(self.orders_by_status.values())} orders ({states}); "
                f"{self.quote_requests} quote requests; {self.reviews} reviews "
                f"({self.replies} replies); {self.batches} settlement batches "
                f"({self.batches_paid} paid); {self.seconds:.1f} s.")


# --------------------------------------------------------------------------- the cast

@dataclass(frozen=True)
class _Who:
    """A login by id (ORM objects are fetched when a step runs, so the session stays small)."""

    id: int
    organisation_id: int


@dataclass
class _Cast:
    staff_id: int
    admin_id: int
    demo_buyer: _Who | None
    demo_provider: _Who | None
    buyers: list[_Who]  # enterprise owners who trade
    provider_users: dict[int, _Who]  # institution id -> its owner
    products: dict[str, list]  # pricing mode -> visible listings (rows)
    packages: dict[int, list]  # listing id -> its packages (rows)


def _first_users(session: Session, role: str) -> dict[int, _Who]:
    users: dict[int, _Who] = {}
    for user_id, org_id in session.execute(
            select(User.id, User.organisation_id).where(
                User.role == role, User.active.is_(True), User.organisation_id.is_not(None))
            .order_by(User.id)):
        users.setdefault(org_id, _Who(user_id, org_id))
    return users


def _cast(session: Session, rng: random.Random) -> _Cast:
    by_email = {row.email: row for row in session.execute(
        select(User.id, User.email, User.organisation_id).where(
            User.email.in_((BUYER_EMAIL, PROVIDER_EMAIL, STAFF_EMAIL))))}
    staff_id = by_email[STAFF_EMAIL].id if STAFF_EMAIL in by_email else session.scalar(
        select(User.id).where(User.role == "staff").order_by(User.id))
    admin_id = session.scalar(select(User.id).where(User.role == "admin").order_by(User.id))
    if staff_id is None or admin_id is None:
        raise ActivityError("No staff and admin accounts: load the demo first (load-demo).")
    enterprise_owners = _first_users(session, "enterprise")
    listed = session.scalars(
        select(Organisation.id).where(Organisation.kind == "enterprise",
                                      Organisation.suspended.is_(False))
        .order_by(Organisation.id)).all()
    listed = [org_id for org_id in listed if org_id in enterprise_owners]
    if not listed:
        raise ActivityError("No enterprises to buy: load the demo first (load-demo).")
    pool = rng.sample(listed, min(len(listed), 320))
    buyers = [enterprise_owners[org_id] for org_id in pool]
    products: dict[str, list] = {mode: [] for mode in MODE_WEIGHTS}
    for row in session.execute(
            select(Product.id, Product.provider_id, Product.pricing_mode, Product.published_at,
                   Product.created_at, Product.voucher_eligible, Product.delivery_days)
            .where(visible_products_condition()).order_by(Product.id)):
        products[row.pricing_mode].append(row)
    if not products["packaged"]:
        raise ActivityError("No published listings: load the demo first (load-demo).")
    packages: dict[int, list] = {}
    for row in session.execute(select(Package.id, Package.product_id, Package.delivery_days)
                               .order_by(Package.product_id, Package.position, Package.id)):
        packages.setdefault(row.product_id, []).append(row)

    def who(email: str) -> _Who | None:
        row = by_email.get(email)
        return _Who(row.id, row.organisation_id) if row and row.organisation_id else None

    return _Cast(staff_id, admin_id, who(BUYER_EMAIL), who(PROVIDER_EMAIL), buyers,
                 _first_users(session, "provider"), products, packages)


# --------------------------------------------------------------------------- plans

@dataclass
class _Plan:
    index: int
    fate: str
    mode: str
    buyer: _Who
    product: Any  # a row of the listing (id, provider_id, pricing_mode, dates...)
    package: Any  # a row of the package, for packaged listings
    days: int  # working days the institution needs (the due date after acceptance)
    t0: datetime  # when the buyer asks (order, quote request or application)
    voucher: bool = False
    gaps: dict[str, timedelta] = field(default_factory=dict)
    work_done: float = 1.0  # share of the work time elapsed at ``now`` (open work states)
    late: float = 1.0  # delivery time as a share of the agreed time
    # A story played with its own random stream (not the history's): added without
    # changing any other order of the same seed and clock.
    rng: random.Random | None = None


def _hours(rng: random.Random, lo: float, hi: float) -> timedelta:
    return timedelta(minutes=round(rng.uniform(lo, hi) * 60))


def _days(rng: random.Random, lo: float, hi: float) -> timedelta:
    return _hours(rng, lo * 24, hi * 24)


def _office_hours(moment: datetime) -> datetime:
    """Move a moment into 01:00-10:00 UTC (09:00-18:00 in Suzhou) of the same day, to the
    minute."""
    moment = moment.replace(second=0, microsecond=0)
    if 1 <= moment.hour < 10:
        return moment
    return moment.replace(hour=1 + (moment.hour % 9))


def _gaps(rng: random.Random, mode: str) -> dict[str, timedelta]:
    gaps = {
        "pay": _hours(rng, 2, 40),  # the bank transfer arrives and staff confirm it
        "accept": _hours(rng, 1, 30),  # the institution accepts (within 72 hours)
        "complete": _days(rng, 0.3, 4.5),  # the buyer accepts the delivery
        "buyer_review": _days(rng, 0.2, 5),
        "provider_review": _days(rng, 0.2, 8),
    }
    if mode == "quote":
        gaps["quote"] = _days(rng, 0.5, 3)
        gaps["decide"] = _days(rng, 0.3, 3)
    return gaps


def _before_accept(plan: _Plan) -> timedelta:
    g = plan.gaps
    total = g["pay"] + g["accept"]
    if plan.mode == "quote":
        total += g["quote"] + g["decide"]
    return total


def _choose_product(rng: random.Random, cast: _Cast, mode: str, provider_user: _Who | None,
                    before: datetime) -> tuple[Product, Package | None] | None:
    listings = cast.products.get(mode) or []
    if provider_user is not None:
        listings = [p for p in listings if p.provider_id == provider_user.organisation_id]
    listings = [p for p in listings if (p.published_at or p.created_at) <= before
                and p.provider_id in cast.provider_users
                and (mode != "packaged" or cast.packages.get(p.id))]
    if not listings:
        return None
    product = rng.choice(listings)
    package = rng.choice(cast.packages[product.id]) if mode == "packaged" else None
    return product, package


def _work_days(rng: random.Random, mode: str, product: Product, package: Package | None) -> int:
    if package is not None:
        return max(1, package.delivery_days)
    if mode == "quote":
        return rng.randint(10, 40)
    return max(3, product.delivery_days or 14)  # what services.accept() gives it


def _before_order(plan: _Plan) -> timedelta:
    """From the first request to the order (a quote is asked for, sent and accepted)."""
    return plan.gaps["quote"] + plan.gaps["decide"] if plan.mode == "quote" else timedelta(0)


def _make_plan(rng: random.Random, cast: _Cast, index: int, fate: str, now: datetime,
               start: datetime, *, buyer: _Who | None = None, provider_user: _Who | None = None,
               mode: str | None = None, recent: bool = False) -> _Plan | None:
    if fate in ("quote_open", "quote_declined", "milestone_late"):
        mode = "quote"
    elif fate.startswith("resolved") or fate == "disputed":
        mode = "quote" if rng.random() < 0.3 else "packaged"  # something paid to argue about
    elif mode is None:
        mode = rng.choices(list(MODE_WEIGHTS), weights=list(MODE_WEIGHTS.values()))[0]
    if not cast.products.get(mode):
        mode = "packaged"
    buyer = buyer or rng.choice(cast.buyers[:80] if rng.random() < 0.45 else cast.buyers)
    chosen = _choose_product(rng, cast, mode, provider_user, now - timedelta(days=3))
    if chosen is None:
        return None
    product, package = chosen
    days = _work_days(rng, mode, product, package)
    plan = _Plan(index, fate, mode, buyer, product, package, days, start, gaps=_gaps(rng, mode))
    plan.late = rng.choice([0.55, 0.7, 0.8, 0.9, 0.95, 1.0, 1.0, 1.05, 1.2, 1.4])
    work = timedelta(days=days)
    # When the story starts, counted back from where it must be at ``now``.
    accepted_at = None
    if fate in ("pending_payment", "quote_open"):
        t0 = now - _hours(rng, 2, 40) - _before_order(plan)
    elif fate == "paid":
        t0 = now - _hours(rng, 1, 30) - (_before_accept(plan) - plan.gaps["accept"])
    elif fate == "accepted":
        accepted_at = now - _hours(rng, 1, 20)
    elif fate == "in_progress":
        accepted_at = now - work * rng.uniform(0.25, 0.6)
    elif fate == "overdue":
        accepted_at = now - work - _days(rng, 1, 9)
    elif fate == "at_risk":
        accepted_at = now - work + _days(rng, 0.5, 2.5)
    elif fate == "milestone_late":
        accepted_at = now - work * rng.uniform(0.6, 0.8)
    elif fate in ("delivered", "disputed", "awaiting_review"):
        plan.late = rng.uniform(0.85, 1.05)
        ago = {"delivered": (0.2, 4), "disputed": (2.5, 6),
               "awaiting_review": (5, 9)}[fate]
        accepted_at = now - work * plan.late - _days(rng, *ago)
    elif recent:  # closed, but delivered only 9-14 days ago: the story ends in the last days
        accepted_at = now - work * plan.late - _days(rng, 9, 14)
    else:  # closed: anywhere in the history, finished well before now
        latest = now - _before_accept(plan) - work * 1.4 - timedelta(days=14)
        if latest <= start:
            return None
        t0 = start + (latest - start) * rng.random()
    if accepted_at is not None:
        plan.work_done = min(1.0, max(0.0, (now - accepted_at) / work))
        t0 = accepted_at - _before_accept(plan)
    plan.t0 = _office_hours(t0)
    if (product.published_at or product.created_at) > plan.t0:
        return None
    plan.voucher = mode != "financial" and product.voucher_eligible and rng.random() < 0.35
    return plan


def _fates(rng: random.Random, count: int) -> list[str]:
    fates: list[str] = []
    for fate, share in OPEN_FATES.items():
        fates += [fate] * max(1, round(count * share))
    closed = count - len(fates)
    fates += rng.choices(list(CLOSED_FATES), weights=list(CLOSED_FATES.values()), k=closed)
    # Every closed state at least once, even in a small demo.
    for fate in CLOSED_FATES:
        if fate not in fates:
            fates.append(fate)
    rng.shuffle(fates)
    return fates


# The demo logins see a little of everything on their own pages.
DEMO_BUYER_FATES = ["completed", "completed", "revision", "awaiting_review", "delivered",
                    "in_progress", "paid", "pending_payment", "cancelled_buyer",
                    "resolved_partial", "declined"]
DEMO_PROVIDER_FATES = ["paid", "quote_open", "in_progress", "at_risk", "delivered",
                       "completed", "completed", "completed", "completed", "completed",
                       "resolved_none", "declined", "quote_declined"]


def _plans(rng: random.Random, cast: _Cast, count: int, now: datetime,
           start: datetime, side_rng: random.Random | None = None) -> list[_Plan]:
    plans: list[_Plan] = []

    def add(fate, **kwargs) -> None:
        for _attempt in range(12):
            plan = _make_plan(rng, cast, len(plans), fate, now, start, **kwargs)
            if plan is not None:
                plans.append(plan)
                return

    if cast.demo_buyer is not None:
        for fate in DEMO_BUYER_FATES:
            mode = "quote" if fate == "in_progress" else "packaged"
            add(fate, buyer=cast.demo_buyer, mode=mode)
    if cast.demo_provider is not None:
        for fate in DEMO_PROVIDER_FATES:
            mode = None if fate.startswith("quote") else (
                "packaged" if cast.products["packaged"] and fate == "paid" else None)
            add(fate, provider_user=cast.demo_provider, mode=mode)
            if plans and plans[-1].fate != fate:  # the institution lacks that mode
                add(fate, provider_user=cast.demo_provider)
    for fate in _fates(rng, max(0, count - len(plans))):
        add(fate)
    # A dispute ruled on in the last days, whatever the clock: older rulings are settled by
    # the time the history reaches ``now``, and the console should show a "resolved" order.
    add(rng.choice(["resolved_full", "resolved_partial", "resolved_none"]), recent=True)
    # Work in progress whose own due date is still ahead but whose first milestone is past
    # its day without a submission: overdue by the milestone (orders/sla.py, issue 13), so
    # the monitors see one. Planned and played with its own random stream.
    if side_rng is not None:
        for _attempt in range(12):
            plan = _make_plan(side_rng, cast, len(plans), "milestone_late", now, start)
            if plan is not None:
                plan.voucher, plan.rng = False, side_rng
                plans.append(plan)
                break
    return plans


# --------------------------------------------------------------------------- the stories

Story = Generator[datetime, None, None]


class _Sim:
    def __init__(self, session: Session, rng: random.Random, cast: _Cast, now: datetime,
                 report: ActivityReport):
        self.session = session
        self.rng = rng
        self.cast = cast
        self.now = now
        self.report = report
        self.history_vouchers: dict[int, int] = {}  # enterprise id -> voucher id

    # ---- helpers
    def commit(self) -> None:
        self.session.commit()

    def user(self, who: _Who | int) -> User:
        return self.session.get(User, who if isinstance(who, int) else who.id)

    @property
    def staff(self) -> User:
        return self.user(self.cast.staff_id)

    def provider_user(self, order_or_product) -> User:
        org_id = getattr(order_or_product, "provider_org_id", None) or \
            order_or_product.provider_id
        return self.user(self.cast.provider_users[org_id])

    def pick(self, items):
        return self.rng.choice(items)

    def voucher_for(self, buyer: _Who, moment: datetime) -> int | None:
        usable = vouchers.usable_vouchers(self.session, buyer.organisation_id, moment.date())
        return usable[0].id if usable else None

    def play(self, plan: _Plan) -> Story:
        """The plan's story, each step drawing from the plan's own random stream if it has
        one (``self.rng`` is swapped in for the step, then put back)."""
        if plan.rng is None:
            yield from self.story(plan)
            return
        story = self.story(plan)
        while True:
            shared, self.rng = self.rng, plan.rng
            try:
                moment = next(story, None)
            finally:
                self.rng = shared
            if moment is None:
                return
            yield moment

    # ---- one order, from the first request to the reviews
    def story(self, plan: _Plan) -> Story:  # noqa: C901 - one readable script per order
        s, rng = self.session, self.rng
        buyer = self.user(plan.buyer)
        provider = self.provider_user(plan.product)
        t = plan.t0
        yield t
        product = s.get(Product, plan.product.id)
        if plan.mode == "quote":
            request = quotes.request_quote(
                s, buyer, product, self.pick(NEEDS) + "\n\n" + (product.quote_brief or "")[:300],
                budget=None, deadline=(t + timedelta(days=plan.days + 20)).date(), now=t)
            self.commit()
            self.report.quote_requests += 1
            if plan.fate == "quote_open":
                return
            t += plan.gaps["quote"]
            yield t
            due = (t + plan.gaps["decide"] + plan.gaps["pay"] + plan.gaps["accept"]
                   + timedelta(days=plan.days)).date()
            price = max(1_000_00, (product.price_from or 20_000_00) * rng.randint(8, 30) // 10
                        // 100_00 * 100_00)
            milestones = self.milestone_plan(t, due)
            quote = quotes.send_quote(s, provider, s.get(QuoteRequest, request.id), price, due,
                                      "Price includes official fees and one revision round.",
                                      milestones, valid_days=14, now=t)
            self.commit()
            t += plan.gaps["decide"]
            yield t
            quote = s.get(Quote, quote.id)
            if plan.fate == "quote_declined":
                quotes.decide(s, buyer, quote, False, now=t)
                self.commit()
                return
            order = quotes.decide(s, buyer, quote, True, now=t)
            self.commit()
            self.start_payment(order, plan, t)
        elif plan.mode == "financial":
            amount = product.amount_min or 1_000_000_00
            if product.amount_max and product.amount_max > amount:
                amount += (product.amount_max - amount) * rng.randint(0, 10) // 10
            term = product.term_min_months or None
            if term and product.term_max_months:
                term = rng.randint(term, product.term_max_months)
            order = quotes.apply(s, buyer, product, amount, term, self.pick(NEEDS), now=t)
            self.commit()
            if order.status == "pending_payment":
                self.start_payment(order, plan, t)
        else:
            cart.add(s, buyer, plan.package.id, 1)
            voucher_id = self.voucher_for(buyer, t) if plan.voucher else None
            result = checkout.place_orders(s, buyer, checkout.CheckoutInput(
                token=f"demo-activity-{plan.index}", payment_method="bank_transfer",
                voucher_id=voucher_id, requirements={product.provider_id: self.pick(NEEDS)}),
                now=t)
            self.commit()
            order = result.checkout.orders[0]
        order_id = order.id

        def fresh() -> Order:
            return s.get(Order, order_id)  # every step ends in a commit: reloaded on access

        if rng.random() < 0.3:
            t += _hours(rng, 0.5, 6)
            yield t
            services.post_message(s, fresh(), buyer, self.pick(BUYER_MESSAGES))
            self.commit()
        if plan.fate in ("pending_payment", "cancelled_unpaid"):
            return  # unpaid: the nightly timer cancels it once the payment window closes
        if plan.fate == "cancelled_buyer" and rng.random() < 0.5:
            t += _hours(rng, 1, 20)
            yield t
            services.cancel(s, fresh(), buyer, self.pick(CANCEL_REASONS), now=t)
            return
        if fresh().status == "pending_payment":  # a fee-free application is paid already
            t += plan.gaps["pay"]
            yield t
            order = fresh()
            if order.status == "pending_payment":
                payment = order.live_payment
                payments.mark_transfer_received(s, order, self.staff, payment.amount,
                                                f"BOC {payments.bank_reference(order)}")
                self.commit()
        if plan.fate == "paid" or plan.fate == "declined_auto":
            return  # awaiting the institution (declined by the timer after 72 hours)
        if plan.fate == "cancelled_buyer":
            t += _hours(rng, 0.5, 3)
            yield t
            services.cancel(s, fresh(), buyer, self.pick(CANCEL_REASONS), now=t)
            return
        # The institution answers before the nightly timer would decline the order for it.
        t = min(t + plan.gaps["accept"], fresh().accept_by - timedelta(hours=1))
        yield t
        if plan.fate == "declined":
            services.decline(s, fresh(), provider, self.pick(DECLINE_REASONS), now=t)
            return
        services.accept(s, fresh(), provider, now=t)
        # Both sides sign the order's contract (合同), if it has one, before work starts.
        paperwork_demo.sign_contract(s, order_id, buyer, provider, t, rng,
                                     provider_signs=plan.fate != "accepted" or rng.random() < .5)
        self.commit()
        accepted_at = t
        work = timedelta(days=plan.days)
        order = fresh()
        if (plan.mode == "packaged" and order.subtotal >= 30_000_00
                or plan.fate == "milestone_late") and not order.milestones:
            for item in self.milestone_plan(t, order.due_at.date()):
                services.add_milestone(s, order, provider, item["title"], item["share_bp"],
                                       date.fromisoformat(item["due_date"]))
            self.commit()
        if rng.random() < 0.4:
            t += _hours(rng, 1, 8)
            yield t
            services.post_message(s, fresh(), provider, self.pick(PROVIDER_MESSAGES))
            self.commit()
        if plan.fate == "accepted":
            return
        if plan.fate == "cancelled_staff":
            t += _days(rng, 2, 6)
            yield t
            services.cancel(s, fresh(), self.staff, self.pick(STAFF_CANCEL_REASONS), now=t)
            return
        # The work: progress updates (and milestones reached) along the way.
        open_work = plan.fate in ("in_progress", "overdue", "at_risk", "milestone_late")
        deliver_at = accepted_at + work * plan.late
        checkpoints = sorted(rng.sample([0.15, 0.3, 0.45, 0.6, 0.75, 0.9], rng.randint(1, 3)))
        if open_work and checkpoints[0] > 0.2:
            checkpoints = [0.1, *checkpoints]
        if plan.fate == "at_risk":
            checkpoints = [0.2]
        if plan.fate == "milestone_late":
            checkpoints = [0.1, 0.3]
        for share in checkpoints:
            moment = accepted_at + (deliver_at - accepted_at) * share
            if moment >= self.now or (not open_work and moment >= deliver_at):
                break
            t = max(t, moment)
            yield t
            order = fresh()
            percent = int(share * 100) if plan.fate != "at_risk" else rng.randint(25, 45)
            if plan.fate == "milestone_late":
                percent = rng.randint(5, 15)  # short of the first milestone (30% or more)
            if plan.fate == "overdue":
                percent = min(percent, 85)
            for milestone in order.milestones:
                reached = sum(m.share_bp for m in order.milestones
                              if m.position <= milestone.position) // 100
                if milestone.status in states.MILESTONE_SUBMITTABLE and reached <= percent:
                    # Submitted by the institution, approved by the buyer: its share of the
                    # escrow is released (issue 13).
                    milestone_flow.submit(s, order, provider, milestone.id,
                                          self.pick(PROGRESS_NOTES[min(3, percent // 25)]),
                                          now=t)
                    milestone_flow.approve(s, order, buyer, milestone.id, now=t)
            services.post_progress(s, order, provider, percent,
                                   self.pick(PROGRESS_NOTES[min(3, percent // 25)]))
            self.commit()
        if open_work:
            return
        t = max(t, deliver_at)
        yield t
        order = fresh()
        for milestone in order.milestones:
            if milestone.status in states.MILESTONE_SUBMITTABLE:  # approved with the delivery
                milestone_flow.submit(s, order, provider, milestone.id,
                                      self.pick(DELIVERY_NOTES), now=t)
        services.deliver(s, order, provider, self.pick(DELIVERY_NOTES), now=t)
        self.commit()
        if plan.fate == "revision":
            t += _days(rng, 0.5, 2)
            yield t
            services.request_revision(s, fresh(), buyer,
                                      "Please add the comparison with the two competitor "
                                      "patents we discussed.")
            t += _days(rng, 1, 4)
            yield t
            services.deliver(s, fresh(), provider, "Revised report with the comparison added.",
                             now=t)
            self.commit()
        if plan.fate == "delivered":
            return
        if plan.fate.startswith("resolved") or plan.fate == "disputed":
            t += _days(rng, 0.5, 2)
            yield t
            services.dispute(s, fresh(), buyer, self.pick(DISPUTE_REASONS))
            if plan.fate == "disputed":
                return
            t += _days(rng, 2, 6)
            yield t
            order = fresh()
            ruling = plan.fate.removeprefix("resolved_")
            # A ruling splits only what is still held (milestones approved were released).
            held = order.subtotal - ledger.released_total(s, order.id)
            refund = apply_rate(held, rng.choice([2000, 3000, 5000])) \
                if ruling == "partial" else None
            if ruling == "partial" and not 0 < refund < held:
                ruling, refund = "none", None
            services.resolve(s, order, self.staff, ruling, refund, RULING_NOTES[ruling])
        elif plan.fate == "auto_complete":
            # Nobody answers: the nightly timer completes it after AUTO_COMPLETE_DAYS.
            t += timedelta(days=AUTO_COMPLETE_DAYS + 1, hours=1)
            yield t
        else:
            t += plan.gaps["complete"]
            yield t
            services.complete(s, fresh(), buyer, "Thank you, accepted.", now=t)
        yield from self.rate(plan, order_id, t)

    def rate(self, plan: _Plan, order_id: int, t: datetime) -> Story:
        s, rng = self.session, self.rng
        if plan.fate.startswith("resolved_") and plan.fate != "resolved_partial":
            writers = ["buyer"] if rng.random() < 0.5 else []
        else:
            writers = []
            missing = plan.fate in ("buyer_review_missing", "awaiting_review")
            if not missing and rng.random() < 0.85:
                writers.append("buyer")
            if rng.random() < 0.75 or missing:
                writers.append("provider")
        steps = sorted((t + plan.gaps[f"{side}_review"], side) for side in writers)
        bad = plan.fate.startswith("resolved") or plan.late > 1.1
        for moment, side in steps:
            if moment >= self.now:
                continue
            yield moment
            order = s.get(Order, order_id)
            s.refresh(order)
            if order.status not in reviews.REVIEWABLE_STATUSES:
                return
            if side == "buyer":
                stars = rng.choice([1, 2, 2, 3]) if bad else rng.choice([3, 4, 4, 5, 5, 5, 5])
                scores = {name: max(1, min(5, stars + rng.choice([-1, 0, 0, 0, 1])))
                          for name in reviews.SIDE_DIMENSIONS["buyer"]}
                text = self.pick(BUYER_REVIEWS[stars])
                reviews.submit_review(s, order, self.user(plan.buyer), scores, text, now=moment)
            else:
                scores = {name: rng.choice([3, 4, 5, 5, 5])
                          for name in reviews.SIDE_DIMENSIONS["provider"]}
                reviews.submit_review(s, order, self.provider_user(order), scores,
                                      self.pick(PROVIDER_REVIEWS), now=moment)
            self.report.reviews += 1
        if "buyer" in writers and rng.random() < 0.3:
            moment = max(m for m, _side in steps) + _days(rng, 1, 16) if steps else t
            if moment < self.now:
                yield moment
                review = s.scalar(select(Review).where(Review.order_id == order_id,
                                                       Review.side == "buyer"))
                if review is not None and review.published_at is not None and not review.reply:
                    order = s.get(Order, order_id)
                    reviews.reply_to_review(s, review, self.provider_user(order),
                                            self.pick(REPLIES), now=moment)
                    self.report.replies += 1

    def milestone_plan(self, t: datetime, due: date) -> list[dict]:
        span = max(1, (due - t.date()).days)
        first = self.rng.choice([3000, 4000, 5000])
        return [
            {"title": "Materials reviewed and plan agreed", "share_bp": first,
             "due_date": (t.date() + timedelta(days=max(1, span // 3))).isoformat()},
            {"title": "Draft delivered for comments", "share_bp": 8000 - first,
             "due_date": (t.date() + timedelta(days=max(1, span * 2 // 3))).isoformat()},
            {"title": "Final delivery", "share_bp": 2000, "due_date": due.isoformat()},
        ]

    def start_payment(self, order: Order, plan: _Plan, t: datetime) -> None:
        """Quote and application orders: a voucher if the buyer has one, then a transfer."""
        s = self.session
        if plan.voucher:
            voucher_id = self.voucher_for(plan.buyer, t)
            if voucher_id is not None:
                try:
                    vouchers.apply_to_order(s, s.get(Voucher, voucher_id), order)
                except vouchers.VoucherError:
                    s.rollback()
                else:
                    self.commit()
        order = services.load(s, order.id)
        if order.amount_due > 0:
            payments.begin_bank_transfer(s, order)
            self.commit()

    # ---- the platform's routines
    def nightly_timers(self, start: datetime) -> Story:
        day = start.replace(hour=TIMER_HOUR, minute=0, second=0, microsecond=0)
        if day < start:
            day += timedelta(days=1)
        while day < self.now:
            yield day
            timers.run(self.session, day, AUTO_COMPLETE_DAYS)
            day += timedelta(days=1)

    def monthly_settlement(self, start: datetime) -> Story:
        """Each month's batch on the 2nd of the next month, paid on the 9th; the batch of
        the last finished month is left for staff to pay."""
        s = self.session
        month_start = date(start.year, start.month, 1)
        last_month = settlement.month(settlement.previous_month(self.now.date()))
        while True:
            period = settlement.month(f"{month_start:%Y-%m}")
            if period.start > last_month.start:
                return
            after = period.end + timedelta(days=1)
            run_at = datetime(after.year, after.month, 2, 3, 15, tzinfo=UTC)
            run_at = min(run_at, self.now - timedelta(hours=1))
            yield run_at
            result = settlement.run_period(s, period, self.staff, CURRENCY)
            self.commit()
            if result.created:
                self.report.batches += 1
                if period.start < last_month.start:
                    pay_at = min(run_at + timedelta(days=7, hours=5), self.now - timedelta(hours=1))
                    yield pay_at
                    for statement in s.scalars(select(SettlementStatement).where(
                            SettlementStatement.batch_id == result.batch.id,
                            SettlementStatement.paid_at.is_(None))
                            .order_by(SettlementStatement.id)):
                        settlement.mark_paid(s, statement, self.staff,
                                             f"PAYOUT-{period.slug}-{statement.id:05d}", now=pay_at)
                    self.commit()
                    self.report.batches_paid += 1
            month_start = after


# --------------------------------------------------------------------------- running it

def has_orders(session: Session) -> bool:
    return session.scalar(select(Order.id).limit(1)) is not None


def _run(stories: list[Story], clock: Callable[[datetime], None], now: datetime) -> None:
    """Run every story's steps in time order (ties: in the order the stories were made)."""
    queue: list[tuple[datetime, int, Iterator[datetime]]] = []
    for position, story in enumerate(stories):
        first = next(story, None)
        if first is not None and first < now:
            heapq.heappush(queue, (first, position, story))
    while queue:
        moment, position, story = heapq.heappop(queue)
        clock(moment)
        nxt = next(story, None)  # performs the step due at ``moment``, says when the next is
        if nxt is not None and nxt < now:
            heapq.heappush(queue, (max(nxt, moment), position, story))


def load_demo_activity(session: Session, *, now: datetime | None = None,
                       seed: int = DEFAULT_SEED, orders: int = DEFAULT_ORDERS,
                       echo: Callable[[str], object] | None = None) -> ActivityReport:
    """Play nine months of trade up to ``now`` (default: the current hour). Commits as it
    goes, one service action at a time, as the site would. Refuses when orders exist."""
    say = echo or (lambda _message: None)
    started = time.perf_counter()
    if has_orders(session):
        raise ActivityError("The database already has orders; the demo activity is only "
                            "loaded once (use `load-demo-activity --if-empty` to skip quietly).")
    if now is None:
        now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    now = now.astimezone(UTC)
    start = now - timedelta(days=HISTORY_DAYS)
    rng = random.Random(seed)  # noqa: S311 - demo data, not secrets
    report = ActivityReport()
    cast = _cast(session, rng)
    plans = _plans(rng, cast, orders, now, start,
                   side_rng=random.Random(seed + 1))  # noqa: S311 - demo data
    plans.sort(key=lambda p: (p.t0, p.index))
    say(f"Planned {len(plans)} orders and quote requests from {start:%Y-%m-%d} to "
        f"{now:%Y-%m-%d} (seed {seed}).")
    sim = _Sim(session, rng, cast, now, report)
    traveller = time_machine.travel(start, tick=False)
    coordinates = traveller.start()
    try:
        _grant_history_vouchers(sim, plans, start)
        stories = [sim.play(plan) for plan in plans]
        stories += [sim.nightly_timers(start), sim.monthly_settlement(start)]
        _run(stories, coordinates.move_to, now)
        from demand.demo import load_demo_needs

        say(f"Demo needs (需求) by status: {load_demo_needs(session, now)}")
        coordinates.move_to(now)
        report.invoices = paperwork_demo.invoice_history(session, now, rng)  # 发票
        session.commit()
        _finish(session, now)
    finally:
        traveller.stop()
    report.orders_by_status = Counter(dict(session.execute(
        select(Order.status, func.count(Order.id)).group_by(Order.status)).all()))
    report.seconds = time.perf_counter() - started
    return report


def _grant_history_vouchers(sim: _Sim, plans: list[_Plan], start: datetime) -> None:
    """This year's voucher round, granted at the start of the history to the enterprises
    whose plans pay with a voucher (the demo's own round started only a month ago)."""
    s, cast = sim.session, sim.cast
    admin = s.get(User, cast.admin_id)
    programme = vouchers.create_programme(s, admin, vouchers.ProgrammeInput(
        name="Suzhou innovation vouchers 2026 (first round) 苏州市创新券",
        funder="Suzhou Municipal Science and Technology Bureau", budget=5_000_000_00,
        valid_from=start.date(), valid_until=(start + timedelta(days=HISTORY_DAYS + 90)).date(),
        max_share_bp=3000, eligible_category_ids=[], currency=CURRENCY))
    granted: set[int] = set()
    for plan in plans:
        org_id = plan.buyer.organisation_id
        if plan.voucher and org_id not in granted:
            vouchers.grant(s, admin, programme, s.get(Organisation, org_id), 30_000_00,
                           "First round 2026")
            granted.add(org_id)
    s.commit()


def _finish(session: Session, now: datetime) -> None:
    """Publish reviews whose blind window passed, mark older notifications read, score everyone, rate every listing and
    queue the listings for the search index (ratings and credibility are indexed)."""
    reviews.publish_due_reviews(session, now)
    # People read their notifications: only the last few days' are still unread.
    session.execute(update(Notification).where(
        Notification.read_at.is_(None), Notification.created_at < now - timedelta(days=3))
        .values(read_at=Notification.created_at).execution_options(synchronize_session=False))
    for product_id in session.scalars(select(Review.product_id).where(
            Review.side == "buyer", Review.product_id.is_not(None)).distinct()):
        reviews.refresh_product_rating(session, product_id)
    session.commit()
    recompute_all(session, now)
    session.commit()
    sold = session.scalars(select(Order.product_id).where(Order.product_id.is_not(None))
                           .distinct()).all()
    search_outbox.enqueue_many(session, sold, "demo_activity")
    session.commit()


def batches(session: Session) -> list[SettlementBatch]:
    return list(session.scalars(select(SettlementBatch).options(
        selectinload(SettlementBatch.statements)).order_by(SettlementBatch.period_start)))
