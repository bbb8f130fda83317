"""Account forms: sign-up (enterprise, institution), login, change password, forgotten
password and reset, staff clearing a login lockout.

Forms check what can be checked from the input alone and show every problem under its
field; rules that need the database (duplicate email or credit code) live in
accounts_service and are attached to the fields by the views.
"""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, SelectField, StringField
from wtforms.validators import (
    DataRequired,
    Email,
    EqualTo,
    InputRequired,
    Length,
    Regexp,
    ValidationError,
)

try:  # WTForms 3.3+ deprecates plain tuples as choices.
    from wtforms import SelectChoice
except ImportError:  # pragma: no cover - older WTForms
    SelectChoice = None

from marketplace import credit_code, i18n, reference
from marketplace.passwords import password_problems


def _strip(value):
    return value.strip() if isinstance(value, str) else value


def _lower(value):
    return value.strip().lower() if isinstance(value, str) else value


def _with_prompt(rows, prompt):
    """An empty "Choose…" option, then the reference list in the viewer's language; a
    callable, so WTForms builds the options for each request (its language)."""
    def options():
        chinese = i18n.is_chinese()
        rows_shown = [("", str(prompt))] + [(code, zh if chinese else en)
                                            for code, en, zh in rows]
        if SelectChoice is None:
            return rows_shown
        return [SelectChoice(value, label) for value, label in rows_shown]
    return options


PHONE = Regexp(r"^\+?[0-9][0-9 ()\-]{5,24}$",
               message=_l("Enter a phone number with digits only (spaces, dashes and a leading + are fine)."))
TERMS_MESSAGE = _l("Please accept the platform rules to create an account.")


class _NewAccountMixin:
    """Email, password, confirmation and terms, shared by both sign-up forms."""

    contact_name = StringField(
        _l("Contact person"), filters=[_strip],
        validators=[DataRequired(_l("Tell us who we should contact.")), Length(max=100)])
    contact_phone = StringField(
        _l("Contact phone"), filters=[_strip],
        validators=[DataRequired(_l("Enter a phone number.")), PHONE],
        render_kw={"autocomplete": "tel", "inputmode": "tel"})
    email = EmailField(
        _l("Email"), filters=[_lower],
        validators=[DataRequired(_l("Enter your email address.")),
                    Email(_l("Enter a valid email address, like name@company.cn.")), Length(max=254)],
        description=_l("You will log in with this address."),
        render_kw={"autocomplete": "email"})
    password = PasswordField(
        _l("Password"), validators=[InputRequired(_l("Choose a password."))],
        description=_l("At least 10 characters, with letters and digits."),
        render_kw={"autocomplete": "new-password"})
    confirm = PasswordField(
        _l("Confirm password"),
        validators=[InputRequired(_l("Type the password again.")),
                    EqualTo("password", _l("The two passwords do not match."))],
        render_kw={"autocomplete": "new-password"})
    accept_terms = BooleanField(
        _l("I accept the platform rules"), validators=[DataRequired(TERMS_MESSAGE)])

    def validate_password(self, field):
        # Show every problem at once, one line each, rather than one per attempt.
        if field.data:
            field.errors.extend(password_problems(field.data, self.email.data or ""))


class EnterpriseSignupForm(_NewAccountMixin, FlaskForm):
    company_name = StringField(
        _l("Company name"), filters=[_strip],
        validators=[DataRequired(_l("Enter the registered company name.")), Length(min=2, max=200)],
        description=_l("As on the business licence, e.g. 苏州某某科技有限公司."),
        render_kw={"autocomplete": "organization"})
    credit_code = StringField(
        _l("Unified social credit code"), filters=[_strip],
        validators=[DataRequired(_l("Enter the 18-character unified social credit code."))],
        description=_l("18 characters, on the business licence."),
        render_kw={"maxlength": 22, "spellcheck": "false", "autocapitalize": "characters"})
    region = SelectField(_l("Region"), choices=_with_prompt(reference.REGIONS, _l("Choose a region…")),
                         validators=[DataRequired(_l("Choose the region where the company is registered."))])
    industry = SelectField(_l("Industry"), choices=_with_prompt(reference.INDUSTRIES, _l("Choose an industry…")),
                           validators=[DataRequired(_l("Choose the company's main industry."))])
    size = SelectField(_l("Company size"), choices=_with_prompt(reference.COMPANY_SIZES, _l("Choose a size…")),
                       validators=[DataRequired(_l("Choose the company size."))])


    def validate_credit_code(self, field):
        try:
            field.data = credit_code.validate(field.data)
        except credit_code.CreditCodeError as exc:
            raise ValidationError(str(exc)) from exc


class ProviderSignupForm(_NewAccountMixin, FlaskForm):
    institution_name = StringField(
        _l("Institution name"), filters=[_strip],
        validators=[DataRequired(_l("Enter the institution's registered name.")), Length(min=2, max=200)],
        render_kw={"autocomplete": "organization"})
    institution_type = SelectField(
        _l("Institution type"),
        choices=_with_prompt(reference.INSTITUTION_TYPES, _l("Choose a type…")),
        validators=[DataRequired(_l("Choose the kind of institution."))])



class LoginForm(FlaskForm):
    email = EmailField(_l("Email"), filters=[_lower],
                       validators=[DataRequired(_l("Enter your email address."))],
                       render_kw={"autocomplete": "username", "autofocus": True})
    password = PasswordField(_l("Password"), validators=[InputRequired(_l("Enter your password."))],
                             render_kw={"autocomplete": "current-password"})
    remember = BooleanField(_l("Keep me logged in on this device"))


class NewPasswordForm(FlaskForm):
    """A new password typed twice and checked against the password rules (reset by email)."""

    new_password = PasswordField(
        _l("New password"), validators=[InputRequired(_l("Choose a new password."))],
        description=_l("At least 10 characters, with letters and digits."),
        render_kw={"autocomplete": "new-password"})
    confirm = PasswordField(
        _l("Confirm new password"),
        validators=[InputRequired(_l("Type the new password again.")),
                    EqualTo("new_password", _l("The two passwords do not match."))],
        render_kw={"autocomplete": "new-password"})

    def __init__(self, *args, email: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self._email = email

    def validate_new_password(self, field):
        if field.data:
            field.errors.extend(password_problems(field.data, self._email))


class ChangePasswordForm(NewPasswordForm):
    """Changing the password from "my account" also asks for the current one."""

    current_password = PasswordField(
        _l("Current password"), validators=[InputRequired(_l("Enter your current password."))],
        render_kw={"autocomplete": "current-password"})


class ForgotPasswordForm(FlaskForm):
    email = EmailField(
        _l("Email"), filters=[_lower],
        validators=[DataRequired(_l("Enter the email address you log in with.")),
                    Email(_l("Enter a valid email address, like name@company.cn.")), Length(max=254)],
        render_kw={"autocomplete": "email", "autofocus": True})


class ResetPasswordForm(NewPasswordForm):
    """The form behind a password-reset link: the new password field takes the focus."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.new_password.render_kw = {**self.new_password.render_kw, "autofocus": True}


class ClearLockoutForm(FlaskForm):
    reason = StringField(
        _l("Reason"), filters=[_strip],
        validators=[DataRequired(_l("Say why the lockout is lifted (it goes into the audit log).")),
                    Length(max=500)],
        render_kw={"placeholder": _l("Reason, for the audit log")})
