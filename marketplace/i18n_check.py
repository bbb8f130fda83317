"""Catalogue health: which message ids of the code and templates lack a translation.

``python -m marketplace.i18n_check fill LOCALE FILE.json`` (``scripts/i18n fill``) sets the
translations given as a JSON object {message id: text} (a list of texts for plural ids).

``python -m marketplace.i18n_check`` (``scripts/i18n check``) prints, per language, the ids
that are untranslated, fuzzy or missing from its ``messages.po`` and exits 1 if there are
any. The tests call ``catalogue_report`` so a release cannot ship a half-Chinese screen.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
KEYWORDS = {
    "_": None, "gettext": None, "ngettext": (1, 2), "pgettext": ((1, "c"), 2),
    "_l": None, "lazy_gettext": None, "lazy_ngettext": (1, 2),
    "_n": None,  # marked for the catalogue, translated when shown (orders/timeline.py)
}


@dataclass
class Report:
    locale: str
    total: int = 0
    missing: list[str] = field(default_factory=list)  # extracted, not in the .po
    untranslated: list[str] = field(default_factory=list)
    fuzzy: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.untranslated or self.fuzzy)


def extracted_ids(root: Path = ROOT) -> set[str]:
    """Every message id (the singular) that gettext calls in code and templates use."""
    with open(root / "babel.cfg", encoding="utf-8") as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    ids: set[str] = set()
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
            str(root), method_map, options_map, keywords=KEYWORDS):
        ids.add(message[0] if isinstance(message, tuple) else message)
    return ids


def catalogue_report(locale: str, root: Path = ROOT, ids: set[str] | None = None) -> Report:
    ids = extracted_ids(root) if ids is None else ids
    report = Report(locale=locale, total=len(ids))
    path = root / "translations" / locale / "LC_MESSAGES" / "messages.po"
    with open(path, "rb") as handle:
        catalog = read_po(handle, locale=locale)
    for message_id in sorted(ids):
        message = catalog.get(message_id)
        if message is None:
            report.missing.append(message_id)
        elif message.fuzzy:
            report.fuzzy.append(message_id)
        elif not (all(message.string) if isinstance(message.string, tuple)
                  else message.string):
            report.untranslated.append(message_id)
    return report


def fill(locale: str, translations: dict[str, str | list[str]], root: Path = ROOT) -> int:
    """Set the translations of the given ids in ``locale``'s messages.po (clearing "fuzzy");
    ids not in the catalogue yet are added. Returns how many entries changed."""
    from babel.messages.pofile import write_po

    path = root / "translations" / locale / "LC_MESSAGES" / "messages.po"
    with open(path, "rb") as handle:
        catalog = read_po(handle, locale=locale)
    changed = 0
    for message_id, text in translations.items():
        message = catalog.get(message_id)
        if message is None:
            catalog.add(message_id, text if isinstance(text, str) else tuple(text))
            changed += 1
            continue
        if isinstance(message.id, tuple):
            value = tuple(text) if isinstance(text, list) else (text,) * catalog.num_plurals
        else:
            value = text if isinstance(text, str) else text[0]
        if message.string != value or message.fuzzy:
            message.string = value
            message.flags.discard("fuzzy")
            changed += 1
    with open(path, "wb") as handle:
        write_po(handle, catalog, width=100, omit_header=False, sort_output=True,
                 no_location=True)
    return changed


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "fill":
        import json

        with open(sys.argv[3], encoding="utf-8") as handle:
            print(f"{fill(sys.argv[2], json.load(handle))} entries changed")
        return 0
    status = 0
    ids = extracted_ids()
    for locale_dir in sorted((ROOT / "translations").iterdir()):
        if not (locale_dir / "LC_MESSAGES" / "messages.po").exists():
            continue
        report = catalogue_report(locale_dir.name, ids=ids)
        print(f"{report.locale}: {report.total} messages, {len(report.missing)} missing, "
              f"{len(report.untranslated)} untranslated, {len(report.fuzzy)} fuzzy")
        for label, items in (("missing", report.missing), ("untranslated", report.untranslated),
                             ("fuzzy", report.fuzzy)):
            for item in items[:50]:
                print(f"  {label}: {item!r}")
            if len(items) > 50:
                print(f"  ... and {len(items) - 50} more {label}")
        status |= not report.ok
    return int(status)


if __name__ == "__main__":
    sys.exit(main())
