"""The test-only pseudo-locale: every translated message comes out wrapped in ⟦…⟧.

A page rendered in it shows at a glance which texts went through gettext: anything a person
can read that is neither wrapped nor data (names, titles, amounts, dates) was missed.
``compile_catalogues`` compiles the committed catalogues and this one into a directory the
test app loads translations from, so tests never depend on .mo files in the work tree.
"""

from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from marketplace.i18n_check import ROOT, extracted_ids

# A real Babel locale (dates and numbers format as in English) that no person would pick.
PSEUDO_LOCALE = "en_001"
OPEN, CLOSE = "⟦", "⟧"


def wrap(text: str) -> str:
    return f"{OPEN}{text}{CLOSE}"


def _write(catalog: Catalog, directory: Path) -> None:
    target = directory / str(catalog.locale) / "LC_MESSAGES"
    target.mkdir(parents=True, exist_ok=True)
    with open(target / "messages.mo", "wb") as handle:
        write_mo(handle, catalog)


def pseudo_catalog(ids: set[str] | None = None) -> Catalog:
    catalog = Catalog(locale=PSEUDO_LOCALE)
    plurals = _plural_ids()
    for message_id in sorted(ids if ids is not None else extracted_ids()):
        if message_id in plurals:
            plural = plurals[message_id]
            catalog.add((message_id, plural), (wrap(message_id), wrap(plural)))
        else:
            catalog.add(message_id, wrap(message_id))
    return catalog


def _plural_ids() -> dict[str, str]:
    """Singular -> plural id of every ngettext message (from the zh catalogue)."""
    path = ROOT / "translations" / "zh_Hans_CN" / "LC_MESSAGES" / "messages.po"
    with open(path, "rb") as handle:
        catalog = read_po(handle)
    return {m.id[0]: m.id[1] for m in catalog if isinstance(m.id, tuple)}


def compile_catalogues(directory: Path) -> Path:
    for po in (ROOT / "translations").glob("*/LC_MESSAGES/messages.po"):
        with open(po, "rb") as handle:
            _write(read_po(handle, locale=po.parent.parent.name), directory)
    _write(pseudo_catalog(), directory)
    return directory
