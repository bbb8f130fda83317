"""The institution portal: dashboard, application and documents, listings, team.

Thin views: parse the form, call a service in providers.onboarding / listings / team with
the acting user, commit once, redirect. Services raise PermissionDenied (→ 403) and RuleError
(→ a message on the form, or 409 for a bare action button).
"""

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from catalog.models import Category, Product
from marketplace.database import db
from marketplace.errors import render_error
from marketplace.markdown import render_markdown
from marketplace.models import Organisation, User
from marketplace.permissions import (
    can_manage_institution,
    can_manage_product,
    can_view_institution_files,
    can_view_provider_profile,
    is_institution_owner,
    provider_required,
)
from orders import queries as order_queries
from orders import quotes
from providers import forms, listings, onboarding, team, uploads
from providers.errors import PermissionDenied, RuleError
from providers.models import DOCUMENT_KINDS, Invitation, QualificationDocument

bp = Blueprint("portal", __name__)


@bp.app_template_filter("filesize")
def _filesize(size: int) -> str:
    return uploads.human_size(size or 0)


@bp.errorhandler(PermissionDenied)
def _forbidden(exc):
    db.session.rollback()
    return render_error(403)


@bp.errorhandler(RuleError)
def _conflict(exc):
    db.session.rollback()
    return render_error(409, exc.message)


def _user() -> User:
    return current_user._get_current_object()


def _upload_dir() -> str:
    return current_app.config["UPLOAD_DIR"]


def _limit(name: str, default: int) -> int:
    return int(current_app.config.get(name) or default)


def _institution() -> Organisation | None:
    """The signed-in provider member's institution (None for a member without one)."""
    org = current_user.organisation
    return org if org is not None and org.kind == "provider" else None


def _require_institution() -> Organisation:
    org = _institution()
    if org is None:
        abort(403)
    return org


def _own_product(product_id: int) -> Product:
    product = db.session.get(Product, product_id)
    if product is None:
        abort(404)
    if not can_manage_product(current_user, product):
        abort(403)
    return product


def _commit_or_remove(*stored_names: str | None) -> None:
    """Commit; if that fails, delete the files this transaction wrote."""
    try:
        db.session.commit()
    except Exception:
        db.session.rollback()
        for name in stored_names:
            uploads.remove(_upload_dir(), name)
        raise


def _file_response(stored_name: str, content_type: str, download_name: str, download: bool):
    try:
        path = uploads.path_for(_upload_dir(), stored_name)
    except uploads.UploadError:
        abort(404)
    if not path.is_file():
        abort(404)
    # A PDF is never shown inline: a viewer would run what the upload checks missed.
    response = send_file(path, mimetype=content_type,
                         as_attachment=download or not content_type.startswith("image/"),
                         download_name=download_name, max_age=0, conditional=True)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
    response.headers["Content-Security-Policy"] = "default-src 'none'; img-src 'self'; sandbox"
    return response


# --------------------------------------------------------------------------- dashboard

@bp.get("/provider")
@provider_required
def dashboard():
    org = _institution()
    if org is None:
        return render_template("portal/no_institution.html", form=forms.JoinCodeForm())
    data = listings.dashboard(db.session, org)
    order_counts = order_queries.status_counts(db.session, provider_org_id=org.id)
    return render_template(
        "portal/dashboard.html", org=org, board=data, statuses=listings.STATUS_LABELS,
        order_counts=order_counts,
        order_groups=order_queries.groups_from(order_counts, "provider"),
        open_quotes=quotes.unanswered_count(db.session, org.id),
        checklist=onboarding.checklist(db.session, org),
        history=onboarding.history(db.session, org, decisions_only=True)[:3],
        action_labels=onboarding.ACTION_LABELS,
        members=team.members(db.session, org))


# --------------------------------------------------------------------------- the application

def _lock_legal_fields(org, form) -> None:
    """A verified institution's legal identity only changes through staff: show it read-only
    and ignore whatever the browser sends for it."""
    if not org.is_verified:
        return
    form.name.data, form.credit_code.data = org.name, org.credit_code or ""
    form.institution_type.data = org.institution_type
    for name in onboarding.LEGAL_FIELDS:
        getattr(form, name).render_kw = {**(getattr(form, name).render_kw or {}),
                                         "readonly": True, "disabled": name == "institution_type"}


def _application_page(org, form=None, document_form=None, status=200):
    if form is None:
        # formdata=None: after another form on the page was posted, show the saved profile.
        form = forms.InstitutionForm(formdata=None, obj=org)
        form.credit_code.data = org.credit_code or ""
    _lock_legal_fields(org, form)
    return render_template(
        "portal/application.html", org=org, form=form,
        document_form=document_form or forms.DocumentForm(formdata=None),
        documents=onboarding.documents(db.session, org),
        checklist=onboarding.checklist(db.session, org),
        history=onboarding.history(db.session, org),
        action_labels=onboarding.ACTION_LABELS, document_kinds=DOCUMENT_KINDS,
        submit_form=forms.EmptyForm(), locked=org.verification_status == "pending",
        legal_locked=org.is_verified, max_document=uploads.human_size(
            _limit("MAX_DOCUMENT_BYTES", uploads.DEFAULT_MAX_DOCUMENT_BYTES))), status


@bp.route("/provider/institution", methods=["GET", "POST"])
@provider_required
def application():
    org = _require_institution()
    if request.method == "GET":
        return _application_page(org)
    form = forms.InstitutionForm()
    _lock_legal_fields(org, form)
    if not form.validate_on_submit():
        return _application_page(org, form, status=422)
    checked = None
    if form.logo.data and getattr(form.logo.data, "filename", ""):
        max_logo = _limit("MAX_LOGO_BYTES", uploads.DEFAULT_MAX_LOGO_BYTES)
        try:
            checked = uploads.check(uploads.read_limited(form.logo.data.stream, max_logo),
                                    form.logo.data.filename, allowed=uploads.IMAGE_TYPES,
                                    max_bytes=max_logo)
        except uploads.UploadError as exc:
            form.logo.errors = [exc.message]
            return _application_page(org, form, status=422)
    profile = onboarding.InstitutionProfile(
        name=form.name.data, credit_code=form.credit_code.data or "",
        institution_type=form.institution_type.data, regions_served=form.regions_served.data,
        description=form.description.data or "", contact_name=form.contact_name.data,
        contact_phone=form.contact_phone.data, contact_email=form.contact_email.data,
        website=form.website.data or None, founded_year=form.founded_year.data)
    new_logo = previous_logo = None
    try:
        onboarding.update_profile(db.session, _user(), org, profile)
        if checked is not None:
            previous_logo = onboarding.set_logo(db.session, _user(), org, checked, _upload_dir())
            new_logo = org.logo_file
        _commit_or_remove(new_logo)
    except RuleError as exc:
        db.session.rollback()
        uploads.remove(_upload_dir(), new_logo)
        target = getattr(form, exc.field or "", None)
        if target is not None:
            target.errors = [*target.errors, exc.message]
        else:
            form.form_errors.append(exc.message)
        return _application_page(org, form, status=422)
    except IntegrityError:
        form.credit_code.errors = [_("Another organisation registered this credit code a "
                                     "moment ago. Check the code, or contact platform staff.")]
        return _application_page(org, form, status=422)
    if previous_logo and previous_logo != new_logo:
        uploads.remove(_upload_dir(), previous_logo)
    flash(_("Institution profile saved."), "success")
    return redirect(url_for("portal.application"))


@bp.post("/provider/institution/documents")
@provider_required
def upload_document():
    org = _require_institution()
    form = forms.DocumentForm()
    if not form.validate_on_submit():
        return _application_page(org, document_form=form, status=422)
    max_bytes = _limit("MAX_DOCUMENT_BYTES", uploads.DEFAULT_MAX_DOCUMENT_BYTES)
    try:
        checked = uploads.check(uploads.read_limited(form.file.data.stream, max_bytes),
                                form.file.data.filename, max_bytes=max_bytes)
    except uploads.UploadError as exc:
        form.file.errors = [exc.message]
        return _application_page(org, document_form=form, status=422)
    try:
        document = onboarding.add_document(db.session, _user(), org, form.kind.data, checked,
                                           _upload_dir())
    except RuleError as exc:
        db.session.rollback()
        form.file.errors = [exc.message]
        return _application_page(org, document_form=form, status=422)
    _commit_or_remove(document.stored_name)
    flash(_("“%(name)s” uploaded (%(kind)s).", name=document.original_name,
            kind=DOCUMENT_KINDS[document.kind]), "success")
    return redirect(url_for("portal.application") + "#documents")


@bp.post("/provider/institution/documents/<int:document_id>/delete")
@provider_required
def delete_document(document_id):
    document = db.session.get(QualificationDocument, document_id)
    if document is None:
        abort(404)
    if not can_manage_institution(current_user, document.organisation):
        abort(403)
    form = forms.EmptyForm()
    if not form.validate_on_submit():
        abort(400)
    name = document.original_name
    stored_name = onboarding.delete_document(db.session, _user(), document)
    db.session.commit()
    uploads.remove(_upload_dir(), stored_name)
    flash(_("“%(name)s” removed.", name=name), "info")
    return redirect(url_for("portal.application") + "#documents")


@bp.post("/provider/institution/submit")
@provider_required
def submit_application():
    org = _require_institution()
    if not forms.EmptyForm().validate_on_submit():
        abort(400)
    try:
        onboarding.submit_application(db.session, _user(), org)
    except RuleError as exc:
        db.session.rollback()
        flash(exc.message, "danger")
        return redirect(url_for("portal.application"))
    db.session.commit()
    flash(_("Application sent. Platform staff will review it and we will notify you of their "
            "decision."), "success")
    return redirect(url_for("portal.dashboard"))


@bp.get("/documents/<int:document_id>")
@login_required
def document_file(document_id):
    document = db.session.get(QualificationDocument, document_id)
    if document is None:
        abort(404)
    if not can_view_institution_files(current_user, document.organisation):
        abort(403)
    return _file_response(document.stored_name, document.content_type, document.original_name,
                          download=request.args.get("download") == "1")


@bp.get("/logos/<int:org_id>")
def logo(org_id):
    org = db.session.get(Organisation, org_id)
    if org is None or not org.logo_file or not can_view_provider_profile(current_user, org):
        abort(404)
    content_type = uploads.PNG if org.logo_file.endswith(".png") else uploads.JPEG
    return _file_response(org.logo_file, content_type, f"logo-{org.id}.{org.logo_file[-3:]}",
                          download=False)


@bp.post("/provider/markdown-preview")
@provider_required
def markdown_preview():
    """htmx: the sanitised HTML of the Markdown being typed (description fields)."""
    text = request.form.get("description") or request.form.get("text") or ""
    if len(text) > listings.MAX_DESCRIPTION:
        return render_template("portal/_markdown_preview.html", html=None, too_long=True)
    return render_template("portal/_markdown_preview.html", html=render_markdown(text),
                           too_long=False)


# --------------------------------------------------------------------------- listings

@bp.get("/provider/listings")
@provider_required
def listing_index():
    org = _require_institution()
    board = listings.dashboard(db.session, org)
    status = request.args.get("status")
    if status not in listings.STATUS_LABELS:
        status = None
    return render_template("portal/listings.html", org=org, board=board, status=status,
                           statuses=listings.STATUS_LABELS, modes=listings.MODE_LABELS,
                           action_form=forms.EmptyForm())


def _listing_form(**kwargs) -> forms.ListingForm:
    return forms.ListingForm(category_choices=listings.subcategory_choices(db.session), **kwargs)


def _editor(org, form, product=None, work=None, status=200):
    return render_template(
        "portal/listing_form.html", org=org, form=form, product=product, work=work,
        statuses=listings.STATUS_LABELS, action_form=forms.EmptyForm(),
        history=listings.history(db.session, product) if product else [],
        action_labels=listings.ACTION_LABELS), status


@bp.route("/provider/listings/new", methods=["GET", "POST"])
@provider_required
def listing_new():
    org = _require_institution()
    form = _listing_form()
    if request.method == "GET":
        slug = request.args.get("category")
        if slug:
            category = db.session.scalar(select(Category).where(Category.slug == slug))
            form.category_id.data = category.id if category else None
        return _editor(org, form)
    if not form.validate_on_submit():
        return _editor(org, form, status=422)
    try:
        product = listings.create_listing(db.session, _user(), org, form.listing_data)
    except RuleError as exc:
        db.session.rollback()
        form.attach(exc)
        return _editor(org, form, status=422)
    db.session.commit()
    flash(_("Draft saved. Preview it, then submit it for review when it is ready."), "success")
    return redirect(url_for("portal.listing_edit", product_id=product.id))


@bp.route("/provider/listings/<int:product_id>/edit", methods=["GET", "POST"])
@provider_required
def listing_edit(product_id):
    product = _own_product(product_id)
    work = listings.workspace(db.session, product)
    if request.method == "GET":
        form = _listing_form()
        form.fill(work.data)
        return _editor(product.provider, form, product, work)
    form = _listing_form()
    if not form.validate_on_submit():
        return _editor(product.provider, form, product, work, status=422)
    try:
        outcome = listings.save_listing(db.session, _user(), product, form.listing_data)
    except RuleError as exc:
        db.session.rollback()
        form.attach(exc)
        return _editor(product.provider, form, product, work, status=422)
    db.session.commit()
    if request.form.get("then") == "submit":
        return _submit(product)
    flash({"draft": _("Draft saved."),
           "revision": _("Change saved. The public page keeps the published version until you "
                         "submit the change and staff approve it."),
           "unchanged": _("Nothing differs from the published version.")}[outcome],
          "success" if outcome != "unchanged" else "info")
    return redirect(url_for("portal.listing_edit", product_id=product.id))


@bp.get("/provider/listings/<int:product_id>/preview")
@provider_required
def listing_preview(product_id):
    product = _own_product(product_id)
    work = listings.workspace(db.session, product)
    return render_template("portal/listing_preview.html",
                           **_preview_context(product, work.data, work=work),
                           action_form=forms.EmptyForm())


def _preview_context(product: Product, data: listings.ListingData, **extra) -> dict:
    category = db.session.get(Category, data.category_id)
    return {"product": product, "data": data, "category": category,
            "org": product.provider, "statuses": listings.STATUS_LABELS,
            "modes": listings.MODE_LABELS, **extra}


def _submit(product):
    try:
        kind = listings.submit(db.session, _user(), product)
    except RuleError as exc:
        db.session.rollback()
        flash(exc.message, "danger")
        return redirect(url_for("portal.listing_edit", product_id=product.id))
    db.session.commit()
    flash(_("Submitted for review. Staff usually decide within one working day.")
          if kind == "listing" else
          _("Change submitted for review. The public page shows the current version until staff "
            "approve it."), "success")
    return redirect(url_for("portal.listing_edit", product_id=product.id))


def _listing_action(product_id):
    product = _own_product(product_id)
    if not forms.EmptyForm().validate_on_submit():
        abort(400)
    return product


@bp.post("/provider/listings/<int:product_id>/submit")
@provider_required
def listing_submit(product_id):
    return _submit(_listing_action(product_id))


@bp.post("/provider/listings/<int:product_id>/withdraw")
@provider_required
def listing_withdraw(product_id):
    product = _listing_action(product_id)
    listings.withdraw(db.session, _user(), product)
    db.session.commit()
    flash(_("Submission withdrawn; you can edit it again."), "info")
    return redirect(url_for("portal.listing_edit", product_id=product.id))


@bp.post("/provider/listings/<int:product_id>/discard")
@provider_required
def listing_discard(product_id):
    product = _listing_action(product_id)
    listings.discard_change(db.session, _user(), product)
    db.session.commit()
    flash(_("Change discarded. The published version is unchanged."), "info")
    return redirect(url_for("portal.listing_edit", product_id=product.id))


@bp.post("/provider/listings/<int:product_id>/archive")
@provider_required
def listing_archive(product_id):
    product = _listing_action(product_id)
    listings.archive(db.session, _user(), product)
    db.session.commit()
    flash(_("“%(title)s” archived. It is no longer visible to buyers.", title=product.title),
          "info")
    return redirect(url_for("portal.listing_index"))


@bp.post("/provider/listings/<int:product_id>/restore")
@provider_required
def listing_restore(product_id):
    product = _listing_action(product_id)
    listings.restore(db.session, _user(), product)
    db.session.commit()
    flash(_("Restored as a draft. Submit it for review to publish it again."), "info")
    return redirect(url_for("portal.listing_edit", product_id=product.id))


@bp.post("/provider/listings/<int:product_id>/duplicate")
@provider_required
def listing_duplicate(product_id):
    product = _listing_action(product_id)
    copy = listings.duplicate(db.session, _user(), product)
    db.session.commit()
    flash(_("Copy created as a new draft."), "success")
    return redirect(url_for("portal.listing_edit", product_id=copy.id))


# --------------------------------------------------------------------------- team

def _team_page(org, invite_form=None, new_code=None, status=200):
    return render_template(
        "portal/team.html", org=org, members=team.members(db.session, org),
        invitations=team.invitations(db.session, org), state=team.invitation_state,
        invite_form=invite_form or forms.InviteForm(formdata=None), action_form=forms.EmptyForm(),
        is_owner=is_institution_owner(current_user, org), new_code=new_code,
        days=team.INVITATION_DAYS), status


@bp.get("/team")
@provider_required
def team_page():
    return _team_page(_require_institution())


@bp.post("/team/invite")
@provider_required
def team_invite():
    org = _require_institution()
    if not is_institution_owner(current_user, org):
        abort(403)
    form = forms.InviteForm()
    if not form.validate_on_submit():
        return _team_page(org, form, status=422)
    try:
        created = team.invite(db.session, _user(), org, form.email.data)
    except RuleError as exc:
        db.session.rollback()
        form.email.errors = [*form.email.errors, exc.message]
        return _team_page(org, form, status=422)
    db.session.commit()
    flash(_("Invitation emailed to %(email)s.", email=created.invitation.email), "success")
    # The code is shown once, on this response only; it is not stored anywhere readable.
    return _team_page(org, new_code={"email": created.invitation.email, "code": created.code,
                                     "link": created.link})


@bp.post("/team/invitations/<int:invitation_id>/revoke")
@provider_required
def team_revoke(invitation_id):
    invitation = db.session.get(Invitation, invitation_id)
    if invitation is None:
        abort(404)
    if not is_institution_owner(current_user, invitation.organisation):
        abort(403)
    if not forms.EmptyForm().validate_on_submit():
        abort(400)
    team.revoke(db.session, _user(), invitation)
    db.session.commit()
    flash(_("Invitation for %(email)s revoked.", email=invitation.email), "info")
    return redirect(url_for("portal.team_page"))


def _team_member(user_id) -> tuple[Organisation, User]:
    org = _require_institution()
    if not is_institution_owner(current_user, org):
        abort(403)
    member = db.session.get(User, user_id)
    if member is None:
        abort(404)
    if member.organisation_id != org.id:
        abort(403)
    if not forms.EmptyForm().validate_on_submit():
        abort(400)
    return org, member


@bp.post("/team/members/<int:user_id>/remove")
@provider_required
def team_remove(user_id):
    org, member = _team_member(user_id)
    team.remove_member(db.session, _user(), org, member)
    db.session.commit()
    flash(_("%(name)s was removed from %(org)s.", name=member.full_name, org=org.name), "info")
    return redirect(url_for("portal.team_page"))


@bp.post("/team/members/<int:user_id>/make-owner")
@provider_required
def team_make_owner(user_id):
    org, member = _team_member(user_id)
    team.make_owner(db.session, _user(), org, member)
    db.session.commit()
    flash(_("%(name)s is now an owner of %(org)s.", name=member.full_name, org=org.name),
          "success")
    return redirect(url_for("portal.team_page"))


@bp.post("/team/leave")
@provider_required
def team_leave():
    _require_institution()
    if not forms.EmptyForm().validate_on_submit():
        abort(400)
    try:
        org = team.leave(db.session, _user())
    except RuleError as exc:
        db.session.rollback()
        flash(exc.message, "danger")
        return redirect(url_for("portal.team_page"))
    db.session.commit()
    flash(_("You have left %(org)s.", org=org.name), "info")
    return redirect(url_for("portal.dashboard"))


@bp.route("/team/join", methods=["GET", "POST"])
@login_required
def team_join_code():
    """Type an invitation code by hand (signed-in users)."""
    form = forms.JoinCodeForm()
    if form.validate_on_submit():
        return redirect(url_for("portal.team_join", code=form.code.data))
    return render_template("portal/join_code.html", form=form)


def _join_page(invitation, code, signup_form=None, status=200):
    error = None
    try:
        team.require_open(invitation)
    except RuleError as exc:
        error = exc.message
    refusal = None
    if error is None and current_user.is_authenticated:
        refusal = team.join_refusal(current_user, invitation)
    return render_template(
        "portal/join.html", invitation=invitation, code=code, error=error, refusal=refusal,
        signup_form=signup_form or forms.JoinSignupForm(
            email=invitation.email if invitation else None),
        action_form=forms.EmptyForm()), (status if error is None
                                         else 404 if invitation is None else 410)


@bp.get("/team/join/<code>")
def team_join(code):
    return _join_page(team.find_invitation(db.session, code), code)


@bp.post("/team/join/<code>")
@login_required
def team_join_accept(code):
    if not forms.EmptyForm().validate_on_submit():
        abort(400)
    invitation = team.find_invitation(db.session, code)
    try:
        org = team.accept(db.session, _user(), code)
    except RuleError:
        db.session.rollback()
        return _join_page(invitation, code, status=409)
    db.session.commit()
    flash(_("Welcome to %(org)s! You can now manage its listings.", org=org.name), "success")
    return redirect(url_for("portal.dashboard"))


@bp.post("/team/join/<code>/signup")
def team_join_signup(code):
    if current_user.is_authenticated:
        return redirect(url_for("portal.team_join", code=code))
    invitation = team.find_invitation(db.session, code)
    form = forms.JoinSignupForm()
    if not form.validate_on_submit():
        return _join_page(invitation, code, form, status=422)
    data = team.JoinSignup(full_name=form.full_name.data, email=form.email.data,
                           phone=form.phone.data or "", password=form.password.data)
    try:
        user = team.signup_and_accept(db.session, code, data)
        db.session.commit()
    except RuleError as exc:
        db.session.rollback()
        target = getattr(form, exc.field or "", None)
        if target is not None and exc.field != "code":
            target.errors = [*target.errors, exc.message]
        else:
            form.form_errors.append(exc.message)
        return _join_page(invitation, code, form, status=422)
    except IntegrityError:
        db.session.rollback()
        form.email.errors = [*form.email.errors, _("An account with this email was created a "
                                                   "moment ago. Log in instead.")]
        return _join_page(invitation, code, form, status=422)
    login_user(user)
    flash(_("Welcome, %(name)s! You are now a member of %(org)s.", name=user.full_name,
            org=user.organisation.name), "success")
    return redirect(url_for("portal.dashboard"))

