"""Pages of the demand side: the enterprise's needs (需求), the demand board (需求大厅) for
institutions, proposals and their threads, and the staff queue, list and funnel.

Thin: parse the form, call ``demand.services``, commit or roll back, render. Who may see
what is decided by marketplace.permissions (through services.require_view)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from catalog.models import Category
from catalog.services import parse_page
from demand import board, funnel, matching, services
from demand.models import Need, NeedFile, NeedInvitation, Proposal
from demand.services import DemandError, NeedData, ProposalData
from marketplace import reference
from marketplace.database import db, utcnow
from marketplace.models import Organisation
from marketplace.permissions import (
    can_see_buyer_name,
    can_view_proposal,
    role_required,
    staff_required,
)
from orders.money import MoneyError, parse_amount, parse_share
from providers import uploads

bp = Blueprint("demand", __name__)
LOCAL = ZoneInfo("Asia/Shanghai")


def _user():
    return current_user._get_current_object()


def _page_size() -> int:
    return int(current_app.config.get("PAGE_SIZE") or 24)


def _fail(exc: DemandError):
    """A refused action: 400s come back to the form as a message, others as the status."""
    db.session.rollback()
    if exc.status != 400:
        abort(exc.status, exc.message)
    flash(exc.message, "danger")


def _need_or_404(need_id: int) -> Need:
    need = services.load_need(db.session, need_id)
    if need is None:
        abort(404)
    return need


def _proposal_or_404(proposal_id: int) -> Proposal:
    proposal = db.session.get(Proposal, proposal_id)
    if proposal is None or not can_view_proposal(_user(), proposal):
        abort(404)
    return proposal


def _subcategories():
    tops = db.session.scalars(select(Category).where(Category.parent_id.is_(None))
                              .order_by(Category.position)).all()
    return [(top, list(top.children)) for top in tops]


# --------------------------------------------------------------------------- form parsing

def _amount(name: str, currency: str = "CNY") -> int | None:
    raw = (request.form.get(name) or "").strip()
    if not raw:
        return None
    try:
        return parse_amount(raw, currency)
    except MoneyError as exc:
        raise DemandError(f"{exc}.") from None


def _int(name: str, label: str) -> int | None:
    raw = (request.form.get(name) or "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise DemandError(_("%(field)s must be a whole number.", field=label)) from None


def _date(name: str, label: str) -> date | None:
    raw = (request.form.get(name) or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise DemandError(_("%(field)s: write the date as YYYY-MM-DD.", field=label)) from None


def _deadline() -> datetime | None:
    """The proposal deadline: a local date (end of that day, Asia/Shanghai) and optional
    time, stored in UTC."""
    day = _date("proposal_deadline", _("Proposal deadline"))
    if day is None:
        return None
    raw = (request.form.get("proposal_deadline_time") or "").strip() or "23:59"
    try:
        clock = time.fromisoformat(raw)
    except ValueError:
        raise DemandError(_("Proposal deadline: write the time as HH:MM.")) from None
    return datetime.combine(day, clock, tzinfo=LOCAL).astimezone(UTC)


def _need_data() -> NeedData:
    form = request.form
    return NeedData(
        title=form.get("title", ""), description=form.get("description", ""),
        category_id=_int("category_id", _("Category")),
        budget_kind=form.get("budget_kind", "open"),
        budget_min=_amount("budget_min"), budget_max=_amount("budget_max"),
        financial_amount=_amount("financial_amount"),
        financial_term_months=_int("financial_term_months", _("The term")),
        financial_purpose=form.get("financial_purpose"),
        proposal_deadline=_deadline(),
        wanted_delivery=_date("wanted_delivery", _("Wanted delivery")),
        region=form.get("region") or None, visibility=form.get("visibility", "public"),
        show_company=form.get("show_company") == "1")


def _milestones() -> list[dict]:
    titles = request.form.getlist("ms_title")
    shares = request.form.getlist("ms_share")
    dues = request.form.getlist("ms_due")
    rows = []
    for number, (title, share, due) in enumerate(zip(titles, shares, dues, strict=False),
                                                 start=1):
        if not (title.strip() or share.strip() or due.strip()):
            continue
        try:
            share_bp = parse_share(share) if share.strip() else 0
        except MoneyError as exc:
            raise DemandError(_("Milestone %(number)s: %(problem)s.", number=number, problem=exc)) from None
        rows.append({"title": title, "share_bp": share_bp, "due_date": due.strip() or None})
    return rows


def _proposal_data(need: Need) -> ProposalData:
    form = request.form
    rate = (form.get("rate") or "").strip()
    try:
        rate_bp = parse_share(rate) if rate else None
    except MoneyError as exc:
        raise DemandError(_("Rate: %(problem)s.", problem=exc)) from None
    return ProposalData(
        price=_amount("price", need.currency), delivery_date=_date("delivery_date", _("Delivery")),
        milestones=_milestones(), team=form.get("team", ""),
        cover_note=form.get("cover_note", ""),
        offered_amount=_amount("offered_amount", need.currency), rate_bp=rate_bp,
        term_months=_int("term_months", _("The term")), conditions=form.get("conditions"))


def _save_need_files(need: Need, proposal: Proposal | None = None) -> list[str]:
    checked = services.check_files(request.files.getlist("files"))
    return services.save_files(db.session, current_app.config["UPLOAD_DIR"], need, checked,
                               _user(), proposal)


def _discard(written: list[str]) -> None:
    for name in written:
        uploads.remove(current_app.config["UPLOAD_DIR"], name)


# --------------------------------------------------------------------------- enterprise

@bp.get("/needs")
@role_required("enterprise")
def my_needs():
    status = request.args.get("status") or None
    page = services.needs_of(db.session, current_user.organisation_id, status=status,
                             page=parse_page(request.args.get("page")), page_size=_page_size())
    counts = services.proposal_counts(db.session, [n.id for n in page.items])
    return render_template("demand/my_needs.html", page=page, counts=counts, status=status,
                           statuses=services.NEED_STATUS_LABELS)


def _form_page(need: Need | None, data: NeedData | None):
    data = data or (NeedData.of(need) if need else NeedData())
    deadline_local = (data.proposal_deadline.astimezone(LOCAL)
                      if data.proposal_deadline else None)
    return render_template("demand/need_form.html", need=need, data=data,
                           deadline_local=deadline_local, categories=_subcategories(),
                           regions=reference.REGIONS, note=request.form.get("note", ""))


@bp.route("/needs/new", methods=["GET", "POST"])
@role_required("enterprise")
def new_need():
    if request.method == "GET":
        return _form_page(None, None)
    written = []
    data = None
    try:
        data = _need_data()
        need = services.create_need(db.session, _user(), data)
        written = _save_need_files(need)
        if request.form.get("action") == "submit":
            services.submit_need(db.session, _user(), need)
        db.session.commit()
    except (DemandError, uploads.UploadError) as exc:
        db.session.rollback()
        _discard(written)
        if isinstance(exc, DemandError) and exc.status != 400:
            abort(exc.status, exc.message)
        flash(exc.message, "danger")
        return _form_page(None, data), 400
    flash(_("Need submitted for moderation: staff check it before it opens.")
          if need.status == "submitted" else _("Need saved as a draft."), "success")
    return redirect(url_for("demand.need_detail", need_id=need.id))


@bp.route("/needs/<int:need_id>/edit", methods=["GET", "POST"])
@role_required("enterprise")
def edit_need(need_id):
    need = _need_or_404(need_id)
    if services.role_on(db.session, _user(), need) != "buyer":
        abort(404)
    if request.method == "GET":
        return _form_page(need, None)
    written = []
    data = None
    try:
        data = _need_data()
        services.update_need(db.session, _user(), need, data, request.form.get("note", ""))
        written = _save_need_files(need)
        db.session.commit()
    except (DemandError, uploads.UploadError) as exc:
        db.session.rollback()
        _discard(written)
        if isinstance(exc, DemandError) and exc.status != 400:
            abort(exc.status, exc.message)
        flash(exc.message, "danger")
        return _form_page(need, data), 400
    flash(_("Need updated. Version %(version)s is shown to the invited institutions.",
            version=need.version)
          if need.status == "open" else _("Need updated."), "success")
    return redirect(url_for("demand.need_detail", need_id=need.id))


def _buyer_action(need_id: int, action, message: str):
    need = _need_or_404(need_id)
    if services.role_on(db.session, _user(), need) != "buyer":
        abort(404)
    try:
        action(need)
        db.session.commit()
        flash(message, "success")
    except DemandError as exc:
        _fail(exc)
    return redirect(url_for("demand.need_detail", need_id=need.id))


@bp.post("/needs/<int:need_id>/submit")
@role_required("enterprise")
def submit_need(need_id):
    return _buyer_action(need_id, lambda need: services.submit_need(db.session, _user(), need),
                         _("Need submitted for moderation."))


@bp.post("/needs/<int:need_id>/close")
@role_required("enterprise")
def close_need(need_id):
    return _buyer_action(need_id, lambda need: services.close_need(
        db.session, _user(), need, request.form.get("reason", "")), _("Need closed."))


@bp.post("/needs/<int:need_id>/invite")
@role_required("enterprise")
def invite_favourite(need_id):
    provider = db.session.get(Organisation, _int_arg("provider_id"))
    if provider is None:
        abort(404)
    return _buyer_action(need_id, lambda need: services.invite_favourite(
        db.session, _user(), need, provider), _("%(name)s invited.", name=provider.name))


def _int_arg(name: str) -> int:
    try:
        return int(request.form.get(name) or 0)
    except ValueError:
        return 0


@bp.get("/needs/<int:need_id>")
@login_required
def need_detail(need_id):
    need = _need_or_404(need_id)
    role = services.role_on(db.session, _user(), need)
    if role is None:
        abort(404)
    if role == "provider":
        return redirect(url_for("demand.board_need", need_id=need.id))
    proposals = services.proposals_of(db.session, need)
    invitations = services.invitations_of(db.session, need)
    credibility = {p.provider_org_id: p.provider for p in proposals}
    hours = services.response_hours(db.session, list(credibility))
    favourites = (services.favourite_institutions(db.session, _user())
                  if role == "buyer" and need.status == "open" else [])
    invited_ids = {i.provider_org_id for i in invitations if i.status != "removed"}
    return render_template(
        "demand/need_detail.html", need=need, role=role, proposals=proposals,
        invitations=invitations, response_hours=hours,
        favourites=[f for f in favourites if f.id not in invited_ids],
        order=services.order_for(db.session, need), statuses=services.NEED_STATUS_LABELS,
        part_labels=matching.LABELS,
        proposal_statuses=services.PROPOSAL_STATUS_LABELS,
        decline_reasons=services.DECLINE_REASONS, weights=matching.WEIGHTS,
        can_award=role == "buyer" and need.status == "open",
        can_edit=role == "buyer" and need.status in ("draft", "submitted", "open"),
        now=utcnow())


@bp.post("/proposals/<int:proposal_id>/award")
@role_required("enterprise")
def award(proposal_id):
    proposal = _proposal_or_404(proposal_id)
    try:
        order = services.award(db.session, _user(), proposal, request.form.get("feedback", ""))
        db.session.commit()
    except DemandError as exc:
        _fail(exc)
        return redirect(url_for("demand.need_detail", need_id=proposal.need_id))
    if order.status != "pending_payment":  # a zero service fee: nothing to pay
        flash(_("Proposal awarded: order %(number)s needs no payment and goes straight to "
                "the institution.", number=order.number), "success")
        return redirect(url_for("orders.order_detail", order_id=order.id))
    flash(_("Proposal awarded: order %(number)s is waiting for your payment.",
            number=order.number), "success")
    return redirect(url_for("orders.pay", order_id=order.id))


@bp.post("/proposals/<int:proposal_id>/shortlist")
@role_required("enterprise")
def shortlist(proposal_id):
    proposal = _proposal_or_404(proposal_id)
    try:
        services.set_shortlisted(db.session, _user(), proposal,
                                 request.form.get("on") == "1")
        db.session.commit()
    except DemandError as exc:
        _fail(exc)
    return redirect(url_for("demand.need_detail", need_id=proposal.need_id) + "#proposals")


@bp.get("/proposals/<int:proposal_id>")
@login_required
def proposal_detail(proposal_id):
    proposal = _proposal_or_404(proposal_id)
    need = proposal.need
    return render_template("demand/proposal_detail.html", proposal=proposal, need=need,
                           statuses=services.PROPOSAL_STATUS_LABELS,
                           show_buyer=can_see_buyer_name(_user(), need),
                           side=("buyer" if current_user.role == "enterprise" else
                                 "provider" if current_user.role == "provider" else "staff"))


@bp.post("/proposals/<int:proposal_id>/messages")
@login_required
def post_message(proposal_id):
    proposal = _proposal_or_404(proposal_id)
    try:
        services.post_message(db.session, _user(), proposal, request.form.get("body", ""))
        db.session.commit()
    except DemandError as exc:
        _fail(exc)
    return redirect(url_for("demand.proposal_detail", proposal_id=proposal.id) + "#thread")


@bp.post("/proposals/<int:proposal_id>/withdraw")
@role_required("provider")
def withdraw(proposal_id):
    proposal = _proposal_or_404(proposal_id)
    try:
        services.withdraw_proposal(db.session, _user(), proposal)
        db.session.commit()
        flash(_("Proposal withdrawn."), "success")
    except DemandError as exc:
        _fail(exc)
    return redirect(url_for("demand.board_need", need_id=proposal.need_id))


@bp.get("/needs/<int:need_id>/files/<int:file_id>")
@login_required
def need_file(need_id, file_id):
    need = _need_or_404(need_id)
    row = db.session.get(NeedFile, file_id)
    if row is None or row.need_id != need.id:
        abort(404)
    if row.proposal_id is not None:
        if not can_view_proposal(_user(), db.session.get(Proposal, row.proposal_id)):
            abort(404)
    elif services.role_on(db.session, _user(), need) is None:
        abort(404)
    from orders.views import file_response

    return file_response(row)


# --------------------------------------------------------------------------- demand board

@bp.get("/demand")
@role_required("provider", "staff")
def board_page():
    tab = request.args.get("tab") or "board"
    org_id = current_user.organisation_id
    if tab == "invited" and org_id:
        page = services.invited_to(db.session, org_id, page=parse_page(request.args.get("page")),
                                   page_size=_page_size())
        return render_template("demand/board.html", tab=tab, page=page, result=None,
                               params=None, statuses=services.NEED_STATUS_LABELS)
    params = board.BoardParams.from_args(request.args)
    result = board.search(db.session, params, page_size=_page_size())
    return render_template("demand/board.html", tab="board", page=result.page, result=result,
                           params=params, categories=_subcategories(),
                           regions=reference.REGIONS, statuses=services.NEED_STATUS_LABELS,
                           bands=board.BUDGET_BANDS, deadlines=board.DEADLINES,
                           sorts=board.SORTS)


@bp.get("/demand/<int:need_id>")
@role_required("provider", "staff")
def board_need(need_id):
    need = _need_or_404(need_id)
    role = services.role_on(db.session, _user(), need)
    if role is None:
        abort(404)
    if role != "provider":
        return redirect(url_for("demand.need_detail", need_id=need.id))
    org_id = current_user.organisation_id
    invitation = services.invitation_for(db.session, need, org_id)
    proposal = services.proposal_for(db.session, need, org_id)
    now = utcnow()
    open_now = need.status == "open" and services._aware(need.proposal_deadline) > now
    return render_template(
        "demand/board_need.html", need=need, invitation=invitation, proposal=proposal,
        show_buyer=can_see_buyer_name(_user(), need), open_now=open_now,
        decline_reasons=services.DECLINE_REASONS, statuses=services.NEED_STATUS_LABELS,
        proposal_statuses=services.PROPOSAL_STATUS_LABELS,
        data=ProposalData.of(proposal) if proposal else None, now=now)


@bp.post("/demand/<int:need_id>/decline")
@role_required("provider")
def decline(need_id):
    need = _need_or_404(need_id)
    if services.role_on(db.session, _user(), need) is None:
        abort(404)
    try:
        services.decline_invitation(db.session, _user(), need, request.form.get("reason", ""),
                                    request.form.get("note", ""))
        db.session.commit()
        flash(_("Thank you: the enterprise will not wait for you on this need."), "success")
    except DemandError as exc:
        _fail(exc)
    return redirect(url_for("demand.board_need", need_id=need.id))


@bp.post("/demand/<int:need_id>/propose")
@role_required("provider")
def propose(need_id):
    need = _need_or_404(need_id)
    if services.role_on(db.session, _user(), need) is None:
        abort(404)
    existing = services.proposal_for(db.session, need, current_user.organisation_id)
    written = []
    try:
        data = _proposal_data(need)
        if existing is not None and existing.status == "active":
            proposal = services.revise_proposal(db.session, _user(), existing, data)
        else:
            proposal = services.submit_proposal(db.session, _user(), need, data)
        written = _save_need_files(need, proposal)
        db.session.commit()
    except (DemandError, uploads.UploadError) as exc:
        db.session.rollback()
        _discard(written)
        if isinstance(exc, DemandError) and exc.status != 400:
            abort(exc.status, exc.message)
        flash(exc.message, "danger")
        return redirect(url_for("demand.board_need", need_id=need.id) + "#proposal-form")
    flash(_("Proposal revised.") if proposal.version > 1 else _("Proposal sent."), "success")
    return redirect(url_for("demand.board_need", need_id=need.id))


# --------------------------------------------------------------------------- staff

@bp.get("/staff/needs")
@staff_required
def staff_needs():
    status = request.args.get("status") or None
    queue = services.moderation_queue(db.session, page=parse_page(request.args.get("qpage")),
                                      page_size=_page_size())
    from catalog.services import paginate

    stmt = select(Need).order_by(Need.created_at.desc(), Need.id.desc())
    if status in services.NEED_STATUS_LABELS:
        stmt = stmt.where(Need.status == status)
    page = paginate(db.session, stmt, parse_page(request.args.get("page")), _page_size())
    counts = services.proposal_counts(db.session, [n.id for n in page.items])
    return render_template("demand/staff_needs.html", queue=queue, page=page, counts=counts,
                           status=status, statuses=services.NEED_STATUS_LABELS)


def _staff_action(need_id: int, action, message: str):
    need = _need_or_404(need_id)
    try:
        action(need)
        db.session.commit()
        flash(message, "success")
    except DemandError as exc:
        _fail(exc)
    return redirect(url_for("demand.need_detail", need_id=need.id))


@bp.post("/staff/needs/<int:need_id>/approve")
@staff_required
def staff_approve(need_id):
    return _staff_action(need_id, lambda need: services.approve_need(
        db.session, _user(), need, request.form.get("note")),
        _("Need approved and opened; the matched institutions are invited."))


@bp.post("/staff/needs/<int:need_id>/reject")
@staff_required
def staff_reject(need_id):
    return _staff_action(need_id, lambda need: services.reject_need(
        db.session, _user(), need, request.form.get("reason", "")),
        _("Need returned to the enterprise."))


@bp.post("/staff/needs/<int:need_id>/invite")
@staff_required
def staff_invite(need_id):
    provider = db.session.get(Organisation, _int_arg("provider_id"))
    if provider is None or provider.kind != "provider":
        flash(_("No institution with that number."), "danger")
        return redirect(url_for("demand.need_detail", need_id=need_id))
    return _staff_action(need_id, lambda need: services.staff_invite(
        db.session, _user(), need, provider), _("%(name)s invited.", name=provider.name))


@bp.post("/staff/needs/invitations/<int:invitation_id>/remove")
@staff_required
def staff_uninvite(invitation_id):
    invitation = db.session.get(NeedInvitation, invitation_id)
    if invitation is None:
        abort(404)
    return _staff_action(invitation.need_id, lambda need: services.staff_remove_invitation(
        db.session, _user(), invitation, request.form.get("reason", "")),
        _("Invitation removed."))


@bp.get("/staff/needs/funnel")
@staff_required
def staff_funnel():
    today = utcnow().astimezone(LOCAL).date()
    try:
        start = date.fromisoformat(request.args.get("start") or "")
    except ValueError:
        start = today - timedelta(days=89)
    try:
        end = date.fromisoformat(request.args.get("end") or "")
    except ValueError:
        end = today
    if end < start:
        start, end = end, start
    try:
        days = max(1, min(365, int(request.args.get("days") or funnel.DEFAULT_UNANSWERED_DAYS)))
    except ValueError:
        days = funnel.DEFAULT_UNANSWERED_DAYS
    figures = funnel.build(db.session, start, end, unanswered_days=days)
    if request.args.get("format") == "csv":
        return Response(funnel.csv_text(figures), mimetype="text/csv", headers={
            "Content-Disposition": f"attachment; filename=needs-{start}-{end}.csv"})
    return render_template("demand/staff_funnel.html", f=figures, stages=funnel.STAGES,
                           statuses=services.NEED_STATUS_LABELS, days=days)
