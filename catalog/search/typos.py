"""Typo correction for queries that find little (issue 18).

- Latin words: respelt from the index's own vocabulary (``suggest_correction`` in
  catalog.search.query, Whoosh's corrector over the ``spell`` field).
- Chinese: a word typed with a same-sounding character ("融资担宝", "专力申请") is replaced by
  the indexed word with the same pinyin ("融资担保", "专利申请"), found through the ``pyword``
  field ("danbao=担保") that indexing fills.

``correct_chinese`` returns the corrected query text, or None when it has nothing better.
``catalog.search.query.search`` runs both corrections when the original query found fewer
than ``FEW_RESULTS`` listings (or only "any of the words"), shows its results when they are
more, and says so ("showing results for …, search instead for …").
"""

from __future__ import annotations

import re

from catalog.search.expand import Vocabulary
from catalog.search.text import has_han, pinyin_of, to_simplified

FEW_RESULTS = 3
_HAN_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_MAX_CHUNK = 6
_KEEP_CHAR_COST = 1.5  # a character left as typed costs more than one corrected word


def correct_chinese_run(run: str, vocabulary: Vocabulary) -> str:
    """``run`` cut into indexed words where possible, same-sounding words replacing chunks
    the index does not hold; characters nothing explains are kept as typed."""
    run = to_simplified(run)
    size = len(run)
    best: list[tuple[float, str] | None] = [None] * (size + 1)
    best[0] = (0.0, "")
    for end in range(1, size + 1):
        for start in range(max(0, end - _MAX_CHUNK), end):
            head = best[start]
            if head is None:
                continue
            chunk = run[start:end]
            options = []
            if len(chunk) == 1:
                options.append((_KEEP_CHAR_COST, chunk))
            elif vocabulary.has("text", chunk):
                options.append((0.0, chunk))
            else:
                sounds = vocabulary.pinyin_words(pinyin_of(chunk))
                same_length = [w for w in sounds if len(w) == len(chunk)]
                if same_length:
                    options.append((1.0, same_length[0]))
            for cost, text in options:
                candidate = (head[0] + cost, head[1] + text)
                if best[end] is None or candidate[0] < best[end][0]:
                    best[end] = candidate
    return best[size][1] if best[size] else run


def correct_chinese(searcher, text: str) -> str | None:
    if not has_han(text):
        return None
    vocabulary = Vocabulary(searcher)
    corrected = _HAN_RUN.sub(lambda m: correct_chinese_run(m.group(0), vocabulary), text)
    return corrected if corrected != text and corrected != to_simplified(text) else None
