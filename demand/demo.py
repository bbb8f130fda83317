"""Demo needs (需求) in every state, played through the real services at historical moments
(``time-machine``), in Chinese and English: drafts, a need returned by staff, one awaiting
moderation, open needs with and without proposals (one revised, with questions), an
invitation-only need, awarded needs whose orders await payment or are completed, a need
closed without award and one expired. Called at the end of ``load-demo-activity``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.models import Category
from demand import services
from demand.models import Need
from demand.services import DemandError, NeedData, ProposalData
from marketplace.models import User


@dataclass
class DemoNeed:
    fate: str
    category: str
    title: str
    description: str
    budget: tuple[str, int | None, int | None]
    region: str | None
    days_ago: float  # when it was written
    visibility: str = "public"
    show_company: bool = True
    demo_buyer: bool = False
    financial: tuple[int, int, str] | None = None


NEEDS = [
    DemoNeed("open_proposals", "ip-strategy", "欧盟上市前的扫地机器人专利自由实施分析 (FTO)",
             "我们计划明年在德国、法国销售新一代扫地机器人，需要对导航与吸尘结构做**自由实施分析**，"
             "覆盖欧洲专利和德国实用新型，并给出规避设计建议。\n\n- 目标市场：DE、FR\n- 交付：中英文报告",
             ("range", 40_000_00, 90_000_00), "suzhou_sip", 12, demo_buyer=True,
             show_company=False),
    DemoNeed("draft", "high-tech-recognition", "高新技术企业认定辅导（2027 年度）",
             "需要协助整理研发费用归集、知识产权清单和科技成果转化材料，申报 2027 年高新技术企业认定。",
             ("open", None, None), "suzhou", 1, demo_buyer=True),
    DemoNeed("submitted", "testing", "Battery pack safety testing to GB 38031",
             "We need thermal runaway, vibration and crush tests for a 48 V battery pack before "
             "certification. Samples ready in two weeks.",
             ("fixed", 120_000_00, None), "kunshan", 0.5),
    DemoNeed("returned", "patent-application", "专利申请",
             "需要申请专利。", ("open", None, None), None, 3),
    DemoNeed("open_empty", "equity-investment", "Series A financing for a machine-vision start-up",
             "We are raising a ¥30M Series A for industrial machine-vision inspection; looking "
             "for investors with manufacturing portfolios in the Yangtze River Delta.",
             ("open", None, None), "suzhou", 2,
             financial=(30_000_000_00, 60, "Series A: product and sales team")),
    DemoNeed("open_invited", "technology-consulting",
             "Process consulting for a solid-state electrolyte pilot line",
             "Invitation only: we need an experienced consultant to review the layout and "
             "process window of our pilot line for sulfide solid electrolytes.",
             ("range", 80_000_00, 200_000_00), "changshu", 6, visibility="invited"),
    DemoNeed("awarded_unpaid", "trademark-registration", "海外商标注册（美国、欧盟、日本）",
             "新品牌需要在美国、欧盟和日本注册商标，涉及第 7、9 类。",
             ("fixed", 25_000_00, None), "suzhou", 20),
    DemoNeed("awarded_completed", "patent-search", "Patent landscape report on SiC power modules",
             "A landscape of SiC power module packaging patents (CN, US, EP, JP) for our R&D "
             "roadmap, with the top 20 assignees and white spaces.",
             ("range", 30_000_00, 60_000_00), "suzhou_snd", 75),
    DemoNeed("closed", "calibration", "三坐标测量机校准",
             "需要对两台三坐标测量机进行年度校准并出具 CNAS 证书。",
             ("fixed", 8_000_00, None), "taicang", 40),
    DemoNeed("expired", "pilot-facilities", "Pilot-scale spray drying for a food additive",
             "Looking for a pilot plant able to spray-dry 200 kg of a probiotic formulation.",
             ("open", None, None), "wuxi", 50),
]
PROPOSAL_NOTES = [
    "我们团队过去三年完成了 40 余份欧洲 FTO 报告，熟悉德国实用新型检索。",
    "We have done this kind of work for twelve manufacturers in Suzhou; two partners lead it.",
    "可在两周内启动，提供中英文双语交付，报价含一次线上答疑。",
]


def _users(session: Session):
    staff = session.scalar(select(User).where(User.role == "staff").order_by(User.id))
    buyers = list(session.scalars(select(User).where(
        User.role == "enterprise", User.active.is_(True), User.is_org_owner.is_(True))
        .order_by(User.id).limit(40)))
    demo = session.scalar(select(User).where(User.email == "buyer@demo.example"))
    return staff, buyers, demo


def _owner(session: Session, org_id: int) -> User | None:
    return session.scalar(select(User).where(User.organisation_id == org_id,
                                             User.active.is_(True))
                          .order_by(User.is_org_owner.desc(), User.id))


def _proposal(today: date, price: int, days: int, note: str, financial: bool) -> ProposalData:
    half = max(1, days // 2)
    return ProposalData(
        price=price, delivery_date=today + timedelta(days=days),
        milestones=[{"title": "方案与检索 Plan and search", "share_bp": 4000,
                     "due_date": (today + timedelta(days=half)).isoformat()},
                    {"title": "报告交付 Final report", "share_bp": 6000,
                     "due_date": (today + timedelta(days=days)).isoformat()}],
        team="2 senior consultants · 2 名资深顾问", cover_note=note,
        offered_amount=30_000_000_00 if financial else None, rate_bp=0 if financial else None,
        term_months=60 if financial else None,
        conditions="Board seat; 15 % equity" if financial else None)


def load_demo_needs(session: Session, now: datetime, seed: int = 20261207,
                    index_dir=None) -> dict[str, int]:
    """Play the demo needs; returns how many needs ended in each status. Commits."""
    import time_machine

    rng = random.Random(seed)  # noqa: S311 - demo data
    staff, buyers, demo_buyer = _users(session)
    if staff is None or not buyers:
        return {}
    categories = {c.slug: c.id for c in session.scalars(select(Category))}
    counts: dict[str, int] = {}
    for number, plan in enumerate(NEEDS):
        buyer = demo_buyer if plan.demo_buyer and demo_buyer else buyers[number % len(buyers)]
        t = now - timedelta(days=plan.days_ago)

        def at(moment: datetime):
            return time_machine.travel(moment.astimezone(UTC), tick=False)

        with at(t):
            kind, low, high = plan.budget
            deadline_days = 10 if plan.fate.startswith("open") or plan.fate in (
                "draft", "submitted", "returned") else 7
            data = NeedData(
                title=plan.title, description=plan.description,
                category_id=categories[plan.category], budget_kind=kind, budget_min=low,
                budget_max=high, proposal_deadline=t + timedelta(days=deadline_days),
                wanted_delivery=(t + timedelta(days=deadline_days + 45)).date(),
                region=plan.region, visibility=plan.visibility,
                show_company=plan.show_company,
                financial_amount=plan.financial[0] if plan.financial else None,
                financial_term_months=plan.financial[1] if plan.financial else None,
                financial_purpose=plan.financial[2] if plan.financial else None)
            need = services.create_need(session, buyer, data, now=t)
            if plan.fate != "draft":
                services.submit_need(session, buyer, need, now=t)
            session.commit()
        if plan.fate in ("draft", "submitted"):
            counts[need.status] = counts.get(need.status, 0) + 1
            continue
        t += timedelta(hours=3)
        with at(t):
            if plan.fate == "returned":
                services.reject_need(session, staff, need, "Please describe the invention "
                                     "and the countries; 请补充技术方案和目标国家。", now=t)
                session.commit()
                counts["draft"] = counts.get("draft", 0) + 1
                continue
            services.approve_need(session, staff, need, now=t, index_dir=index_dir)
            session.commit()
        invited = [i for i in services.invitations_of(session, need)]
        answerers = []
        for invitation in invited[:3]:
            user = _owner(session, invitation.provider_org_id)
            if user is not None:
                answerers.append(user)
        if plan.fate in ("open_empty", "expired") or not answerers:
            if plan.fate == "closed":
                t = need.proposal_deadline + timedelta(days=2)
                with at(t):
                    services.close_need(session, buyer, need, "Done in-house after all.", now=t)
                    session.commit()
            if plan.fate == "expired":
                t = need.proposal_deadline + timedelta(minutes=5)
                with at(t):
                    services.run_need_timers(session, now=t)
                    session.commit()
            counts[need.status] = counts.get(need.status, 0) + 1
            continue
        proposals = []
        for position, user in enumerate(answerers[:2] if plan.fate != "open_invited"
                                        else answerers[:1]):
            t += timedelta(hours=rng.uniform(4, 30))
            with at(t):
                base = (high or low or 50_000_00)
                price = int(base * rng.uniform(0.75, 1.0)) // 100 * 100
                try:
                    proposals.append(services.submit_proposal(
                        session, user, need, _proposal(t.date(), price, 30 + 10 * position,
                                                       PROPOSAL_NOTES[position % 3],
                                                       bool(plan.financial)), now=t))
                    session.commit()
                except DemandError:
                    session.rollback()
        if len(answerers) > 2 and plan.fate == "open_proposals":
            t += timedelta(hours=5)
            with at(t):
                services.decline_invitation(session, answerers[2], need, "capacity", now=t)
                session.commit()
        if proposals and plan.fate == "open_proposals":
            first = proposals[0]
            t += timedelta(hours=6)
            with at(t):
                services.post_message(session, buyer, first, "报告是否覆盖德国实用新型？", now=t)
                session.commit()
            t += timedelta(hours=2)
            with at(t):
                services.post_message(session, _owner(session, first.provider_org_id), first,
                                      "覆盖，我们会单独列出 DE 实用新型的检索结果。", now=t)
                revised = ProposalData.of(first)
                revised.price = int(first.price * 0.92) // 100 * 100
                revised.cover_note += "\n\n修订：价格下调 8%。"
                services.revise_proposal(session, _owner(session, first.provider_org_id),
                                         first, revised, now=t)
                services.set_shortlisted(session, buyer, first, True)
                session.commit()
        if plan.fate in ("awarded_unpaid", "awarded_completed") and proposals:
            t = max(t, need.proposal_deadline) + timedelta(hours=20)
            with at(t):
                order = services.award(session, buyer, proposals[-1],
                                       "Thank you; we chose a closer schedule.", now=t)
                session.commit()
            if plan.fate == "awarded_completed":
                _run_to_completion(session, order.id, staff, t)
        if plan.fate == "closed":
            t = max(t, need.proposal_deadline) + timedelta(days=2)
            with at(t):
                services.close_need(session, buyer, need, "", now=t)
                session.commit()
        session.refresh(need)
        counts[need.status] = counts.get(need.status, 0) + 1
    return counts


def _run_to_completion(session: Session, order_id: int, staff: User, t: datetime) -> None:
    """Pay by bank transfer (confirmed by staff), accept, finish the milestones, deliver and
    accept the delivery: the order an awarded proposal became, completed."""
    import time_machine

    from orders import milestones, payments
    from orders import services as orders
    from orders.paperwork_demo import sign_contract

    def at(moment):
        return time_machine.travel(moment.astimezone(UTC), tick=False)

    order = orders.load(session, order_id)
    provider = _owner(session, order.provider_org_id)
    buyer = session.get(User, order.buyer_user_id)
    steps = [timedelta(hours=4), timedelta(days=1), timedelta(days=20), timedelta(days=2)]
    t += steps[0]
    with at(t):
        payments.begin_bank_transfer(session, order)
        session.commit()
        payment = orders.load(session, order_id).live_payment
        payments.mark_transfer_received(session, orders.load(session, order_id), staff,
                                        payment.amount, "BOC demo transfer")
        session.commit()
    t += steps[1]
    with at(t):
        orders.accept(session, orders.load(session, order_id), provider, now=t)
        # An awarded proposal is a quote order with a technology contract: both sign it
        # before the work starts (orders/contracts.py), as the demo's other orders do.
        sign_contract(session, order_id, buyer, provider, t,
                      random.Random(order_id))  # noqa: S311 (demo IP addresses)
        session.commit()
    t += steps[2]
    with at(t):
        order = orders.load(session, order_id)
        for milestone in order.milestones:  # submitted, then approved by the buyer (issue 13)
            milestones.submit(session, order, provider, milestone.id, "Milestone work done.",
                              now=t)
            milestones.approve(session, order, buyer, milestone.id, now=t)
        orders.deliver(session, orders.load(session, order_id), provider,
                       "Landscape report (PDF) and the assignee spreadsheet.", now=t)
        session.commit()
    t += steps[3]
    with at(t):
        orders.complete(session, orders.load(session, order_id), buyer, now=t)
        session.commit()


def status_counts(session: Session) -> dict[str, int]:
    from sqlalchemy import func

    return dict(session.execute(select(Need.status, func.count(Need.id))
                                .group_by(Need.status)).all())

