"""Public institution pages: directory and provider profiles."""

from flask import Blueprint

bp = Blueprint("providers", __name__)


@bp.get("/institutions")
def directory():
    return "institutions"
