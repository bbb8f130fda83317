"""Input bounds enforced at the edge, once for the whole site (issue 16):

- **ids**: every ``<int:...>`` URL variable is at most 2**31 - 1 (PostgreSQL ``integer``), so
  ``/orders/99999999999999999999`` is a 404 instead of an overflow in the database driver;
  ``bounded_id()`` does the same for ids sent in forms and query strings;
- **control characters**: every text field of every WTForms form refuses NUL and the other
  C0 control characters except tab and line breaks (PostgreSQL cannot store NUL, and no
  person types them), with a form error under the field. (Search already reads a query with
  a NUL as an ordinary one.)

Amount bounds live with the money rules (``orders.money.MAX_AMOUNT``).
"""

from __future__ import annotations

import re

from flask_wtf import FlaskForm
from werkzeug.routing import IntegerConverter
from wtforms import StringField
from wtforms.validators import StopValidation

MAX_ID = 2**31 - 1
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
CONTROL_MESSAGE = "Remove the invisible control characters (such as NUL) from this text."


class BoundedIntegerConverter(IntegerConverter):
    """``<int:...>`` that matches only ids a database integer column can hold."""

    def __init__(self, map, fixed_digits=0, min=None, max=MAX_ID, signed=False):  # noqa: A002
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def bounded_id(value) -> int | None:
    """``value`` as a positive database id, or None when it cannot be one."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if 0 < number <= MAX_ID else None


def no_control_characters(form, field) -> None:
    data = field.data
    if isinstance(data, str) and CONTROL_CHARACTERS.search(data):
        field.errors[:] = []
        raise StopValidation(CONTROL_MESSAGE)


_original_bind_field = FlaskForm.Meta.bind_field


def _bind_field(self, form, unbound_field, options):
    field = _original_bind_field(self, form, unbound_field, options)
    if isinstance(field, StringField):  # text, text areas, passwords, emails, amounts...
        # A new list: the unbound field's validators are shared by every instance.
        field.validators = [no_control_characters, *field.validators]
    return field


def install_form_filter() -> None:
    """Every FlaskForm's text fields refuse control characters (idempotent)."""
    FlaskForm.Meta.bind_field = _bind_field


def register_converters(app) -> None:
    """Call before any blueprint is registered: rules pick their converter when added."""
    app.url_map.converters["int"] = BoundedIntegerConverter


def register(app) -> None:
    install_form_filter()
