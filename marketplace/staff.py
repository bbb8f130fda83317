"""The staff blueprint's landing page, /staff: the monitors' console dashboard
(``marketplace.console``); its overview figures are ``console_service.overview``."""


from flask import Blueprint

from marketplace.console import dashboard_page
from marketplace.permissions import staff_required

bp = Blueprint("staff", __name__, url_prefix="/staff")

@bp.get("")
@staff_required
def console():
    """The monitors' console dashboard (marketplace/console.py), with the overview figures."""
    return dashboard_page()
