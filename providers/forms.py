"""Forms of the institution portal, the team pages and the staff review screens.

Forms parse what the user typed (yuan amounts, percentages, tags) and report problems under
the field they concern; rules that need the database live in the services, whose RuleError
the views attach to the same fields.
"""

import datetime
from decimal import Decimal

from flask_babel import LazyString
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    EmailField,
    FieldList,
    Form,
    FormField,
    IntegerField,
    PasswordField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import (
    DataRequired,
    Email,
    EqualTo,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
    ValidationError,
)

from marketplace import reference
from marketplace.credit_code import CreditCodeError
from marketplace.credit_code import validate as validate_credit_code
from marketplace.i18n import local_text
from orders.money import MoneyError, format_amount, parse_amount
from providers import listings
from providers.errors import RuleError
from providers.models import DOCUMENT_KINDS


def _strip(value):
    return value.strip() if isinstance(value, str) else value


def _int_or_none(value):
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


try:  # WTForms 3.3+ deprecates plain tuples as choices.
    from wtforms import SelectChoice
except ImportError:  # pragma: no cover - older WTForms
    SelectChoice = None


def _choices(pairs) -> list:
    pairs = list(pairs)
    return pairs if SelectChoice is None else [SelectChoice(value, label) for value, label in pairs]


def _local_choices(rows) -> list:
    """(code, label) for reference rows (code, en, zh), the label in the viewer's language."""
    return [(code, LazyString(local_text, en, zh)) for code, en, zh in rows]


PHONE = Regexp(r"^\+?[0-9][0-9 ()\-]{5,24}$",
               message=_l("Enter a phone number with digits only (spaces, dashes and a leading + "
                          "are fine)."))


class _Reference(SelectMultipleField):
    """Multi-choice of reference codes (rendered as checkboxes by the templates)."""


# --------------------------------------------------------------------------- institution

class InstitutionForm(FlaskForm):
    name = StringField(_l("Legal name"), filters=[_strip],
                       validators=[DataRequired(_l("Enter the institution's registered name.")),
                                   Length(min=2, max=200)],
                       description=_l("As on the business licence, e.g. 苏州某某知识产权代理有限公司."))
    credit_code = StringField(
        _l("Unified social credit code"), filters=[_strip], validators=[Optional()],
        description=_l("18 characters, on the business licence."),
        render_kw={"maxlength": 22, "spellcheck": "false", "autocapitalize": "characters"})
    institution_type = SelectField(
        _l("Institution type"),
        choices=_choices([("", _l("Choose a type…")), *_local_choices(reference.INSTITUTION_TYPES)]),
        validators=[DataRequired(_l("Choose the kind of institution."))])
    regions_served = _Reference(_l("Regions served"), choices=_choices(_local_choices(reference.REGIONS)),
                                validators=[DataRequired(_l("Choose at least one region you serve."))])
    description = TextAreaField(
        _l("Service description"), filters=[_strip],
        validators=[Length(max=listings.MAX_DESCRIPTION)],
        description=_l("Markdown: **bold**, lists, links and tables. Shown on your public profile."),
        render_kw={"rows": 8})
    website = StringField(_l("Website"), filters=[_strip],
                          validators=[Optional(), Length(max=300),
                                      Regexp(r"^https?://[^\s]+$",
                                             message=_l("Enter a web address starting with https://"))])
    founded_year = IntegerField(
        _l("Year founded"), validators=[Optional(), NumberRange(
            min=1900, max=datetime.date.today().year, message=_l("Enter a year like 2012."))])
    contact_name = StringField(_l("Contact person"), filters=[_strip],
                               validators=[DataRequired(_l("Tell us who staff should contact.")),
                                           Length(max=100)])
    contact_phone = StringField(_l("Contact phone"), filters=[_strip],
                                validators=[DataRequired(_l("Enter a phone number.")), PHONE],
                                render_kw={"inputmode": "tel"})
    contact_email = EmailField(_l("Contact email"), filters=[_strip],
                               validators=[DataRequired(_l("Enter a contact email address.")),
                                           Email(_l("Enter a valid email address.")), Length(max=254)])
    logo = FileField(_l("Logo"), description=_l("PNG or JPEG, at most 2 MB. Shown on your profile "
                                                "and listings."))

    def validate_credit_code(self, field):
        if field.data:
            try:
                field.data = validate_credit_code(field.data)
            except CreditCodeError as exc:
                raise ValidationError(str(exc)) from exc


class DocumentForm(FlaskForm):
    kind = SelectField(_l("Document"), choices=_choices([("", _l("What is this document?")),
                                                     *DOCUMENT_KINDS.items()]),
                       validators=[DataRequired(_l("Choose what kind of document this is."))])
    file = FileField(_l("File"), validators=[FileRequired(_l("Choose a file to upload."))],
                     description=_l("PDF, PNG or JPEG, at most 5 MB."),
                     render_kw={"accept": ".pdf,.png,.jpg,.jpeg,application/pdf,image/png,"
                                          "image/jpeg"})


class ReasonForm(FlaskForm):
    """Staff decisions and institution actions that carry a note or reason."""

    reason = TextAreaField(_l("Reason"), filters=[_strip], validators=[Length(max=2000)],
                           render_kw={"rows": 3})


class EmptyForm(FlaskForm):
    """Buttons that only need the CSRF token."""


# --------------------------------------------------------------------------- team

class InviteForm(FlaskForm):
    email = EmailField(_l("Email address"), filters=[_strip],
                       validators=[DataRequired(_l("Enter the colleague's email address.")),
                                   Email(_l("Enter a valid email address.")), Length(max=254)],
                       render_kw={"placeholder": _l("colleague@institution.cn")})


class JoinCodeForm(FlaskForm):
    code = StringField(_l("Invitation code"), filters=[_strip],
                       validators=[DataRequired(_l("Enter the invitation code.")), Length(max=200)],
                       render_kw={"autocomplete": "off", "spellcheck": "false"})


class JoinSignupForm(FlaskForm):
    full_name = StringField(_l("Your name"), filters=[_strip],
                            validators=[DataRequired(_l("Enter your name.")), Length(max=100)],
                            render_kw={"autocomplete": "name"})
    phone = StringField(_l("Phone"), filters=[_strip], validators=[Optional(), PHONE],
                        render_kw={"autocomplete": "tel", "inputmode": "tel"})
    email = EmailField(_l("Email"), filters=[lambda v: v.strip().lower() if isinstance(v, str) else v],
                       validators=[DataRequired(_l("Enter your email address.")),
                                   Email(_l("Enter a valid email address.")), Length(max=254)],
                       description=_l("You will log in with this address."),
                       render_kw={"autocomplete": "email"})
    password = PasswordField(_l("Password"), validators=[InputRequired(_l("Choose a password."))],
                             description=_l("At least 10 characters, with letters and digits."),
                             render_kw={"autocomplete": "new-password"})
    confirm = PasswordField(_l("Confirm password"),
                            validators=[InputRequired(_l("Type the password again.")),
                                        EqualTo("password", _l("The two passwords do not match."))],
                            render_kw={"autocomplete": "new-password"})
    accept_terms = BooleanField(_l("I accept the platform rules"),
                                validators=[DataRequired(_l("Please accept the platform rules."))])


# --------------------------------------------------------------------------- listings

class PackageForm(Form):
    name = StringField(_l("Package name"), filters=[_strip], validators=[Length(max=60)])
    price = StringField(_l("Price (¥)"), filters=[_strip], render_kw={"inputmode": "decimal"})
    delivery_days = StringField(_l("Delivery (days)"), filters=[_strip],
                                render_kw={"inputmode": "numeric"})
    deliverables = TextAreaField(_l("Deliverables"), filters=[_strip],
                                 description=_l("One per line."), render_kw={"rows": 3})

    @property
    def blank(self) -> bool:
        return not any((self.name.data, self.price.data, self.delivery_days.data,
                        self.deliverables.data))


class ListingForm(FlaskForm):
    category_id = SelectField(_l("Category"), coerce=_int_or_none, validate_choice=False,
                              validators=[InputRequired(_l("Choose a sub-category."))])
    title = StringField(_l("Title"), filters=[_strip],
                        validators=[DataRequired(_l("Give the listing a title.")),
                                    Length(min=5, max=200)],
                        render_kw={"maxlength": 200})
    summary = TextAreaField(_l("Summary"), filters=[_strip],
                            validators=[DataRequired(_l("Write a one- or two-sentence summary.")),
                                        Length(min=10, max=500)],
                            description=_l("Shown on listing cards and in search results."),
                            render_kw={"rows": 2, "maxlength": 500})
    description = TextAreaField(
        _l("Description"), filters=[_strip], validators=[Length(max=listings.MAX_DESCRIPTION)],
        description=_l("Markdown: ## headings, **bold**, - lists, [links](https://…), tables."),
        render_kw={"rows": 12})
    regions = _Reference(_l("Service regions"), choices=_choices(_local_choices(reference.REGIONS)),
                         validators=[DataRequired(_l("Choose at least one region."))])
    tags = StringField(_l("Tags"), filters=[_strip],
                       description=_l("Comma-separated, up to 10, e.g. patent, 专利, SME."))
    delivery_days = IntegerField(
        _l("Typical delivery time (days)"),
        validators=[Optional(), NumberRange(min=1, max=730, message=_l("1 to 730 days."))])
    voucher_eligible = BooleanField(_l("Innovation vouchers accepted"))
    pricing_mode = RadioField(
        _l("Pricing"), default="packaged",
        choices=_choices([("packaged", _l("Packaged price — one to three packages")),
                          ("quote", _l("Quote on request — the buyer describes the need")),
                          ("financial", _l("Financial product — amount, rate and term ranges"))]),
        validators=[InputRequired(_l("Choose how the service is priced."))])
    packages = FieldList(FormField(PackageForm), min_entries=3, max_entries=3)
    quote_brief = TextAreaField(
        _l("What the buyer must describe"), filters=[_strip], validators=[Length(max=4000)],
        description=_l("E.g. the technology, the target markets, the deadline."),
        render_kw={"rows": 4})
    amount_min = StringField(_l("Amount from (¥)"), filters=[_strip],
                             render_kw={"inputmode": "decimal", "placeholder": "500,000.00"})
    amount_max = StringField(_l("Amount to (¥)"), filters=[_strip],
                             render_kw={"inputmode": "decimal", "placeholder": "5,000,000.00"})
    rate_min = StringField(_l("Annual rate from (%)"), filters=[_strip],
                           render_kw={"inputmode": "decimal", "placeholder": "3.45"})
    rate_max = StringField(_l("Annual rate to (%)"), filters=[_strip],
                           render_kw={"inputmode": "decimal", "placeholder": "4.80"})
    term_min_months = IntegerField(_l("Term from (months)"),
                                   validators=[Optional(), NumberRange(min=1, max=600)])
    term_max_months = IntegerField(_l("Term to (months)"),
                                   validators=[Optional(), NumberRange(min=1, max=600)])
    service_fee = StringField(_l("Service fee (¥)"), filters=[_strip],
                              description=_l("What the buyer pays the institution; 0 if none."),
                              render_kw={"inputmode": "decimal", "placeholder": "0.00"})

    def __init__(self, *args, category_choices=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.category_groups = list(category_choices)
        self.category_ids = {value for _group, options in self.category_groups
                             for value, _label in options}
        self.category_id.choices = _choices((value, label) for _group, options
                                            in self.category_groups for value, label in options)
        self._data: listings.ListingData | None = None
        self.package_errors: list[str] = []

    # -- parsing ---------------------------------------------------------------

    @staticmethod
    def _amount(field, required=True) -> int | None:
        if not field.data:
            if required:
                field.errors.append(_("Enter an amount in yuan, like 5,000.00."))
            return None
        try:
            return parse_amount(field.data, "CNY")
        except MoneyError as exc:
            field.errors.append(_("%(error)s. Enter an amount in yuan, like 5,000.00.", error=exc))
            return None

    @staticmethod
    def _rate(field) -> int | None:
        if not field.data:
            field.errors.append(_("Enter a rate in percent, like 3.85."))
            return None
        try:
            return listings.parse_percent(field.data)
        except ValueError as exc:
            field.errors.append(str(exc))
            return None

    def _packages(self) -> list[listings.PackageData]:
        result = []
        for entry in self.packages.entries:
            sub = entry.form
            if sub.blank:
                continue
            if not sub.name.data:
                sub.name.errors.append(_("Name this package."))
            price = self._amount(sub.price)
            days = _int_or_none(sub.delivery_days.data)
            if days is None or not 1 <= days <= 730:
                sub.delivery_days.errors.append(_("1 to 730 days."))
            if sub.name.data and price is not None and days is not None:
                result.append(listings.PackageData(sub.name.data, price, days,
                                                   sub.deliverables.data or ""))
        if not result and not self._package_problems():
            self.package_errors.append(_("Describe at least one package (name, price and "
                                         "delivery time)."))
        return result

    def _package_problems(self) -> bool:
        return any(sub.errors for entry in self.packages.entries
                   for sub in (entry.form.name, entry.form.price, entry.form.delivery_days))

    def has_errors(self) -> bool:
        return bool(self.form_errors or self.package_errors or self._package_problems()
                    or any(f.errors for name, f in self._fields.items() if name != "packages"))

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        mode = self.pricing_mode.data
        data = {"packages": [], "quote_brief": None}
        if mode == "packaged":
            data["packages"] = self._packages()
        elif mode == "quote":
            if not self.quote_brief.data:
                self.quote_brief.errors.append(_("Tell buyers what they must describe."))
            data["quote_brief"] = self.quote_brief.data
        elif mode == "financial":
            data.update(amount_min=self._amount(self.amount_min),
                        amount_max=self._amount(self.amount_max),
                        rate_min_bp=self._rate(self.rate_min), rate_max_bp=self._rate(self.rate_max),
                        term_min_months=self.term_min_months.data,
                        term_max_months=self.term_max_months.data,
                        service_fee=self._amount(self.service_fee))
            for name in ("term_min_months", "term_max_months"):
                if getattr(self, name).data is None and not getattr(self, name).errors:
                    getattr(self, name).errors.append(_("Enter a number of months."))
        try:
            tags = listings.parse_tags(self.tags.data)
        except RuleError as exc:
            self.tags.errors.append(exc.message)
            tags = []
        if self.category_id.data not in self.category_ids:
            self.category_id.errors = [_("Choose a sub-category.")]
        if not ok or self.has_errors():
            return False
        self._data = listings.ListingData(
            category_id=self.category_id.data, title=self.title.data, summary=self.summary.data,
            description=self.description.data or "", regions=list(self.regions.data or []),
            tags=tags, delivery_days=self.delivery_days.data,
            voucher_eligible=bool(self.voucher_eligible.data), pricing_mode=mode, **data)
        return True

    @property
    def listing_data(self) -> listings.ListingData:
        assert self._data is not None, "validate the form first"
        return self._data

    def attach(self, error: RuleError) -> None:
        """Show a service refusal under its field (or above the form)."""
        if error.field == "packages":
            self.package_errors.append(error.message)
            return
        target = getattr(self, error.field or "", None)
        if target is None or error.field == "packages":
            self.form_errors.append(error.message)
        elif isinstance(target.errors, list):
            target.errors.append(error.message)
        else:
            target.errors = [error.message]

    # -- prefilling ------------------------------------------------------------

    def fill(self, data: listings.ListingData) -> None:
        """Put a snapshot into the form (for GET of the edit page)."""
        def money(amount):
            return "" if amount is None else format_amount(amount, "CNY", symbol=False)

        def percent(bp):
            return "" if bp is None else f"{Decimal(bp).scaleb(-2):.2f}"

        self.category_id.data = data.category_id
        self.title.data, self.summary.data = data.title, data.summary
        self.description.data = data.description
        self.regions.data = list(data.regions)
        self.tags.data = ", ".join(data.tags)
        self.delivery_days.data = data.delivery_days
        self.voucher_eligible.data = data.voucher_eligible
        self.pricing_mode.data = data.pricing_mode
        for entry, package in zip(self.packages.entries, data.packages, strict=False):
            entry.form.name.data = package.name
            entry.form.price.data = money(package.price)
            entry.form.delivery_days.data = str(package.delivery_days)
            entry.form.deliverables.data = package.deliverables
        self.quote_brief.data = data.quote_brief
        self.amount_min.data, self.amount_max.data = money(data.amount_min), money(data.amount_max)
        self.rate_min.data, self.rate_max.data = percent(data.rate_min_bp), percent(data.rate_max_bp)
        self.term_min_months.data = data.term_min_months
        self.term_max_months.data = data.term_max_months
        self.service_fee.data = money(data.service_fee)
