"""Accounts blueprint: sign-up, login (with lockout), logout, my account, forgotten password,
and the staff list of login lockouts."""


from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy.exc import IntegrityError

from marketplace import accounts_service as service
from marketplace.database import db, utcnow
from marketplace.forms import (
    ChangePasswordForm,
    ClearLockoutForm,
    EnterpriseSignupForm,
    ForgotPasswordForm,
    LoginForm,
    ProviderSignupForm,
    ResetPasswordForm,
)
from marketplace.navigation import is_safe_next
from marketplace.notifications import absolute_url
from marketplace.paging import parse_page
from marketplace.permissions import staff_required

bp = Blueprint("accounts", __name__)


def _next_url(default: str) -> str:
    target = request.args.get("next") or request.form.get("next")
    return target if is_safe_next(target) else default


def _redirect_signed_in():
    flash("You are already logged in.", "info")
    return redirect(url_for("accounts.account"))


def _attach(form, error: service.AccountError) -> None:
    """Show a service-level refusal under the field it concerns (or above the form)."""
    field = getattr(form, error.field, None) if error.field else None
    if field is not None:
        field.errors = [*field.errors, error.message]
    else:
        form.form_errors.append(error.message)


def _complete_signup(form, register, data, *, credit_code: str | None = None):
    """Run one sign-up transaction; return the new user, or None with errors on the form."""
    try:
        user = register(db.session, data)
        db.session.commit()
    except service.AccountError as exc:
        db.session.rollback()
        _attach(form, exc)
        return None
    except IntegrityError:
        # Someone else registered the same email or code between our check and our insert.
        db.session.rollback()
        _attach(form, service.explain_conflict(db.session, email=data.email,
                                               credit_code=credit_code))
        return None
    login_user(user)
    current_app.logger.info("New %s sign-up: organisation %s, user %s",
                            user.role, user.organisation_id, user.id)
    return user


@bp.get("/signup")
def signup():
    if current_user.is_authenticated:
        return _redirect_signed_in()
    return render_template("accounts/signup.html")


@bp.route("/signup/enterprise", methods=["GET", "POST"])
def signup_enterprise():
    if current_user.is_authenticated:
        return _redirect_signed_in()
    form = EnterpriseSignupForm()
    if form.validate_on_submit():
        data = service.EnterpriseSignup(
            company_name=form.company_name.data, credit_code=form.credit_code.data,
            region=form.region.data, industry=form.industry.data, size=form.size.data,
            contact_name=form.contact_name.data, contact_phone=form.contact_phone.data,
            email=form.email.data, password=form.password.data)
        user = _complete_signup(form, service.register_enterprise, data,
                                credit_code=form.credit_code.data)
        if user is not None:
            flash(f"Welcome to the Innovation Service Supermarket, {user.full_name}! "
                  f"{user.organisation.name} is registered.", "success")
            return redirect(url_for("accounts.account"))
    return render_template("accounts/signup_enterprise.html", form=form)


@bp.route("/signup/provider", methods=["GET", "POST"])
def signup_provider():
    if current_user.is_authenticated:
        return _redirect_signed_in()
    form = ProviderSignupForm()
    if form.validate_on_submit():
        data = service.ProviderSignup(
            institution_name=form.institution_name.data,
            institution_type=form.institution_type.data, contact_name=form.contact_name.data,
            contact_phone=form.contact_phone.data, email=form.email.data,
            password=form.password.data)
        user = _complete_signup(form, service.register_provider, data)
        if user is not None:
            flash(f"Welcome, {user.full_name}! {user.organisation.name} has an account. "
                  "Next step: complete your institution application so staff can verify it.",
                  "success")
            return redirect(url_for("accounts.account"))
    return render_template("accounts/signup_provider.html", form=form)


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("accounts.account"))
    form = LoginForm()
    locked = False
    if form.validate_on_submit():
        try:
            user = service.authenticate(db.session, form.email.data, form.password.data,
                                        policy=service.LockoutPolicy.from_config(current_app.config))
        except service.AccountError as exc:
            # Keep the failed-login count (and any lockout) it recorded.
            db.session.commit()
            form.form_errors.append(exc.message)
            locked = isinstance(exc, service.AccountLocked)
            if locked:
                current_app.logger.warning("Login refused: address locked for %ss", exc.seconds)
        else:
            db.session.commit()
            login_user(user, remember=form.remember.data)
            flash(f"Welcome back, {user.full_name}.", "success")
            return redirect(_next_url(url_for("accounts.account")))
    next_value = request.args.get("next") or request.form.get("next")
    return render_template("accounts/login.html", form=form, locked=locked,
                           next=next_value if is_safe_next(next_value) else None)


@bp.post("/logout")
def logout():
    if current_user.is_authenticated:
        logout_user()
        flash("You have logged out. See you soon!", "info")
    return redirect(url_for("main.home"))


def _render_account(password_form):
    return render_template("accounts/account.html", user=current_user,
                           organisation=current_user.organisation,
                           password_form=password_form)


@bp.get("/account")
@login_required
def account():
    return _render_account(ChangePasswordForm(email=current_user.email))


@bp.post("/account/password")
@login_required
def change_password():
    form = ChangePasswordForm(email=current_user.email)
    if form.validate_on_submit():
        user = current_user._get_current_object()
        try:
            service.change_password(db.session, user, current=form.current_password.data,
                                    new=form.new_password.data)
        except service.AccountError as exc:
            db.session.rollback()
            _attach(form, exc)
        else:
            db.session.commit()
            # The cookie of this session carries the old version too: sign it in again.
            remembered = current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token")
            login_user(user, remember=remembered in request.cookies)
            flash("Your password has been changed. Other devices have been signed out.", "success")
            return redirect(url_for("accounts.account"))
    return _render_account(form)


# ------------------------------------------------------------------ forgotten password

def _reset_max_age() -> int:
    return int(current_app.config.get("PASSWORD_RESET_MAX_AGE", 3600))


@bp.route("/password/forgot", methods=["GET", "POST"])
def forgot_password():
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        service.request_password_reset(
            db.session, form.email.data, current_app.config["SECRET_KEY"],
            # SITE_URL, never the request's Host header: a client could set that to its own
            # server and receive the owner's token when the owner clicks the link.
            lambda token: absolute_url(url_for("accounts.reset_password", token=token)),
            _reset_max_age())
        db.session.commit()
        # The same answer whether or not the address has an account.
        flash(f"If an account exists for {form.email.data}, we have sent it an email with a link "
              f"to choose a new password. The link works for "
              f"{service.human_wait(_reset_max_age())}.", "info")
        return redirect(url_for("accounts.login"))
    return render_template("accounts/forgot_password.html", form=form)


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
def reset_password(token):
    secret, max_age = current_app.config["SECRET_KEY"], _reset_max_age()
    try:
        user = service.user_for_reset_token(db.session, token, secret, max_age)
    except service.AccountError as exc:
        return render_template("accounts/reset_password.html", form=None, problem=exc.message,
                               forgot_form=ForgotPasswordForm()), 400
    form = ResetPasswordForm(email=user.email)
    if form.validate_on_submit():
        try:
            service.reset_password(db.session, token, form.new_password.data, secret, max_age)
        except service.AccountError as exc:
            db.session.rollback()
            _attach(form, exc)
        else:
            db.session.commit()
            if current_user.is_authenticated:
                logout_user()
            login_user(user)
            flash("Your new password is set and you are logged in. "
                  "Every other session has been signed out.", "success")
            return redirect(url_for("accounts.account"))
    return render_template("accounts/reset_password.html", form=form, problem=None, user=user)


# ------------------------------------------------------------------ staff: login lockouts

@bp.get("/staff/lockouts")
@staff_required
def lockouts():
    page = service.lockout_page(db.session, utcnow(), parse_page(request.args.get("page")))
    return render_template("accounts/lockouts.html", page=page, rows=page.items,
                           form=ClearLockoutForm())


@bp.post("/staff/lockouts/<int:throttle_id>/clear")
@staff_required
def clear_lockout(throttle_id):
    form = ClearLockoutForm()
    if not form.validate_on_submit():
        flash(" ".join(form.reason.errors) or "The form expired; please try again.", "danger")
        return redirect(url_for("accounts.lockouts"))
    try:
        throttle = service.clear_lockout(db.session, current_user._get_current_object(),
                                         throttle_id, form.reason.data)
    except service.AccountError as exc:
        db.session.rollback()
        flash(exc.message, "warning")
    else:
        db.session.commit()
        flash(f"Failed logins of {throttle.email} cleared; they can log in again now.", "success")
    return redirect(url_for("accounts.lockouts"))
