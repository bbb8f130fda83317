"""The seeded two-level category tree (DESIGN.md §3); admins may edit it later."""

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.models import Category

# (slug, English, Chinese, [(slug, English, Chinese), ...])
CATEGORY_TREE = [
    ("finance", "S&T finance", "科技金融", [
        ("credit-loans", "Tech-SME credit loans", "科技型中小企业信用贷款"),
        ("ip-pledge", "IP-pledge financing", "知识产权质押融资"),
        ("equity-investment", "Venture / equity investment", "创业投资与股权融资"),
        ("financing-guarantee", "Financing guarantee", "融资担保"),
        ("tech-insurance", "Technology insurance", "科技保险"),
    ]),
    ("ip", "Intellectual property", "知识产权", [
        ("patent-application", "Patent application", "专利申请"),
        ("trademark-registration", "Trademark registration", "商标注册"),
        ("patent-search", "Patent search and analysis", "专利检索与分析"),
        ("ip-strategy", "IP strategy / freedom-to-operate", "知识产权战略与自由实施分析"),
        ("ip-litigation", "IP litigation and enforcement", "知识产权诉讼与维权"),
    ]),
    ("evaluation", "Evaluation", "评估评价", [
        ("achievement-evaluation", "Achievement evaluation", "科技成果评价"),
        ("ip-valuation", "Patent / IP valuation", "专利与知识产权价值评估"),
        ("high-tech-recognition", "High-tech enterprise recognition", "高新技术企业认定"),
        ("trl-assessment", "Technology readiness (TRL) assessment", "技术成熟度评价"),
    ]),
    ("advisory", "Advisory", "咨询服务", [
        ("policy-grants", "Policy and grant advisory", "政策与项目申报咨询"),
        ("technology-consulting", "Technology consulting", "技术咨询"),
        ("management-consulting", "Management consulting", "管理咨询"),
        ("legal-advisory", "Legal advisory", "法律咨询"),
    ]),
    ("inspection", "Inspection and certification", "检验检测认证", [
        ("testing", "Testing", "检验检测"),
        ("product-certification", "Product certification", "产品认证"),
        ("calibration", "Calibration", "计量校准"),
    ]),
    ("rd-sharing", "R&D resource sharing", "研发资源共享", [
        ("instrument-booking", "Instrument booking", "科研仪器预约"),
        ("laboratory-access", "Laboratory access", "实验室开放共享"),
        ("pilot-facilities", "Pilot-scale facilities", "中试平台"),
    ]),
    ("tech-transfer", "Technology transfer", "技术转移", [
        ("achievement-matching", "Achievement matching", "科技成果对接"),
        ("licensing-brokerage", "Licensing brokerage", "技术许可经纪"),
        ("tech-manager", "Technology-manager services", "技术经理人服务"),
    ]),
]


def seed_categories(session: Session) -> int:
    """Create any missing categories of the tree; returns how many were added."""
    existing = {c.slug: c for c in session.scalars(select(Category))}
    added = 0
    for top_position, (slug, name, name_zh, children) in enumerate(CATEGORY_TREE):
        parent = existing.get(slug)
        if parent is None:
            parent = Category(slug=slug, name=name, name_zh=name_zh, position=top_position)
            session.add(parent)
            added += 1
        for position, (child_slug, child_name, child_zh) in enumerate(children):
            if child_slug not in existing:
                session.add(
                    Category(
                        slug=child_slug, name=child_name, name_zh=child_zh,
                        position=position, parent=parent,
                    )
                )
                added += 1
    session.flush()
    return added


def top_level_categories(session: Session) -> list[Category]:
    from sqlalchemy.orm import selectinload

    return list(
        session.scalars(
            select(Category)
            .where(Category.parent_id.is_(None))
            .options(selectinload(Category.children))
            .order_by(Category.position)
        )
    )


@dataclass(frozen=True)
class MenuCategory:
    """A category of the navigation menu as plain data (shared by every request of a
    process, so no ORM object), with its sub-categories."""
    id: int
    slug: str
    name: str
    name_zh: str
    children: tuple["MenuCategory", ...] = ()


def category_menu(session: Session) -> list[MenuCategory]:
    """The top-level categories with their children, in menu order."""
    return [
        MenuCategory(top.id, top.slug, top.name, top.name_zh, tuple(
            MenuCategory(child.id, child.slug, child.name, child.name_zh)
            for child in top.children))
        for top in top_level_categories(session)
    ]
