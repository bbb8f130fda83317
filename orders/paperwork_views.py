"""Paperwork pages (issue 14): an order's contract (versions, PDF, signing, terms), its 发票
(request, issue, reverse, download), the enterprise's invoice profiles, and the staff pages
(unsigned contracts and overdue 发票 with a nudge; contract-registration export).

Thin views: parse the form, call orders.contracts / orders.invoices, commit, redirect.
Who may see what: an order's paperwork is visible to whoever may see the order
(marketplace.permissions.can_view_order): anyone else gets 404, as for the order itself.
"""

import calendar
import csv
import io
import zipfile
from datetime import date, datetime

from flask import (
    Blueprint,
    Response,
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
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user, login_required
from sqlalchemy import select

from marketplace.database import db, utcnow
from marketplace.i18n import local_today, to_local
from marketplace.permissions import can_view_order, order_role, role_required, staff_required
from orders import contracts, invoices, services
from orders.models import SettlementStatement
from orders.money import MoneyError, format_amount, parse_amount, parse_share
from orders.paperwork_models import (
    CONTRACT_TYPE_NAMES,
    CONTRACT_TYPES,
    INVOICE_KIND_NAMES,
    OWNERSHIP_CHOICES,
    OWNERSHIP_NAMES,
    Contract,
    Invoice,
    InvoiceProfile,
)
from providers import uploads

bp = Blueprint("paperwork", __name__)
enterprise_required = role_required("enterprise")


def _user():
    return current_user._get_current_object()


def _load_order(order_id: int):
    order = services.load(db.session, order_id)
    if order is None or not can_view_order(current_user, order):
        abort(404)
    return order, order_role(current_user, order)


def _order_page(order, role: str) -> str:
    return {"provider": url_for("orders.provider_order", order_id=order.id),
            "staff": url_for("orders.staff_order", order_id=order.id)}.get(
        role, url_for("orders.order_detail", order_id=order.id))


def _client_ip() -> str:
    return request.remote_addr or ""  # real client address behind TRUSTED_PROXIES (ProxyFix)


# --------------------------------------------------------------------------- contract

def contract_actions(contract: Contract | None, user, role: str) -> dict:
    """What the viewer may do with the live version (the template only shows these)."""
    if contract is None:
        return {"sign": False, "change": False}
    side = contracts.side_of(user, contract.order)
    waiting = contract.status == "awaiting_signatures"
    return {"sign": waiting and side is not None and contract.signature_of(side) is None,
            "change": waiting and side == "provider", "side": side}


@bp.get("/orders/<int:order_id>/contract")
@login_required
def contract_page(order_id):
    order, role = _load_order(order_id)
    all_versions = contracts.versions(db.session, order.id)
    live = next((c for c in all_versions if c.status != "superseded"), None)
    return render_template(
        "contracts/page.html", order=order, role=role, contract=live, versions=all_versions,
        actions=contract_actions(live, _user(), role), order_page=_order_page(order, role),
        types=CONTRACT_TYPE_NAMES, ownerships=OWNERSHIP_NAMES,
        blocked=contracts.start_blocked_reason(order))


def _version(order_id: int, version: int) -> tuple:
    order, role = _load_order(order_id)
    contract = db.session.scalar(select(Contract).where(Contract.order_id == order.id,
                                                           Contract.version == version))
    if contract is None:
        abort(404)
    return order, role, contract


def _pdf_response(data: bytes, name: str) -> Response:
    response = Response(data, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f"attachment; filename=\"{name}\""
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/orders/<int:order_id>/contract/v<int:version>.pdf")
@login_required
def contract_pdf(order_id, version):
    """The Chinese PDF of a version (with the signature page once signed); ``?lang=en``
    renders the English reading copy of the same terms (not signed, not stored);
    ``?copy=unsigned`` the exact document the signatures' hash is of."""
    order, _role, contract = _version(order_id, version)
    if request.args.get("lang") == "en":
        from orders.contract_pdf import render_contract

        data = render_contract(contract, language="en", signed=contract.status == "signed")
        return _pdf_response(data, f"contract-{order.number}-v{version}-en.pdf")
    if request.args.get("copy") == "unsigned":
        data = contracts.ensure_pdf(db.session, contract)
    else:
        data = contracts.current_pdf(db.session, contract)
    db.session.commit()  # a first rendering is kept: its hash is what gets signed
    suffix = "-signed" if contract.signed_pdf is not None and request.args.get("copy") != \
        "unsigned" else ""
    return _pdf_response(data, f"contract-{order.number}-v{version}{suffix}.pdf")


@bp.post("/orders/<int:order_id>/contract/sign")
@login_required
def sign_contract(order_id):
    order, role = _load_order(order_id)
    try:
        contract_id = int(request.form.get("contract_id", ""))
    except ValueError:
        abort(400)
    contract = db.session.get(Contract, contract_id)
    if contract is None or contract.order_id != order.id:
        abort(404)
    try:
        contracts.sign(db.session, contract, _user(), request.form.get("password") or "",
                       ip=_client_ip())
    except contracts.ContractError as exc:
        db.session.rollback()
        if exc.status == 403:
            abort(403, exc.message)
        flash(exc.message, "danger")
        return redirect(url_for("paperwork.contract_page", order_id=order.id))
    db.session.commit()
    done = contract.status == "signed"
    flash(_("Contract signed by both sides: work can start.") if done else
          _("You signed the contract. The other side has been asked to sign."), "success")
    return redirect(url_for("paperwork.contract_page", order_id=order.id))


@bp.post("/orders/<int:order_id>/contract/terms")
@login_required
def change_contract(order_id):
    order, role = _load_order(order_id)
    contract = contracts.live(db.session, order.id)
    if contract is None:
        abort(404)
    try:
        new = contracts.change_terms(db.session, contract, _user(),
                                     contract_type=request.form.get("contract_type", ""),
                                     ownership=request.form.get("ownership", ""))
    except contracts.ContractError as exc:
        db.session.rollback()
        if exc.status == 403:
            abort(403, exc.message)
        flash(exc.message, "danger")
        return redirect(url_for("paperwork.contract_page", order_id=order.id))
    db.session.commit()
    flash(_("Version %(version)s of the contract is ready; both sides sign it again.",
            version=new.version),
          "success")
    return redirect(url_for("paperwork.contract_page", order_id=order.id))


# --------------------------------------------------------------------------- 发票 of an order

@bp.get("/orders/<int:order_id>/invoices")
@login_required
def order_invoices(order_id):
    order, role = _load_order(order_id)
    figures = invoices.amounts(db.session, order)
    profiles = invoices.profiles_of(db.session, order.buyer_org_id) if role == "buyer" else []
    return render_template("invoices/order.html", order=order, role=role,
                           invoices=invoices.for_order(db.session, order.id), figures=figures,
                           profiles=profiles, order_page=_order_page(order, role),
                           can_request=role == "buyer" and figures.requestable > 0)


@bp.post("/orders/<int:order_id>/invoices")
@enterprise_required
def request_invoice(order_id):
    order, role = _load_order(order_id)
    back = url_for("paperwork.order_invoices", order_id=order.id)
    try:
        profile = db.session.get(InvoiceProfile, int(request.form.get("profile_id", "")))
        amount = parse_amount(request.form.get("amount", ""), order.currency)
    except (ValueError, MoneyError):
        flash(_("Choose an invoice profile and enter the amount."), "danger")
        return redirect(back)
    if profile is None:
        abort(404)
    try:
        invoices.request_invoice(db.session, _user(), order, profile, amount,
                                 request.form.get("note", ""))
    except invoices.InvoiceError as exc:
        db.session.rollback()
        if exc.status in (403, 404):
            abort(exc.status, exc.message)
        flash(exc.message, "danger")
        return redirect(back)
    db.session.commit()
    flash(_("VAT invoice requested. The institution has been told."), "success")
    return redirect(back)


def _load_invoice(invoice_id: int) -> Invoice:
    invoice = db.session.get(Invoice, invoice_id)
    if invoice is None or not invoices.can_view(current_user, invoice):
        abort(404)
    return invoice


@bp.get("/invoices/<int:invoice_id>")
@login_required
def invoice_detail(invoice_id):
    invoice = _load_invoice(invoice_id)
    role = order_role(current_user, invoice.order)
    return render_template("invoices/detail.html", invoice=invoice, order=invoice.order,
                           role=role, tax_rates=invoices.TAX_RATES_BP,
                           figures=invoices.amounts(db.session, invoice.order),
                           today=local_today())


@bp.post("/invoices/<int:invoice_id>/issue")
@login_required
def issue_invoice(invoice_id):
    invoice = _load_invoice(invoice_id)
    back = url_for("paperwork.invoice_detail", invoice_id=invoice.id)
    upload = request.files.get("file")
    upload_dir = current_app.config["UPLOAD_DIR"]
    try:
        data = invoices.IssueInput(
            number=request.form.get("number", ""), code=request.form.get("code", ""),
            issued_on=date.fromisoformat(request.form.get("issued_on", "")),
            amount=parse_amount(request.form.get("amount", ""), invoice.currency),
            tax_rate_bp=parse_share(request.form.get("tax_rate", "")))
    except (ValueError, MoneyError):
        flash(_("Fill in the invoice number, date (YYYY-MM-DD), amount and tax rate."), "danger")
        return redirect(back)
    stored = None
    try:
        if upload is None or not upload.filename:
            raise uploads.UploadError(_("Attach the VAT invoice as a PDF or OFD file."))
        checked = invoices.check_file(
            uploads.read_limited(upload.stream, invoices.MAX_FILE_BYTES), upload.filename)
        stored = uploads.new_stored_name(checked.content_type)
        invoices.issue(db.session, _user(), invoice, data, checked, stored)
        uploads.write(upload_dir, checked, stored)
        db.session.commit()
    except (uploads.UploadError, invoices.InvoiceError) as exc:
        db.session.rollback()
        uploads.remove(upload_dir, stored)
        if getattr(exc, "status", 400) == 403:
            abort(403, exc.message)
        flash(exc.message, "danger")
        return redirect(back)
    except Exception:
        db.session.rollback()
        uploads.remove(upload_dir, stored)
        raise
    flash(_("VAT invoice recorded. The buyer can download it now."), "success")
    return redirect(back)


@bp.post("/invoices/<int:invoice_id>/reverse")
@login_required
def reverse_invoice(invoice_id):
    invoice = _load_invoice(invoice_id)
    back = url_for("paperwork.invoice_detail", invoice_id=invoice.id)
    try:
        invoices.reverse(db.session, _user(), invoice, request.form.get("reversal_number", ""),
                         request.form.get("reason", ""))
    except invoices.InvoiceError as exc:
        db.session.rollback()
        if exc.status == 403:
            abort(403, exc.message)
        flash(exc.message, "danger")
        return redirect(back)
    db.session.commit()
    flash(_("VAT invoice marked as reversed with a red-letter invoice."), "success")
    return redirect(back)


@bp.get("/invoices/<int:invoice_id>/file")
@login_required
def invoice_file(invoice_id):
    invoice = _load_invoice(invoice_id)
    if not invoice.file_stored_name:
        abort(404)
    try:
        path = uploads.path_for(current_app.config["UPLOAD_DIR"], invoice.file_stored_name)
    except uploads.UploadError:
        abort(404)
    if not path.is_file():
        abort(404)
    response = send_file(path, mimetype=invoice.file_content_type, as_attachment=True,
                         download_name=invoice.file_name or path.name, max_age=0)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "private, no-store"
    return response


# --------------------------------------------------------------------------- profiles

def _profile_input() -> invoices.ProfileInput:
    form = request.form
    return invoices.ProfileInput(
        title=form.get("title", ""), taxpayer_number=form.get("taxpayer_number", ""),
        address=form.get("address", ""), phone=form.get("phone", ""),
        bank_name=form.get("bank_name", ""), bank_account=form.get("bank_account", ""),
        kind=form.get("kind", "ordinary"), email=form.get("email", ""))


@bp.route("/account/invoice-profiles", methods=["GET", "POST"])
@enterprise_required
def invoice_profiles():
    user = _user()
    entered = None
    if request.method == "POST":
        try:
            invoices.save_profile(db.session, user, _profile_input())
            db.session.commit()
            flash(_("Invoice profile saved."), "success")
            return redirect(request.args.get("next") if (request.args.get("next") or "")
                            .startswith("/orders/") else url_for("paperwork.invoice_profiles"))
        except invoices.InvoiceError as exc:
            db.session.rollback()
            flash(exc.message, "danger")
            entered = request.form
    organisation = user.organisation
    return render_template("invoices/profiles.html",
                           profiles=invoices.profiles_of(db.session, user.organisation_id),
                           kinds=INVOICE_KIND_NAMES, entered=entered, organisation=organisation)


def _own_profile(profile_id: int) -> InvoiceProfile:
    profile = db.session.get(InvoiceProfile, profile_id)
    if profile is None or profile.organisation_id != current_user.organisation_id:
        abort(404)
    return profile


@bp.post("/account/invoice-profiles/<int:profile_id>")
@enterprise_required
def edit_invoice_profile(profile_id):
    profile = _own_profile(profile_id)
    try:
        invoices.save_profile(db.session, _user(), _profile_input(), profile)
    except invoices.InvoiceError as exc:
        db.session.rollback()
        flash(exc.message, "danger")
        return redirect(url_for("paperwork.invoice_profiles"))
    db.session.commit()
    flash(_("Invoice profile updated."), "success")
    return redirect(url_for("paperwork.invoice_profiles"))


@bp.post("/account/invoice-profiles/<int:profile_id>/delete")
@enterprise_required
def delete_invoice_profile(profile_id):
    profile = _own_profile(profile_id)
    invoices.delete_profile(db.session, _user(), profile)
    db.session.commit()
    flash(_("Invoice profile deleted."), "success")
    return redirect(url_for("paperwork.invoice_profiles"))


# --------------------------------------------------------------------------- staff

@bp.get("/staff/paperwork")
@staff_required
def staff_paperwork():
    now = utcnow()
    return render_template("contracts/staff.html", unsigned=contracts.unsigned(db.session),
                           overdue=invoices.overdue(db.session, now),
                           statements=invoices.statements_to_invoice(db.session),
                           overdue_days=invoices.overdue_days(), now=now)


@bp.post("/staff/contracts/<int:contract_id>/nudge")
@staff_required
def nudge_contract(contract_id):
    contract = db.session.get(Contract, contract_id)
    if contract is None:
        abort(404)
    try:
        count = contracts.nudge(db.session, contract, _user())
    except contracts.ContractError as exc:
        db.session.rollback()
        flash(exc.message, "warning")
        return redirect(url_for("paperwork.staff_paperwork"))
    db.session.commit()
    flash(ngettext("Reminder sent to %(num)d member.", "Reminder sent to %(num)d members.",
                   count), "success")
    return redirect(url_for("paperwork.staff_paperwork"))


@bp.post("/staff/invoices/<int:invoice_id>/nudge")
@staff_required
def nudge_invoice(invoice_id):
    invoice = db.session.get(Invoice, invoice_id)
    if invoice is None:
        abort(404)
    try:
        count = invoices.nudge(db.session, invoice, _user())
    except invoices.InvoiceError as exc:
        db.session.rollback()
        flash(exc.message, "warning")
        return redirect(url_for("paperwork.staff_paperwork"))
    db.session.commit()
    flash(ngettext("Reminder sent to %(num)d member of the institution.",
                   "Reminder sent to %(num)d members of the institution.", count), "success")
    return redirect(url_for("paperwork.staff_paperwork"))


@bp.post("/staff/settlement/statements/<int:statement_id>/fee-invoice")
@staff_required
def platform_fee_invoice(statement_id):
    statement = db.session.get(SettlementStatement, statement_id)
    if statement is None:
        abort(404)
    try:
        row = invoices.platform_fee_invoice(db.session, _user(), statement)
    except invoices.InvoiceError as exc:
        db.session.rollback()
        flash(exc.message, "warning")
        return redirect(url_for("paperwork.staff_paperwork"))
    db.session.commit()
    flash(_("Platform VAT invoice %(number)s recorded for %(institution)s.",
            number=row.number, institution=statement.provider.name), "success")
    return redirect(url_for("paperwork.staff_paperwork"))


# --------------------------------------------------------------------------- registration

REGISTRATION_COLUMNS = [
    ("contract_no", "合同编号 Contract no."), ("contract_type", "合同类型 Type"),
    ("project", "项目名称 Project"), ("buyer", "委托方 Buyer"),
    ("buyer_credit_code", "委托方信用代码 Buyer credit code"),
    ("provider", "受托方 Institution"),
    ("provider_credit_code", "受托方信用代码 Institution credit code"),
    ("amount", "合同金额（元） Amount (CNY)"),
    ("technical_amount", "技术交易额（元） Technical-transaction amount (CNY)"),
    ("signed_on", "签订日期 Signed on"), ("due_on", "履行期限 Due"),
    ("region", "所在地区 Region"), ("field", "技术领域 Field"),
    ("ownership", "成果归属 Results ownership"), ("sha256", "SHA-256"),
]
# The files keep the bilingual headings above (the technology-market office reads
# Chinese); the page shows the column headings in the viewer's language.
REGISTRATION_HEADINGS = {
    "contract_no": _l("Contract no."), "contract_type": _l("Contract type"),
    "project": _l("Project"), "buyer": _l("Buyer (client)"),
    "buyer_credit_code": _l("Buyer credit code"), "provider": _l("Institution (contractor)"),
    "provider_credit_code": _l("Institution credit code"), "amount": _l("Amount (CNY)"),
    "technical_amount": _l("Technical-transaction amount (CNY)"),
    "signed_on": _l("Signed on"), "due_on": _l("Due"), "region": _l("Region"),
    "field": _l("Technical field"), "ownership": _l("Results ownership"), "sha256": "SHA-256",
}


def _period() -> tuple[date, date, str]:
    """?month=YYYY-MM (default: this month) or ?start=&end= (YYYY-MM-DD, inclusive)."""
    today = local_today()
    try:
        if request.args.get("start") and request.args.get("end"):
            start = date.fromisoformat(request.args["start"])
            end = date.fromisoformat(request.args["end"])
            if end < start:
                raise ValueError
            return start, end, f"{start.isoformat()}_{end.isoformat()}"
        month = request.args.get("month") or f"{today:%Y-%m}"
        start = datetime.strptime(month, "%Y-%m").date()
    except ValueError:
        abort(400, _("Give the period as ?month=YYYY-MM or ?start=YYYY-MM-DD&end=YYYY-MM-DD."))
    end = start.replace(day=calendar.monthrange(start.year, start.month)[1])
    return start, end, f"{start:%Y-%m}"


def registration_rows(found: list[Contract], official: bool = True) -> list[dict]:
    """The registration fields of each contract. ``official``: the contract type and the
    ownership in the office's Chinese wording (the exports); otherwise in the viewer's
    language (the page)."""
    type_names = ({code: names[0] for code, names in CONTRACT_TYPES.items()} if official
                  else CONTRACT_TYPE_NAMES)
    ownership_names = ({code: names[0] for code, names in OWNERSHIP_CHOICES.items()}
                       if official else OWNERSHIP_NAMES)
    rows = []
    for contract in found:
        terms, order = contract.terms, contract.order
        amount = format_amount(order.subtotal, order.currency, symbol=False).replace(",", "")
        rows.append({
            "contract_no": f"{order.number}-V{contract.version}",
            "contract_type": str(type_names[contract.contract_type]),
            "project": terms.get("order_title", ""),
            "buyer": terms["buyer"]["name"], "buyer_credit_code": terms["buyer"]["credit_code"],
            "provider": terms["provider"]["name"],
            "provider_credit_code": terms["provider"]["credit_code"],
            # The whole price is for technical work here (no equipment or materials are
            # sold through the platform), so the technical-transaction amount equals it.
            "amount": amount, "technical_amount": amount,
            "signed_on": to_local(contract.signed_at).date().isoformat(),
            "due_on": terms.get("due_date", ""),
            "region": terms["buyer"].get("region_zh") or terms.get("region", ""),
            "field": terms.get("field", ""), "ownership": str(ownership_names[contract.ownership]),
            "sha256": contract.sha256 or "",
        })
    return rows


@bp.get("/staff/contract-registration")
@staff_required
def registration():
    start, end, label = _period()
    found = contracts.signed_in_period(db.session, start, end)
    return render_template("contracts/registration.html",
                           rows=registration_rows(found, official=False),
                           columns=list(REGISTRATION_HEADINGS.items()), start=start, end=end, label=label,
                           query=request.args.to_dict())


@bp.get("/staff/contract-registration/export.csv")
@staff_required
def registration_csv():
    start, end, label = _period()
    rows = registration_rows(contracts.signed_in_period(db.session, start, end))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([title for _key, title in REGISTRATION_COLUMNS])
    for row in rows:
        writer.writerow([row[key] for key, _title in REGISTRATION_COLUMNS])
    # A byte-order mark, so Excel opens the Chinese columns as UTF-8.
    response = Response("\ufeff" + buffer.getvalue(), mimetype="text/csv; charset=utf-8")
    response.headers["Content-Disposition"] = \
        f"attachment; filename=contract-registration-{label}.csv"
    return response


@bp.get("/staff/contract-registration/export.xlsx")
@staff_required
def registration_xlsx():
    from openpyxl import Workbook

    start, end, label = _period()
    rows = registration_rows(contracts.signed_in_period(db.session, start, end))
    book = Workbook()
    sheet = book.active
    sheet.title = "技术合同登记"
    sheet.append([title for _key, title in REGISTRATION_COLUMNS])
    for row in rows:
        values = [row[key] for key, _title in REGISTRATION_COLUMNS]
        for index, (key, _title) in enumerate(REGISTRATION_COLUMNS):
            if key in ("amount", "technical_amount"):
                values[index] = float(values[index])  # a number cell that Excel can sum
        sheet.append(values)
    sheet.freeze_panes = "A2"
    buffer = io.BytesIO()
    book.save(buffer)
    response = Response(buffer.getvalue(), mimetype="application/vnd.openxmlformats-"
                                                    "officedocument.spreadsheetml.sheet")
    response.headers["Content-Disposition"] = \
        f"attachment; filename=contract-registration-{label}.xlsx"
    return response


@bp.get("/staff/contract-registration/signed-pdfs.zip")
@staff_required
def registration_zip():
    start, end, label = _period()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for contract in contracts.signed_in_period(db.session, start, end):
            archive.writestr(f"{contract.order.number}-V{contract.version}.pdf",
                             contracts.current_pdf(db.session, contract))
    response = Response(buffer.getvalue(), mimetype="application/zip")
    response.headers["Content-Disposition"] = \
        f"attachment; filename=signed-contracts-{label}.zip"
    return response


# --------------------------------------------------------------------------- wiring

def order_paperwork(order) -> dict:
    """For the order page's paperwork box (templates/contracts/_order_links.html)."""
    return contracts.order_summary(db.session, order.id)

