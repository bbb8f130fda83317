"""Relevance on the demo catalogue: curated queries in English and Chinese, each with the
listings (by exact title) that a buyer must see in the top five.

The demo supermarket is loaded once for the module into a database of its own (the shared
test database is emptied before every test), indexed once, and every query is a test.
"""

import pytest
from sqlalchemy.orm import Session

from catalog.search.index import reindex_all
from catalog.search.pool import forget_index
from catalog.search.query import SearchParams, search
from marketplace.database import make_engine
from marketplace.demo.catalogue import DEFAULT_SEED, load_demo_data
from marketplace.migrate import upgrade

PCT = "PCT国际专利申请 · PCT international patent application"
INVENTION_FILING = "发明专利申请代理（含检索） · Invention patent filing with prior-art search"
MADRID = "马德里国际商标注册 · Madrid international trademark registration"

# (query, titles that must all be in the top 5)
QUERIES = [
    # Intellectual property
    ("patent applications", ["Design patent application", "Utility model patent application",
                             PCT]),
    ("patent application", ["Design patent application", "Utility model patent application"]),
    ("专利申请", [PCT, INVENTION_FILING]),
    ("发明专利申请", [INVENTION_FILING]),
    ("trademark registration", ["Trademark registration in one class", MADRID]),
    ("商标注册", [MADRID]),
    ("Madrid trademark", [MADRID]),
    ("freedom to operate", ["Freedom-to-operate analysis for a semiconductor product",
                            "Freedom-to-operate analysis for a biopharma product"]),
    ("自由实施", ["医疗器械产品自由实施（FTO）分析 · Freedom-to-operate analysis for a medical "
              "device product"]),
    ("专利侵权诉讼", ["专利侵权诉讼代理 · Patent infringement litigation"]),
    ("专利无效", ["专利无效宣告请求及答辩 · Patent invalidation request and defence",
              "专利无效证据检索 · Invalidity search against a competitor's patent"]),
    ("patent valuation", ["专利价值评估（质押融资用） · Patent valuation for IP-pledge loans"]),
    ("专利许可", ["专利许可交易经纪 · Patent licensing brokerage"]),
    # Finance
    ("credit loan", ["First-time borrower credit loan for tech SMEs",
                     "Credit loan for certified high-tech enterprises"]),
    ("信用贷", ["科技型中小企业信用贷（最高500万元） · Sci-tech SME credit loan up to ¥5M"]),
    ("知识产权质押", ["知识产权质押融资担保（最高500万元） · Guarantee for IP-pledge bank loans up "
                "to ¥5M"]),
    ("专利质押贷款", ["半导体企业专利质押贷款 · Patent-pledge loan for semiconductor companies",
                "医疗器械企业专利质押贷款 · Patent-pledge loan for medical device companies"]),
    ("angel investment", ["Angel investment for new materials start-ups"]),
    ("天使投资", ["光电初创企业天使投资 · Angel investment for photonics start-ups",
              "半导体初创企业天使投资 · Angel investment for semiconductor start-ups"]),
    ("venture debt", ["Venture debt for VC-backed medical device companies"]),
    ("convertible note", ["Convertible note financing up to ¥10M",
                          "Convertible note financing up to ¥20M"]),
    ("financing guarantee", ["首台（套）装备融资担保 · Financing guarantee for first-of-a-kind "
                             "equipment makers"]),
    ("融资担保", ["政府采购合同融资担保（政采贷） · Guarantee for government-procurement "
              "contract loans"]),
    ("product liability insurance", ["光电产品责任险 · Product liability insurance for photonics "
                                     "makers"]),
    ("责任险", ["新能源产品责任险 · Product liability insurance for new energy makers"]),
    # Evaluation and advisory
    ("高新技术企业认定", ["高新技术企业重新认定（复审） · High-tech enterprise re-certification"]),
    ("high-tech enterprise recognition", ["Full support for high-tech enterprise recognition"]),
    ("技术成熟度", ["技术成熟度（TRL）评价 · Technology readiness level (TRL) assessment"]),
    ("TRL", ["技术成熟度（TRL）评价 · Technology readiness level (TRL) assessment"]),
    ("科技查新", ["科技查新（国内外） · Domestic and international novelty search"]),
    ("股权激励", ["股权激励方案设计 · Employee equity incentive plan design"]),
    ("data compliance", ["Data compliance and personal-information protection review"]),
    # Inspection, certification, R&D resources, technology transfer
    ("EMC testing", ["CNAS-accredited EMC testing for industrial equipment"]),
    ("RoHS", ["RoHS and REACH hazardous-substance testing for LED lighting"]),
    ("CE认证", ["医疗器械欧盟CE认证 · EU CE marking for medical devices"]),
    ("CE marking", ["EU CE marking for lithium batteries"]),
    ("医疗器械注册检验", ["医疗器械注册检验 · Medical device registration testing"]),
    ("压力表校准", ["压力表校准（CNAS认可） · CNAS-accredited calibration of pressure gauges"]),
    ("lithium battery", ["UN38.3 transport safety testing for lithium batteries",
                         "EU CE marking for lithium batteries"]),
    ("核磁共振", ["600兆核磁共振波谱仪测试与数据解析 · 600 MHz NMR spectrometer measurement "
              "with data interpretation"]),
    ("NMR", ["600兆核磁共振波谱仪自主上机（培训后） · 600 MHz NMR spectrometer self-service "
             "sessions after training"]),
    ("electron microscope", ["透射电子显微镜测试与数据解析 · Transmission electron microscope "
                             "measurement with data interpretation"]),
    ("cleanroom", ["ISO class 7 cleanroom rental by the month"]),
    ("中试", ["GMP中试车间（小批量试制） · GMP pilot workshop for small-batch production"]),
    ("fermentation", ["生物发酵中试平台（50L–2000L） · Fermentation pilot plant from 50 L to "
                      "2,000 L"]),
    ("技术经理人", ["技术经理人培训与认证 · Technology-manager training and certification"]),
    ("技术路演", ["智能制造专场技术路演对接会 · Technology roadshow for smart manufacturing "
              "projects"]),
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo catalogue (CLI default seed) in its own SQLite database, indexed once."""
    folder = tmp_path_factory.mktemp("relevance")
    url = f"sqlite:///{folder / 'demo.sqlite'}"
    upgrade(url)
    engine = make_engine(url)
    index_dir = folder / "search-index"
    with Session(bind=engine, expire_on_commit=False) as session:
        load_demo_data(session, seed=DEFAULT_SEED)
        session.commit()
        reindex_all(session, index_dir)
        yield session, index_dir
    forget_index(index_dir)
    engine.dispose()


def test_the_curated_set_is_large_and_bilingual():
    chinese = [q for q, _ in QUERIES if any("\u4e00" <= ch <= "\u9fff" for ch in q)]
    assert len(QUERIES) >= 30
    assert len(chinese) >= 15 and len(QUERIES) - len(chinese) >= 15


@pytest.mark.parametrize("query, expected", QUERIES, ids=[q for q, _ in QUERIES])
def test_expected_listings_are_in_the_top_five(demo, query, expected):
    session, index_dir = demo
    page = search(session, index_dir, SearchParams(q=query), page_size=5)
    top = [hit.product.title for hit in page.hits]
    assert page.matched_all
    missing = [title for title in expected if title not in top]
    assert not missing, f"{query!r}: missing {missing}; top five were {top}"


@pytest.mark.parametrize("typo, correction", [
    ("patnet", "patent"), ("trademrk registraton", "trademark registration"),
    ("calibraton", "calibration"),
])
def test_did_you_mean_for_misspelt_words(demo, typo, correction):
    session, index_dir = demo
    page = search(session, index_dir, SearchParams(q=typo))
    assert page.total == 0
    assert page.suggestion == correction
    assert search(session, index_dir, SearchParams(q=correction)).total > 0


def test_english_stemming_and_case_folding(demo):
    session, index_dir = demo
    ids = {}
    for query in ("Patent Applications", "patent application", "PATENT APPLICATION"):
        page = search(session, index_dir, SearchParams(q=query), page_size=100)
        ids[query] = [hit.product.id for hit in page.hits]
    assert len({tuple(value) for value in ids.values()}) == 1


def test_chinese_sub_words_match_longer_words(demo):
    session, index_dir = demo
    page = search(session, index_dir, SearchParams(q="专利申请"), page_size=100)
    titles = [hit.product.title for hit in page.hits]
    # "发明专利申请" is segmented as 发明专利 + 申请; searching 专利申请 still finds it.
    assert INVENTION_FILING in titles
    assert all(hit.title_html.count("<mark") for hit in page.hits[:5])


@pytest.mark.parametrize("query", [q for q, _ in QUERIES] + ["technology consulting services",
                                                            "专利 商标 检索", "loan insurance"])
def test_early_stopping_ranking_equals_scoring_everything(demo, query):
    """The threshold algorithm returns exactly what scoring every match would."""
    from catalog.search.pool import TextQuery, borrow_searcher

    _session, index_dir = demo
    text_query = TextQuery.parse(query)
    with borrow_searcher(index_dir) as (searcher, snapshot):
        docs = snapshot.matching(searcher, text_query, require_all=True) or \
            snapshot.matching(searcher, text_query, require_all=False)
        terms = text_query.atoms + text_query.extras
        weights = [searcher.idf("text", t) for t in text_query.atoms] + [
            0.5 * searcher.idf("text", t) for t in text_query.extras]
        pairs = [(w, snapshot.term_scores(searcher, t)) for w, t in zip(weights, terms,
                                                                         strict=True)]
        for count in (5, 24, 72):
            assert snapshot.top_by_relevance(searcher, text_query, docs, count) == \
                snapshot._score_all(pairs, docs, count)
