"""Forms of the buying pages (Flask-WTF; CSRF stays on everywhere)."""

import secrets
from datetime import date

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import MultipleFileField
from wtforms import (
    DateField,
    HiddenField,
    IntegerField,
    RadioField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, Regexp
from wtforms.validators import ValidationError as WTFValidationError

from orders.money import MoneyError, parse_amount, parse_share

try:  # WTForms 3.3+ deprecates plain tuples as choices.
    from wtforms import SelectChoice
except ImportError:  # pragma: no cover - older WTForms
    SelectChoice = None


def choices(pairs) -> list:
    pairs = list(pairs)
    return pairs if SelectChoice is None else [SelectChoice(value, label) for value, label in pairs]


class AmountField(StringField):
    """A money amount typed in major units ("12,500.00"), parsed to minor units."""

    def __init__(self, *args, currency: str = "CNY", **kwargs):
        super().__init__(*args, **kwargs)
        self.currency = currency
        self.amount: int | None = None

    def pre_validate(self, form):
        self.amount = None
        if self.data in (None, ""):
            return
        try:
            self.amount = parse_amount(self.data, self.currency)
        except MoneyError as exc:
            raise WTFValidationError(str(exc)) from None


class ShareField(StringField):
    """A percentage ("30", "12.5") parsed to basis points."""

    def pre_validate(self, form):
        self.share: int | None = None
        if self.data in (None, ""):
            return
        try:
            self.share = parse_share(self.data)
        except MoneyError as exc:
            raise WTFValidationError(str(exc)) from None


class TestCardForm(FlaskForm):
    """Card entry for the localstripe test mode only (see orders.stripe_gateway)."""

    class Meta:
        csrf = False  # part of a larger form that carries the token

    card_number = StringField(_l("Card number"), validators=[
        DataRequired(_l("Enter the card number.")),
        Regexp(r"^[0-9 ]{16,19}$", message=_l("A card number has 16 digits."))],
        default="4242 4242 4242 4242")
    card_expiry = StringField(_l("Expiry (MM/YY)"), validators=[
        DataRequired(_l("Enter the expiry date.")),
        Regexp(r"^(0[1-9]|1[0-2])\s*/\s*[0-9]{2}$", message=_l("Use MM/YY, e.g. 12/30."))],
        default="12/30")
    card_cvc = StringField(_l("CVC"), validators=[
        DataRequired(_l("Enter the CVC.")), Regexp(r"^[0-9]{3}$", message=_l("The CVC has 3 digits."))],
        default="123")

    def card(self):
        from orders.payments import TestCard

        month, year = (part.strip() for part in self.card_expiry.data.split("/"))
        return TestCard(number=self.card_number.data.replace(" ", ""), exp_month=int(month),
                        exp_year=2000 + int(year), cvc=self.card_cvc.data)


class MilestoneForm(FlaskForm):
    title = StringField(_l("Milestone"), validators=[DataRequired(_l("Give the milestone a title.")),
                                                 Length(max=200)])
    share = ShareField(_l("Share of the price (%)"), validators=[DataRequired(_l("Enter a share."))])
    due_date = DateField(_l("Due date"), validators=[Optional()])


class ProgressForm(FlaskForm):
    percent = IntegerField(_l("Progress (%)"), validators=[
        InputRequired(_l("Enter the progress.")), NumberRange(0, 100, _l("From 0 to 100."))])
    note = TextAreaField(_l("What was done"), validators=[DataRequired(_l("Say what was done.")),
                                                      Length(max=5000)])
    files = MultipleFileField(_l("Files (PDF, PNG or JPEG)"))


class MilestoneSubmitForm(FlaskForm):
    note = TextAreaField(_l("What was done for this milestone"),
                         validators=[DataRequired(_l("Say what was done for this milestone.")),
                                     Length(max=5000)])
    files = MultipleFileField(_l("Files (PDF, PNG or JPEG)"))


class MilestoneChangesForm(FlaskForm):
    reason = TextAreaField(_l("What should be changed?"),
                           validators=[DataRequired(_l("Say what should be changed.")),
                                       Length(max=5000)])


class DeliverForm(FlaskForm):
    note = TextAreaField(_l("Delivery note"), validators=[DataRequired(_l("Describe what you deliver.")),
                                                      Length(max=5000)])
    files = MultipleFileField(_l("Deliverables (PDF, PNG or JPEG)"))


class MessageForm(FlaskForm):
    body = TextAreaField(_l("Message"), validators=[DataRequired(_l("Write a message first.")),
                                                Length(max=5000)])
    files = MultipleFileField(_l("Attach files"))


class RulingForm(FlaskForm):
    ruling = RadioField(_l("Ruling"), choices=choices([("full", _l("Full refund")),
                                                   ("partial", _l("Partial refund")),
                                                   ("none", _l("No refund"))]),
                        validators=[DataRequired(_l("Choose a ruling."))])
    refund = AmountField(_l("Refund to the buyer (partial only)"))
    note = TextAreaField(_l("Reasons (shown to both parties)"),
                         validators=[DataRequired(_l("Explain the ruling.")), Length(max=5000)])


def one_time_token() -> str:
    return secrets.token_urlsafe(24)


class RefundForm(FlaskForm):
    amount = AmountField(_l("Amount to refund"), validators=[DataRequired(_l("Enter an amount."))])
    reason = TextAreaField(_l("Reason"), validators=[DataRequired(_l("Give the reason.")),
                                                 Length(max=2000)])
    # A fresh token every time the form is shown; a refund stores it (UNIQUE), so the same
    # form posted twice (a double click) refunds once.
    token = HiddenField(default=one_time_token,
                        validators=[DataRequired(_l("Reload the page and fill in the refund "
                                                    "form again.")), Length(max=64)])


class ClawbackForm(FlaskForm):
    amount = AmountField(_l("Amount to claw back"),
                         validators=[DataRequired(_l("Enter an amount."))])
    reason = TextAreaField(_l("Reason"), validators=[DataRequired(_l("Give the reason.")),
                                                 Length(max=2000)])
    token = HiddenField(default=one_time_token,
                        validators=[DataRequired(_l("Reload the page and fill in the refund "
                                                    "form again.")), Length(max=64)])


class TransferReceivedForm(FlaskForm):
    amount = AmountField(_l("Amount received"), validators=[DataRequired(_l("Enter the amount."))])
    reference = StringField(_l("Bank statement reference"), validators=[Length(max=64)])


class ProgrammeForm(FlaskForm):
    name = StringField(_l("Programme name"), validators=[DataRequired(), Length(max=200)])
    funder = StringField(_l("Funder"), validators=[DataRequired(), Length(max=200)])
    budget = AmountField(_l("Budget"), validators=[DataRequired(_l("Enter the budget."))])
    valid_from = DateField(_l("Valid from"), validators=[DataRequired()], default=date.today)
    valid_until = DateField(_l("Valid until"), validators=[DataRequired()])
    max_share = ShareField(_l("Maximum share of an order (%)"),
                           validators=[DataRequired(_l("Enter the maximum share."))], default="50")
    categories = SelectMultipleField(_l("Eligible categories"), coerce=int, validate_choice=False,
                                     render_kw={"size": 8})
    regions = SelectMultipleField(_l("Enterprises' regions"), render_kw={"size": 6})


class GrantForm(FlaskForm):
    # Exactly one organisation, picked from the list of matches (credit code and region
    # shown): a typed name could match a look-alike.
    organisation_id = IntegerField(_l("Enterprise"), validators=[
        DataRequired(_l("Find the enterprise and pick it from the list."))])
    amount = AmountField(_l("Voucher amount"), validators=[DataRequired(_l("Enter the amount."))])
    note = StringField(_l("Note"), validators=[Length(max=500)])


class QuoteRequestForm(FlaskForm):
    need = TextAreaField(_l("What do you need?"), validators=[
        DataRequired(_l("Describe what you need.")), Length(min=20, max=10_000,
                                                        message=_l("Describe it in 20 characters or more."))])
    budget = AmountField(_l("Budget (optional)"))
    deadline = DateField(_l("Needed by (optional)"), validators=[Optional()])
    files = MultipleFileField(_l("Background documents (PDF, PNG or JPEG)"))


class QuoteForm(FlaskForm):
    price = AmountField(_l("Price"), validators=[DataRequired(_l("Enter the price."))])
    due_date = DateField(_l("Delivery date"), validators=[DataRequired(_l("Enter the delivery date."))])
    note = TextAreaField(_l("Scope and conditions"), validators=[Length(max=10_000)])
    milestones = TextAreaField(
        _l("Milestones, one per line: title | share % | due date (YYYY-MM-DD)"),
        validators=[Length(max=5000)],
        description=_l("For example: Prior-art search | 30 | 2026-12-15. Shares add up to 100."))
    valid_days = IntegerField(_l("Quote valid for (days)"), default=14,
                              validators=[NumberRange(1, 90, _l("From 1 to 90 days."))])


class ApplicationForm(FlaskForm):
    amount = AmountField(_l("Amount applied for"))
    term_months = IntegerField(_l("Term (months)"), validators=[Optional(),
                                                            NumberRange(1, 600, "1 to 600 months.")])
    need = TextAreaField(_l("Purpose and company situation"), validators=[
        DataRequired(_l("Describe the purpose of the financing.")), Length(max=10_000)])


class CheckoutTokenForm(FlaskForm):
    token = HiddenField()
