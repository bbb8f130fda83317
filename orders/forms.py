"""Forms of the buying pages (Flask-WTF; CSRF stays on everywhere)."""

import secrets
from datetime import date

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

    card_number = StringField("Card number", validators=[
        DataRequired("Enter the card number."),
        Regexp(r"^[0-9 ]{16,19}$", message="A card number has 16 digits.")],
        default="4242 4242 4242 4242")
    card_expiry = StringField("Expiry (MM/YY)", validators=[
        DataRequired("Enter the expiry date."),
        Regexp(r"^(0[1-9]|1[0-2])\s*/\s*[0-9]{2}$", message="Use MM/YY, e.g. 12/30.")],
        default="12/30")
    card_cvc = StringField("CVC", validators=[
        DataRequired("Enter the CVC."), Regexp(r"^[0-9]{3}$", message="The CVC has 3 digits.")],
        default="123")

    def card(self):
        from orders.payments import TestCard

        month, year = (part.strip() for part in self.card_expiry.data.split("/"))
        return TestCard(number=self.card_number.data.replace(" ", ""), exp_month=int(month),
                        exp_year=2000 + int(year), cvc=self.card_cvc.data)


class MilestoneForm(FlaskForm):
    title = StringField("Milestone", validators=[DataRequired("Give the milestone a title."),
                                                 Length(max=200)])
    share = ShareField("Share of the price (%)", validators=[DataRequired("Enter a share.")])
    due_date = DateField("Due date", validators=[Optional()])


class ProgressForm(FlaskForm):
    percent = IntegerField("Progress (%)", validators=[
        InputRequired("Enter the progress."), NumberRange(0, 100, "From 0 to 100.")])
    note = TextAreaField("What was done", validators=[DataRequired("Say what was done."),
                                                      Length(max=5000)])
    files = MultipleFileField("Files (PDF, PNG or JPEG)")


class DeliverForm(FlaskForm):
    note = TextAreaField("Delivery note", validators=[DataRequired("Describe what you deliver."),
                                                      Length(max=5000)])
    files = MultipleFileField("Deliverables (PDF, PNG or JPEG)")


class MessageForm(FlaskForm):
    body = TextAreaField("Message", validators=[DataRequired("Write a message first."),
                                                Length(max=5000)])
    files = MultipleFileField("Attach files")


class RulingForm(FlaskForm):
    ruling = RadioField("Ruling", choices=choices([("full", "Full refund"),
                                                   ("partial", "Partial refund"),
                                                   ("none", "No refund")]),
                        validators=[DataRequired("Choose a ruling.")])
    refund = AmountField("Refund to the buyer (partial only)")
    note = TextAreaField("Reasons (shown to both parties)",
                         validators=[DataRequired("Explain the ruling."), Length(max=5000)])


def one_time_token() -> str:
    return secrets.token_urlsafe(24)


class RefundForm(FlaskForm):
    amount = AmountField("Amount to refund", validators=[DataRequired("Enter an amount.")])
    reason = TextAreaField("Reason", validators=[DataRequired("Give the reason."),
                                                 Length(max=2000)])
    # A fresh token every time the form is shown; a refund stores it (UNIQUE), so the same
    # form posted twice (a double click) refunds once.
    token = HiddenField(default=one_time_token,
                        validators=[DataRequired("Reload the page and fill in the refund "
                                                 "form again."), Length(max=64)])


class TransferReceivedForm(FlaskForm):
    amount = AmountField("Amount received", validators=[DataRequired("Enter the amount.")])
    reference = StringField("Bank statement reference", validators=[Length(max=64)])


class ProgrammeForm(FlaskForm):
    name = StringField("Programme name", validators=[DataRequired(), Length(max=200)])
    funder = StringField("Funder", validators=[DataRequired(), Length(max=200)])
    budget = AmountField("Budget", validators=[DataRequired("Enter the budget.")])
    valid_from = DateField("Valid from", validators=[DataRequired()], default=date.today)
    valid_until = DateField("Valid until", validators=[DataRequired()])
    max_share = ShareField("Maximum share of an order (%)",
                           validators=[DataRequired("Enter the maximum share.")], default="50")
    categories = SelectMultipleField("Eligible categories", coerce=int, validate_choice=False,
                                     render_kw={"size": 8})
    regions = SelectMultipleField("Enterprises' regions", render_kw={"size": 6})


class GrantForm(FlaskForm):
    # Exactly one organisation, picked from the list of matches (credit code and region
    # shown): a typed name could match a look-alike.
    organisation_id = IntegerField("Enterprise", validators=[
        DataRequired("Find the enterprise and pick it from the list.")])
    amount = AmountField("Voucher amount", validators=[DataRequired("Enter the amount.")])
    note = StringField("Note", validators=[Length(max=500)])


class QuoteRequestForm(FlaskForm):
    need = TextAreaField("What do you need?", validators=[
        DataRequired("Describe what you need."), Length(min=20, max=10_000,
                                                        message="Describe it in 20 characters or more.")])
    budget = AmountField("Budget (optional)")
    deadline = DateField("Needed by (optional)", validators=[Optional()])
    files = MultipleFileField("Background documents (PDF, PNG or JPEG)")


class QuoteForm(FlaskForm):
    price = AmountField("Price", validators=[DataRequired("Enter the price.")])
    due_date = DateField("Delivery date", validators=[DataRequired("Enter the delivery date.")])
    note = TextAreaField("Scope and conditions", validators=[Length(max=10_000)])
    milestones = TextAreaField(
        "Milestones, one per line: title | share % | due date (YYYY-MM-DD)",
        validators=[Length(max=5000)],
        description="For example: Prior-art search | 30 | 2026-12-15. Shares add up to 100.")
    valid_days = IntegerField("Quote valid for (days)", default=14,
                              validators=[NumberRange(1, 90, "From 1 to 90 days.")])


class ApplicationForm(FlaskForm):
    amount = AmountField("Amount applied for")
    term_months = IntegerField("Term (months)", validators=[Optional(),
                                                            NumberRange(1, 600, "1 to 600 months.")])
    need = TextAreaField("Purpose and company situation", validators=[
        DataRequired("Describe the purpose of the financing."), Length(max=10_000)])


class CheckoutTokenForm(FlaskForm):
    token = HiddenField()
