"""The one way CSV leaves the site: every cell neutralised against formula injection.

A spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and, in some, a
tab or carriage return first) as a formula: an organisation named ``=HYPERLINK(...)`` in a
settlement export would run on the staff member's machine. Such text cells get a leading
apostrophe (OWASP's advice), which spreadsheets show as plain text. Numbers stay numbers,
including a negative amount written as text ("-12.50").
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"^[+-]?\d+(?:[.,]\d+)*$")


def safe_cell(value):
    """``value`` as a spreadsheet will read it harmlessly."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) \
            and not _PLAIN_NUMBER.match(value):
        return "'" + value
    return value


def csv_text(rows: Iterable[Iterable]) -> str:
    """CSV text (CRLF line ends) of ``rows``, every cell through ``safe_cell``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in rows:
        writer.writerow([safe_cell(cell) for cell in row])
    return buffer.getvalue()
