"""Text normalisation and pinyin for search, shared by indexing and querying (issue 18).

- ``to_simplified``: traditional Chinese characters become simplified ones (OpenCC's t2s
  tables via ``opencc-python-reimplemented``), one character for one, so character offsets
  (used for highlighting) stay valid. Applied to every run of Chinese characters before jieba
  segments it, at index and at query time, so "專利申請" and "专利申请" are the same words.
- Full-width forms and case: the analyzer already NFKC-normalises Latin runs (full-width
  "ＰＣＴ" becomes "PCT") and lower-cases every token; ``fold`` does the same to a plain string
  (synonym keys, analytics queries).
- ``pinyin_of`` / ``initials_of``: a Chinese word's toneless pinyin ("zhuanli") and initials
  ("zl"), indexed into separate fields so a pinyin or initials query finds the word.
- ``pinyin_split``: whether (and how) a Latin word reads as a run of pinyin syllables.
"""

from __future__ import annotations

import functools
import re
import threading
import unicodedata

from whoosh.analysis import Filter

_converter = None
_converter_lock = threading.Lock()
# What can make OpenCC change a run at all (see _unchanged_by_t2s): the characters that are
# dictionary keys on their own, and the few phrase keys made only of other characters.
_t2s_chars: frozenset[str] = frozenset()
_t2s_phrases: tuple[str, ...] = ()


def _t2s():
    global _converter, _t2s_chars, _t2s_phrases
    if _converter is None:
        with _converter_lock:
            if _converter is None:
                from opencc import OpenCC

                converter = OpenCC("t2s")
                keys = [key for group in converter._dict_chain_data  # noqa: SLF001
                        for _longest, _shortest, table in group for key in table]
                _t2s_chars = frozenset(key for key in keys if len(key) == 1)
                _t2s_phrases = tuple(key for key in keys if len(key) > 1
                                     and not _t2s_chars.intersection(key))
                _converter = converter
    return _converter


def _unchanged_by_t2s(run: str) -> bool:
    """True when no dictionary key occurs in ``run``, so OpenCC would return it as it is:
    most simplified text, checked in a set lookup per character instead of OpenCC's
    substring search (a fifth of the analysis of a listing). A phrase key holding a
    key character is caught by that character."""
    return _t2s_chars.isdisjoint(run) and not any(p in run for p in _t2s_phrases)


@functools.lru_cache(maxsize=100_000)
def to_simplified(run: str) -> str:
    """``run`` with traditional characters replaced by simplified ones, same length.

    OpenCC converts by phrases; if a phrase conversion ever changed the length, convert
    character by character instead so offsets into the original text stay right.
    """
    if run.isascii():
        return run
    converter = _t2s()
    if _unchanged_by_t2s(run):
        return run
    converted = converter.convert(run)
    if len(converted) == len(run):
        return converted
    return "".join(c if len(c) == 1 else ch for ch, c in zip(run, map(_t2s().convert, run),
                                                              strict=True))


def fold(text: str) -> str:
    """Full-width to half-width (NFKC), traditional to simplified, lower case, single spaces."""
    text = unicodedata.normalize("NFKC", text or "")
    return " ".join(to_simplified(text).lower().split())


_HAN = re.compile("[\u3400-\u9fff\uf900-\ufaff]")


def has_han(text: str) -> bool:
    return _HAN.search(text) is not None


# --------------------------------------------------------------------------- pinyin

@functools.lru_cache(maxsize=100_000)
def _syllables(word: str) -> tuple[str, ...]:
    from pypinyin import Style, lazy_pinyin

    return tuple(s for s in lazy_pinyin(word, style=Style.NORMAL, errors="ignore") if s)


@functools.lru_cache(maxsize=100_000)
def pinyin_of(word: str) -> str:
    """Toneless pinyin of a Chinese word, syllables run together: 专利 -> "zhuanli"."""
    return "".join(_syllables(word))


@functools.lru_cache(maxsize=100_000)
def initials_of(word: str) -> str:
    """First letters of the word's syllables: 专利申请 -> "zlsq"."""
    return "".join(s[0] for s in _syllables(word))


# Toneless Mandarin syllables (ü written v, as pypinyin writes it).
_SYLLABLE_TEXT = """
a ai an ang ao ba bai ban bang bao bei ben beng bi bian biao bie bin bing bo bu ca cai can
cang cao ce cen ceng cha chai chan chang chao che chen cheng chi chong chou chu chua chuai
chuan chuang chui chun chuo ci cong cou cu cuan cui cun cuo da dai dan dang dao de dei den
deng di dia dian diao die ding diu dong dou du duan dui dun duo e ei en eng er fa fan fang
fei fen feng fo fou fu ga gai gan gang gao ge gei gen geng gong gou gu gua guai guan guang
gui gun guo ha hai han hang hao he hei hen heng hong hou hu hua huai huan huang hui hun huo
ji jia jian jiang jiao jie jin jing jiong jiu ju juan jue jun ka kai kan kang kao ke kei
ken keng kong kou ku kua kuai kuan kuang kui kun kuo la lai lan lang lao le lei leng li lia
lian liang liao lie lin ling liu lo long lou lu luan lun luo lv lve ma mai man mang mao me
mei men meng mi mian miao mie min ming miu mo mou mu na nai nan nang nao ne nei nen neng ni
nian niang niao nie nin ning niu nong nou nu nuan nun nuo nv nve o ou pa pai pan pang pao
pei pen peng pi pian piao pie pin ping po pou pu qi qia qian qiang qiao qie qin qing qiong
qiu qu quan que qun ran rang rao re ren reng ri rong rou ru rua ruan rui run ruo sa sai san
sang sao se sen seng sha shai shan shang shao she shei shen sheng shi shou shu shua shuai
shuan shuang shui shun shuo si song sou su suan sui sun suo ta tai tan tang tao te teng ti
tian tiao tie ting tong tou tu tuan tui tun tuo wa wai wan wang wei wen weng wo wu xi xia
xian xiang xiao xie xin xing xiong xiu xu xuan xue xun ya yan yang yao ye yi yin ying yo
yong you yu yuan yue yun za zai zan zang zao ze zei zen zeng zha zhai zhan zhang zhao zhe
zhei zhen zheng zhi zhong zhou zhu zhua zhuai zhuan zhuang zhui zhun zhuo zi zong zou zu
zuan zui zun zuo
"""
_SYLLABLES = frozenset(_SYLLABLE_TEXT.split())
_LONGEST = max(map(len, _SYLLABLES))


@functools.lru_cache(maxsize=10_000)
def pinyin_split(word: str) -> tuple[str, ...] | None:
    """The syllables of ``word`` if it reads as toneless pinyin ("gaoxin" -> gao, xin), else
    None. Of several readings the one with the fewest syllables wins ("xian", not "xi an")."""
    word = word.lower()
    if not word.isascii() or not word.isalpha():
        return None
    best: list[tuple[str, ...] | None] = [None] * (len(word) + 1)
    best[0] = ()
    for end in range(1, len(word) + 1):
        for start in range(max(0, end - _LONGEST), end):
            head = best[start]
            if head is not None and word[start:end] in _SYLLABLES:
                candidate = head + (word[start:end],)
                if best[end] is None or len(candidate) < len(best[end]):
                    best[end] = candidate
    return best[-1]


def split_into_terms(word: str, known, min_piece: int = 1) -> list[str] | None:
    """Cut ``word`` into the fewest pieces that are all ``known`` terms (pieces at least
    ``min_piece`` letters), or None: "xinyongdai" -> ["xinyong", "dai"]."""
    best: list[list[str] | None] = [None] * (len(word) + 1)
    best[0] = []
    for end in range(1, len(word) + 1):
        for start in range(0, end - min_piece + 1):
            head = best[start]
            if head is None:
                continue
            piece = word[start:end]
            if known(piece) and (best[end] is None or len(head) + 1 < len(best[end])):
                best[end] = head + [piece]
    return best[-1]


# --------------------------------------------------------------------------- analysis filters

class PinyinFilter(Filter):
    """Chinese tokens become their toneless pinyin ("zhuanli") or, with ``initials=True``,
    their initials ("zl", words of two characters or more); other tokens are dropped."""

    def __init__(self, initials: bool = False):
        self.initials = initials

    def __eq__(self, other):
        return other.__class__ is self.__class__ and other.initials == self.initials

    def __call__(self, tokens):
        convert = initials_of if self.initials else pinyin_of
        shortest = 2 if self.initials else 1
        for token in tokens:
            word = token.text
            if token.stopped or len(word) < shortest or word.isascii() or not has_han(word):
                continue
            token.text = convert(word)
            if token.text:
                yield token


def pinyin_words(words) -> str:
    """The ``pyword`` field of a document: "pinyin=word" for each Chinese word of two
    characters or more, so a same-sounding typo can be turned back into indexed words."""
    seen = {}
    for word in words:
        if len(word) >= 2 and has_han(word) and word not in seen:
            key = pinyin_of(word)
            if key:
                seen[word] = f"{key}={word}"
    return " ".join(seen.values())


_warmed = threading.Event()


def warm_up_in_background() -> None:
    """Load OpenCC's tables and pypinyin's dictionary (about a second together) in a
    background thread when a process first opens the index, so the first pinyin or typo
    query of a worker does not wait for them."""
    if _warmed.is_set():
        return
    _warmed.set()

    def load():
        to_simplified("專")
        _syllables("专利")

    threading.Thread(target=load, name="search-text-warm-up", daemon=True).start()
