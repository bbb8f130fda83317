"""Searching as Chinese users type (issue 18): traditional characters, full-width letters,
pinyin and initials, synonyms and abbreviations, same-sounding typos, and the "any of the
words" fallback that never floods the page."""

import factories
import pytest

from catalog.search import synonyms
from catalog.search.expand import build_query
from catalog.search.groups import group_scores, is_group
from catalog.search.index import open_index, reindex_all
from catalog.search.pool import borrow_searcher
from catalog.search.query import SearchParams, search
from catalog.search.text import fold, pinyin_split, to_simplified


@pytest.fixture(autouse=True)
def index_dir(app, tmp_path, monkeypatch):
    path = tmp_path / "search-index"
    monkeypatch.setitem(app.config, "SEARCH_INDEX_DIR", str(path))
    return path


@pytest.fixture
def listings(session, index_dir):
    org = factories.provider(session, name="Yuanhe IP Agency 元和知识产权代理")
    made = {
        "patent": factories.product(session, org, category_slug="patent-application",
                                    title="发明专利申请代理 · Invention patent filing"),
        "trademark": factories.product(session, org, category_slug="trademark-registration",
                                       title="商标注册（单类） · Trademark registration"),
        "pledge": factories.product(session, org, category_slug="ip-pledge",
                                    title="知识产权质押融资 · IP-pledge financing"),
        "guarantee": factories.product(session, org, category_slug="financing-guarantee",
                                       title="融资担保服务 · Financing guarantee"),
        "traditional": factories.product(session, org, category_slug="calibration",
                                         title="計量校準服務（繁體） · Calibration"),
        "pct": factories.product(session, org, category_slug="legal-advisory",
                                 title="ＰＣＴ filing support"),
    }
    session.commit()
    reindex_all(session, index_dir)
    return made


def titles(session, index_dir, q, **params):
    return [hit.product.title for hit in search(session, index_dir,
                                                SearchParams(q=q, **params)).hits]


def test_text_folding():
    assert to_simplified("專利申請") == "专利申请"
    assert fold("ＰＣＴ　專利") == "pct 专利"
    assert pinyin_split("gaoxin") == ("gao", "xin")
    assert pinyin_split("xian") == ("xian",)
    assert pinyin_split("certification") is None


def test_traditional_and_full_width_find_the_same_listings(session, index_dir, listings):
    assert titles(session, index_dir, "專利申請") == titles(session, index_dir, "专利申请")
    assert titles(session, index_dir, "專利申請")[0] == listings["patent"].title
    assert titles(session, index_dir, "商標註冊") == [listings["trademark"].title]
    # A listing written in traditional characters is found by simplified ones, and the
    # match is highlighted in the original text.
    page = search(session, index_dir, SearchParams(q="计量校准"))
    assert [hit.product.title for hit in page.hits] == [listings["traditional"].title]
    assert "<mark" in page.hits[0].title_html and "計量" in page.hits[0].title_html
    # Full-width letters in a listing and in a query.
    assert listings["pct"].title in titles(session, index_dir, "pct")
    assert listings["pct"].title in titles(session, index_dir, "ＰＣＴ")


@pytest.mark.parametrize("query, key", [
    ("zhuanli", "patent"), ("zhuanli shenqing", "patent"), ("zhuanlishenqing", "patent"),
    ("shangbiao zhuce", "trademark"), ("rongzidanbao", "guarantee"),
    ("zhishichanquan zhiya", "pledge"), ("jiliang jiaozhun", "traditional"),
    ("zlsq", "patent"), ("sbzc", "trademark"), ("rzdb", "guarantee"),
    ("zhuanli 申请", "patent"), ("商标 zhuce", "trademark"),
])
def test_pinyin_and_initials_find_the_chinese_words(session, index_dir, listings, query, key):
    found = titles(session, index_dir, query)
    assert found and found[0] == listings[key].title, found


def test_pinyin_matches_rank_below_exact_chinese_ones(session, index_dir, listings):
    with borrow_searcher(index_dir) as (searcher, snapshot):
        pinyin = build_query(searcher, "zhuanli")
        chinese = build_query(searcher, "专利")
        assert is_group(pinyin.atoms[0]) and chinese.atoms == ["专利"]
        doc = next(iter(snapshot.term_set(searcher, "text", "专利")))
        exact = snapshot.idf(searcher, "专利") * snapshot.term_scores(searcher, "专利")[doc]
        assert 0 < group_scores(snapshot, searcher, pinyin.atoms[0])[doc] < exact
    # The pinyin of a word is highlighted as the word.
    page = search(session, index_dir, SearchParams(q="zhuanli"))
    assert "<mark" in page.hits[0].title_html


def test_a_known_english_word_is_not_read_as_pinyin(session, index_dir, listings):
    with borrow_searcher(index_dir) as (searcher, _snapshot):
        assert build_query(searcher, "guarantee").atoms == ["guarante"]


def test_synonyms_expand_the_query_and_apply_without_a_reindex(session, index_dir, listings):
    assert titles(session, index_dir, "知产") == []
    generation = open_index(index_dir).latest_generation()
    synonyms.create_group(session, None, "知产 | 知识产权 | intellectual property")
    session.commit()
    # (Every listing's provider is a 知识产权 agency; the listing named so comes first.)
    assert titles(session, index_dir, "知产")[0] == listings["pledge"].title
    assert titles(session, index_dir, "知产 质押") == [listings["pledge"].title]
    assert open_index(index_dir).latest_generation() == generation
    # Deleting the group takes it away again at the next search.
    group = synonyms.list_groups(session, "知产")[0]
    synonyms.delete_group(session, None, group.id)
    session.commit()
    assert titles(session, index_dir, "知产") == []


def test_shipped_synonyms_cover_the_field(session, index_dir, listings):
    assert synonyms.seed_shipped(session) >= 20
    session.commit()
    assert synonyms.seed_shipped(session) == 0
    table = synonyms.synonym_map(session)
    for phrase, meaning in [("高企", "高新技术企业"), ("知产", "知识产权"), ("软著", "软件著作权"),
                            ("科小", "科技型中小企业"), ("fto", "freedom to operate"),
                            ("pct", "international patent application"), ("cnas", "cnas认可"),
                            ("cma", "检验检测机构资质认定"), ("科技贷", "科技信贷")]:
        assert meaning in table[phrase], phrase
    assert "专精特新" in table


def test_an_exact_full_term_ranks_before_its_synonyms(session, index_dir, listings):
    org = factories.provider(session)
    english = factories.product(session, org, category_slug="ip-pledge",
                                title="Intellectual property pledge loans, intellectual property")
    session.commit()
    reindex_all(session, index_dir)
    synonyms.create_group(session, None, "知识产权 | intellectual property")
    session.commit()
    found = titles(session, index_dir, "知识产权")
    assert found[0] == listings["pledge"].title and english.title in found


@pytest.mark.parametrize("typo, corrected, key", [
    ("融资担宝", "融资担保", "guarantee"), ("专力申请", "专利申请", "patent"),
    ("商标注测", "商标注册", "trademark"),
])
def test_same_sounding_chinese_typos_are_corrected(session, index_dir, listings, typo,
                                                   corrected, key):
    page = search(session, index_dir, SearchParams(q=typo))
    assert page.corrected == corrected
    assert page.hits and page.hits[0].product.title == listings[key].title
    assert page.params.q == typo  # the search box keeps what was typed


def test_any_of_the_words_keeps_only_the_listings_matching_the_most(session, index_dir,
                                                                    listings):
    # No listing has all three words: the one with two of them is shown, not every listing
    # that mentions just one.
    page = search(session, index_dir, SearchParams(q="专利 申请 量子", verbatim=True))
    assert not page.matched_all
    assert [hit.product.title for hit in page.hits] == [listings["patent"].title]
