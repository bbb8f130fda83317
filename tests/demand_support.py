"""Shared set-up for the demand-side tests: an enterprise, staff, and institutions whose
listings make the right match for a clear need obvious, with the search index built."""

from dataclasses import dataclass
from datetime import date, timedelta

import factories
from sqlalchemy import select

from catalog.models import Category
from catalog.search.index import reindex_all
from demand import services
from demand.services import NeedData, ProposalData
from marketplace.database import utcnow


@dataclass
class World:
    buyer_org: object
    buyer: object
    other_org: object
    other_buyer: object
    staff: object
    fto: object  # the institution a freedom-to-operate need should find
    fto_user: object
    lab: object  # a battery-testing lab
    lab_user: object
    filer: object  # files patents; same top category as FTO, another sub-category
    filer_user: object


def category_id(session, slug: str) -> int:
    return session.scalar(select(Category.id).where(Category.slug == slug))


def world(session, app, index: bool = True) -> World:
    buyer_org = factories.enterprise(session, name="苏州测试机器人有限公司")
    other_org = factories.enterprise(session, name="Other Buyer Co., Ltd.")
    fto = factories.provider(session, name="Yuanhe FTO & Patent Agency",
                             regions_served=["suzhou", "jiangsu"])
    lab = factories.provider(session, name="Gusu Battery Test Lab",
                             institution_type="testing_lab", regions_served=["jiangsu"])
    filer = factories.provider(session, name="Wuzhong Patent Filing Office",
                               regions_served=["wuxi"])
    factories.product(session, fto, mode="quote", category_slug="ip-strategy",
                      title="Freedom-to-operate (FTO) analysis before an EU launch",
                      summary="自由实施分析 FTO search and legal opinion for new products.",
                      description="Patent landscape, claim charts and a freedom-to-operate "
                                  "opinion for European markets. 欧洲 专利 侵权风险 分析。",
                      tags=["FTO", "自由实施", "patent"])
    factories.product(session, lab, mode="quote", category_slug="testing",
                      title="Battery pack safety testing to GB 38031",
                      summary="动力电池包 安全 检测 GB 38031 for electric vehicles.",
                      description="Thermal runaway, vibration and crush tests.",
                      tags=["battery", "电池", "检测"], regions=["jiangsu"])
    factories.product(session, filer, category_slug="patent-application",
                      title="Invention patent application 发明专利申请",
                      regions=["wuxi"])
    w = World(buyer_org=buyer_org, buyer=factories.user(session, buyer_org),
              other_org=other_org, other_buyer=factories.user(session, other_org),
              staff=factories.user(session, role="staff"),
              fto=fto, fto_user=factories.user(session, fto), lab=lab,
              lab_user=factories.user(session, lab), filer=filer,
              filer_user=factories.user(session, filer))
    session.commit()
    if index:
        reindex_all(session, app.config["SEARCH_INDEX_DIR"])
    return w


def fto_data(session, **changes) -> NeedData:
    data = NeedData(
        title="欧盟上市前的专利自由实施分析 (FTO) freedom-to-operate",
        description="我们计划在欧洲销售一款扫地机器人，需要一份 FTO 自由实施分析报告，"
                    "覆盖欧洲专利。We need a freedom-to-operate opinion before the EU launch.",
        category_id=category_id(session, "ip-strategy"), budget_kind="range",
        budget_min=3_000_000, budget_max=8_000_000,
        proposal_deadline=utcnow() + timedelta(days=14),
        wanted_delivery=date.today() + timedelta(days=60), region="suzhou_sip",
        visibility="public", show_company=False)
    for key, value in changes.items():
        setattr(data, key, value)
    return data


def open_need(session, w: World, app=None, **changes):
    need = services.create_need(session, w.buyer, fto_data(session, **changes))
    services.submit_need(session, w.buyer, need)
    services.approve_need(session, w.staff, need,
                          index_dir=app.config["SEARCH_INDEX_DIR"] if app else None)
    session.commit()
    return need


def proposal_data(price: int = 5_000_000, days: int = 40, **changes) -> ProposalData:
    today = date.today()
    data = ProposalData(
        price=price, delivery_date=today + timedelta(days=days),
        milestones=[
            {"title": "Search and claim charts", "share_bp": 4000,
             "due_date": (today + timedelta(days=days // 2)).isoformat()},
            {"title": "Opinion", "share_bp": 6000,
             "due_date": (today + timedelta(days=days)).isoformat()}],
        team="Two patent attorneys (EP qualified)", cover_note="We did 40 FTOs last year.")
    for key, value in changes.items():
        setattr(data, key, value)
    return data
