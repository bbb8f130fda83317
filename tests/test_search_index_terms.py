"""Documents carry pre-analysed terms (catalog/search/index.py document_for): each part of a
listing is analysed once and its terms repeated by weight, instead of analysing a text made of
the repeated parts. These tests hold the two to the same postings, term by term, with the
same frequencies, weights and field lengths, so BM25 scores and every search stay the same."""

from collections import Counter
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from sqlalchemy.orm import Session

from catalog.search.index import document_for, document_parts, load_products
from catalog.search.schema import FIELD_WEIGHTS, PINYIN_WEIGHTS, _segment_raw, make_schema
from catalog.search.text import pinyin_words
from marketplace.database import make_engine
from marketplace.demo.catalogue import DEFAULT_SEED, load_demo_data
from marketplace.migrate import upgrade

TEXT_FIELDS = ("text", "title", "spell", "pinyin", "initials")


def repeated_text_document(parts: dict[str, str]) -> dict[str, str]:
    """The text fields as they were built before: parts repeated ``weight`` times in one
    string per field, left to the field's analyzer."""
    def repeated(weights):
        return "\n".join(part for name, weight in weights.items()
                         for part in [parts[name]] * weight if part)

    return {
        "text": repeated(FIELD_WEIGHTS),
        "title": parts["title"],
        "spell": " ".join([parts["title"], parts["summary"], parts["tags"], parts["category"]]),
        "pinyin": repeated(PINYIN_WEIGHTS),
        "initials": repeated(PINYIN_WEIGHTS),
        "pyword": pinyin_words(word for word, _s, _e in _segment_raw(
            " ".join([parts["title"], parts["tags"], parts["category"]]))),
    }


def postings(schema, fieldname: str, value) -> Counter:
    """(term, frequency, weight, encoded value) of each term Whoosh would index."""
    return Counter(schema[fieldname].index(value))


def assert_same_postings(product) -> None:
    schema = make_schema()
    document = document_for(product)
    reference = repeated_text_document(document_parts(product))
    for fieldname in TEXT_FIELDS:
        assert postings(schema, fieldname, document[fieldname]) == \
            postings(schema, fieldname, reference[fieldname]), (product.title, fieldname)
        # The field length BM25 normalises by: the number of indexed tokens.
        assert sum(freq for _t, freq, _w, _v in schema[fieldname].index(document[fieldname])) \
            == sum(freq for _t, freq, _w, _v in schema[fieldname].index(reference[fieldname]))
    assert document["pyword"] == reference["pyword"]


def listing(**overrides):
    top = SimpleNamespace(id=1, name="Intellectual property", name_zh="知识产权", parent=None)
    sub = SimpleNamespace(id=2, name="Patent application", name_zh="专利申请", parent=top)
    provider = SimpleNamespace(id=7, name="姑苏专利事务所 Gusu Patent Partners",
                               institution_type="ip_agency", credibility_score=80)
    values = dict(
        id=1, title="发明专利申请代理", title_alt="Invention patent filing", summary="",
        summary_alt=None, description="", tags=[], regions=["suzhou_sip", "kunshan"],
        pricing_mode="packaged", price_from=500000, voucher_eligible=True, sales_count=3,
        rating_average=4.5, published_at=datetime(2026, 1, 1, tzinfo=UTC), created_at=None,
        provider=provider, category=sub,
    )
    values.update(overrides)
    return SimpleNamespace(**values)


@pytest.mark.parametrize("overrides", [
    {},
    # English with stop words, plurals and punctuation; a stemmed and an unstemmed form.
    {"title": "The applications of patents, and the searching of them", "title_alt": None,
     "summary": "We file your PCT applications for you: fast, cheap & on time."},
    # Traditional characters (read as simplified), full-width Latin, digits.
    {"title": "專利申請與商標註冊", "summary": "ＰＣＴ國際申請 ISO9001 認證 5G 3C",
     "tags": ["專利", "PCT", "高企"]},
    # Markdown description, longer than the segmentation cache's limit, repeated words.
    {"description": "## 服务内容\n\n* **专利检索** and [analysis](https://example.cn)\n"
                    + "专利导航分析报告，包括技术路线和竞争对手。Patent landscape report. " * 12},
    # Empty parts everywhere but the title; no region.
    {"title": "科技贷", "title_alt": None, "regions": [], "tags": None, "description": None},
    # Pinyin-looking and one-letter Latin words, stop words in Chinese.
    {"title": "zhuanli 专利 的 与 和 a b c gaoxin", "tags": ["zl", "高新技术企业认定"]},
])
def test_pre_analysed_terms_index_like_the_repeated_text(overrides):
    assert_same_postings(listing(**overrides))


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("index-terms")
    url = f"sqlite:///{folder / 'demo.sqlite'}"
    upgrade(url)
    engine = make_engine(url)
    with Session(bind=engine, expire_on_commit=False) as session:
        load_demo_data(session, seed=DEFAULT_SEED)
        session.commit()
        yield session
    engine.dispose()


def test_every_demo_listing_indexes_like_the_repeated_text(demo):
    products = load_products(demo)
    assert len(products) > 300
    for product in products:
        assert_same_postings(product)


def test_text_without_traditional_characters_skips_opencc_and_reads_the_same():
    """to_simplified returns a run OpenCC could not change without converting it; every
    dictionary key, alone and inside simplified text, still converts as OpenCC does."""
    from opencc import OpenCC

    from catalog.search import text

    opencc = OpenCC("t2s")
    text.to_simplified.cache_clear()
    text._t2s()
    keys = [key for group in opencc._dict_chain_data for _l, _s, table in group
            for key in table]
    assert len(keys) > 4000 and text._t2s_phrases  # e.g. 沈默, made of no key characters
    samples = ["发明专利申请代理", "科技型中小企业信用贷款", "知识产权质押融资", "有序发展"]
    samples += keys + [f"专利{key}申请" for key in keys[::7]]
    samples += [f"技术{phrase}转移" for phrase in text._t2s_phrases]
    for sample in samples:
        assert text.to_simplified(sample) == opencc.convert(sample), sample
    assert text._unchanged_by_t2s("科技型中小企业信用贷款")
    assert not text._unchanged_by_t2s("專利") and not text._unchanged_by_t2s("历史沈默")
