"""Contract PDFs: the HTML template (templates/contracts/contract.html) printed by WeasyPrint.

Why WeasyPrint: it lays out real HTML and CSS (paged media: page size, margins, running
footers with page numbers) with Pango, so Chinese text is shaped and broken correctly with a
CJK font from Debian (fonts-wqy-microhei, or Noto CJK when installed), and it subsets the
font into the PDF, so the file opens the same everywhere. It needs no browser process
(unlike printing with Chromium) and no licence (it is BSD). ReportLab would mean drawing the
contract in Python instead of a template staff and lawyers can read.

Chinese is the binding text; ``language="en"`` renders a reading copy in English from the
same terms. ``signed=True`` adds the signature page: both signatures and the SHA-256 of the
exact PDF each side confirmed.
"""

from datetime import timedelta, timezone

from flask import current_app

from marketplace.config import ROOT
from orders.paperwork_models import CONTRACT_TYPES, OWNERSHIP_CHOICES, SIDE_LABELS, Contract

BEIJING = timezone(timedelta(hours=8), "CST")  # China keeps one offset all year


def contract_html(contract: Contract, *, language: str = "zh", signed: bool = False) -> str:
    index = 0 if language == "zh" else 1
    terms = contract.terms
    template = current_app.jinja_env.get_template("contracts/contract.html")
    return template.render(
        contract=contract, t=terms, zh=language == "zh", signed=signed,
        type_label=CONTRACT_TYPES[contract.contract_type][index],
        ownership_label=OWNERSHIP_CHOICES[contract.ownership][index],
        side_labels={side: labels[index] for side, labels in SIDE_LABELS.items()},
        signatures=sorted(contract.signatures, key=lambda s: 0 if s.side == "buyer" else 1),
        beijing=lambda moment: moment.astimezone(BEIJING),
    )


def render_contract(contract: Contract, *, language: str = "zh", signed: bool = False) -> bytes:
    from weasyprint import CSS, HTML

    html = contract_html(contract, language=language, signed=signed)
    # No base_url: the document loads nothing from outside (fonts come from fontconfig). The
    # stylesheet is a file of its own: templates hold no <style> (the CSP test reads them).
    stylesheet = CSS(filename=str(ROOT / "templates" / "contracts" / "contract_pdf.css"))
    return HTML(string=html).write_pdf(stylesheets=[stylesheet])
