"""Institution onboarding: the application (profile, logo, qualification documents), staff
verification decisions, and suspension / reinstatement.

Every function takes a session and the acting user, checks permission (PermissionDenied) and
state (RuleError), then makes the change together with its audit entry, notifications and
search-outbox rows. Nothing here commits: the caller does, once.
"""

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog import favourites
from catalog.search import outbox as search_outbox
from catalog.services import Page, paginate
from marketplace import audit, events, notifications, permissions, reference
from marketplace import credit_code as credit_codes
from marketplace.database import utcnow
from marketplace.events import OrganisationStandingChanged
from marketplace.models import AuditLog, Organisation, User
from marketplace.permissions import can_manage_institution, has_role
from providers import links, uploads
from providers.errors import PermissionDenied, RuleError
from providers.models import DOCUMENT_KINDS, QualificationDocument
from providers.state import advance

# States in which the institution may change its application.
EDITABLE = ("unverified", "more_info", "rejected", "verified")
SUBMITTABLE = ("unverified", "more_info", "rejected")
# Once verified, these identify the legal entity and only change through staff.
LEGAL_FIELDS = ("name", "credit_code", "institution_type")
REQUIRED_DOCUMENT = "business_licence"

ACTION_LABELS = {
    "institution.submit": ("Application submitted", "bi-send", "text-bg-primary"),
    "institution.approve": ("Approved — institution verified", "bi-patch-check-fill",
                            "text-bg-success"),
    "institution.reject": ("Application rejected", "bi-x-circle", "text-bg-danger"),
    "institution.request_info": ("More documents requested", "bi-question-circle",
                                 "text-bg-info"),
    "institution.suspend": ("Institution suspended", "bi-slash-circle", "text-bg-danger"),
    "institution.reinstate": ("Institution reinstated", "bi-arrow-counterclockwise",
                              "text-bg-success"),
    "institution.profile": ("Profile updated", "bi-pencil", "text-bg-light"),
    "institution.document_add": ("Document uploaded", "bi-file-earmark-arrow-up",
                                 "text-bg-light"),
    "institution.document_remove": ("Document removed", "bi-file-earmark-x", "text-bg-light"),
}
DECISIONS = ("institution.submit", "institution.approve", "institution.reject",
             "institution.request_info", "institution.suspend", "institution.reinstate")


@dataclass
class InstitutionProfile:
    name: str
    credit_code: str
    institution_type: str
    regions_served: list[str]
    description: str
    contact_name: str
    contact_phone: str
    contact_email: str
    website: str | None = None
    founded_year: int | None = None

    @classmethod
    def of(cls, org: Organisation) -> "InstitutionProfile":
        return cls(name=org.name, credit_code=org.credit_code or "",
                   institution_type=org.institution_type or "",
                   regions_served=list(org.regions_served or []), description=org.description or "",
                   contact_name=org.contact_name or "", contact_phone=org.contact_phone or "",
                   contact_email=org.contact_email or "", website=org.website,
                   founded_year=org.founded_year)


@dataclass(frozen=True)
class ChecklistItem:
    label: str
    done: bool
    hint: str = ""


# --------------------------------------------------------------------------- guards

def require_manager(user, org: Organisation) -> None:
    if not can_manage_institution(user, org):
        raise PermissionDenied("Only members of this institution can do that.")


def require_staff(user) -> None:
    if not has_role(user, "staff"):
        raise PermissionDenied("Only platform staff can do that.")


def _require_editable(org: Organisation) -> None:
    if org.verification_status == "pending":
        raise RuleError("Your application is being reviewed by platform staff. You can change "
                        "it again once they have decided (or asked you for more documents).")


def _require_reason(reason: str | None, what: str) -> str:
    reason = (reason or "").strip()
    if len(reason) < 5:
        raise RuleError(f"Give a reason for {what}: the institution will see it.", field="reason")
    return reason[:2000]


# --------------------------------------------------------------------------- the application

def update_profile(session: Session, user, org: Organisation,
                   profile: InstitutionProfile) -> list[str]:
    """Save the institution profile; returns the names of the fields that changed."""
    require_manager(user, org)
    _require_editable(org)
    if profile.institution_type not in reference.INSTITUTION_TYPE_LABELS:
        raise RuleError("Choose the kind of institution from the list.", field="institution_type")
    unknown = [code for code in profile.regions_served if code not in reference.REGION_LABELS]
    if unknown or not profile.regions_served:
        raise RuleError("Choose at least one region you serve from the list.",
                        field="regions_served")
    code = ""
    if profile.credit_code:
        try:
            code = credit_codes.validate(profile.credit_code)
        except credit_codes.CreditCodeError as exc:
            raise RuleError(str(exc), field="credit_code") from exc
        taken = session.scalar(select(Organisation.id).where(
            Organisation.credit_code == code, Organisation.id != org.id))
        if taken is not None:
            raise RuleError("Another organisation on the platform is registered with this unified "
                            "social credit code. Check the code, or contact platform staff.",
                            field="credit_code")
    values = {
        "name": profile.name.strip(), "credit_code": code or None,
        "institution_type": profile.institution_type,
        "regions_served": [c for c, _en, _zh in reference.REGIONS if c in profile.regions_served],
        "description": profile.description.strip(), "website": (profile.website or "").strip() or None,
        "contact_name": profile.contact_name.strip(), "contact_phone": profile.contact_phone.strip(),
        "contact_email": profile.contact_email.strip().lower(), "founded_year": profile.founded_year,
    }
    if org.is_verified:
        for name in LEGAL_FIELDS:
            if values[name] != getattr(org, name):
                raise RuleError("Your institution is verified: its legal name, credit code and type "
                                "can only be changed by platform staff. Contact them with the "
                                "updated business licence.", field=name)
    changed = [name for name, value in values.items() if getattr(org, name) != value]
    for name in changed:
        setattr(org, name, values[name])
    if changed:
        audit.record(session, user, "institution.profile", org, fields=changed)
    session.flush()
    return changed


def set_logo(session: Session, user, org: Organisation, checked: uploads.CheckedFile,
             upload_dir: str) -> str | None:
    """Store a new logo; returns the previous stored name, to delete after the commit."""
    require_manager(user, org)
    if checked.content_type not in uploads.IMAGE_TYPES:
        raise RuleError("A logo must be a PNG or JPEG image.", field="logo")
    previous = org.logo_file
    stored_name = uploads.new_stored_name(checked.content_type)
    org.logo_file = stored_name
    session.flush()
    uploads.write(upload_dir, checked, stored_name)
    return previous


def documents(session: Session, org: Organisation) -> list[QualificationDocument]:
    return list(session.scalars(
        select(QualificationDocument)
        .where(QualificationDocument.organisation_id == org.id)
        .order_by(QualificationDocument.uploaded_at, QualificationDocument.id)))


def add_document(session: Session, user, org: Organisation, kind: str,
                 checked: uploads.CheckedFile, upload_dir: str) -> QualificationDocument:
    """Record a checked qualification document and write its file (last, after the row)."""
    require_manager(user, org)
    _require_editable(org)
    if kind not in DOCUMENT_KINDS:
        raise RuleError("Choose what kind of document this is.", field="kind")
    if len(documents(session, org)) >= 20:
        raise RuleError("An application can hold at most 20 documents; remove outdated ones first.")
    document = QualificationDocument(
        organisation_id=org.id, kind=kind, original_name=checked.original_name,
        stored_name=uploads.new_stored_name(checked.content_type),
        content_type=checked.content_type, size=checked.size, sha256=checked.sha256,
        uploaded_by_id=user.id)
    session.add(document)
    session.flush()
    audit.record(session, user, "institution.document_add", org, document_id=document.id,
                 kind=kind, name=document.original_name, sha256=document.sha256)
    uploads.write(upload_dir, checked, document.stored_name)
    return document


def delete_document(session: Session, user, document: QualificationDocument) -> str:
    """Remove a document; returns its stored name so the caller deletes the file after commit."""
    org = document.organisation
    require_manager(user, org)
    _require_editable(org)
    if org.is_verified:
        raise RuleError("Documents of a verified institution are part of its verification record "
                        "and cannot be removed. Upload a newer version instead.")
    audit.record(session, user, "institution.document_remove", org, document_id=document.id,
                 kind=document.kind, name=document.original_name, sha256=document.sha256)
    stored_name = document.stored_name
    session.delete(document)
    session.flush()
    return stored_name


def checklist(session: Session, org: Organisation) -> list[ChecklistItem]:
    """What the application still needs before it can be submitted."""
    kinds = {doc.kind for doc in documents(session, org)}
    return [
        ChecklistItem("Legal name and institution type", bool(org.name and org.institution_type)),
        ChecklistItem("Unified social credit code", bool(org.credit_code),
                      "18 characters, on the business licence"),
        ChecklistItem("Regions served", bool(org.regions_served)),
        ChecklistItem("Service description", len((org.description or "").strip()) >= 30,
                      "At least a short paragraph about what you offer"),
        ChecklistItem("Contact person, phone and email",
                      bool(org.contact_name and org.contact_phone and org.contact_email)),
        ChecklistItem("Business licence uploaded", REQUIRED_DOCUMENT in kinds,
                      "营业执照 — PDF, PNG or JPEG"),
    ]


def submit_application(session: Session, user, org: Organisation) -> None:
    """Send the application to the staff verification queue."""
    require_manager(user, org)
    missing = [item.label for item in checklist(session, org) if not item.done]
    if missing:
        raise RuleError("Your application is not complete yet. Still missing: "
                        + "; ".join(missing) + ".")
    advance(session, org, "verification_status", SUBMITTABLE,
            "This application has already been submitted or decided.",
            verification_status="pending", submitted_at=utcnow())
    audit.record(session, user, "institution.submit", org)
    _standing_changed(session, org, "submitted")
    for member in _staff(session):
        notifications.notify(session, member, "verification.submitted",
                             f"New institution application: {org.name}",
                             "An institution has sent its application for verification.",
                             link=links.staff_verification(org.id), email=False)
    notifications.notify_organisation(
        session, org, "verification.submitted", "Your application has been sent",
        "Platform staff will review your institution profile and documents, usually within "
        "two working days. We will notify you of their decision.", link=links.APPLICATION)


def _standing_changed(session: Session, org: Organisation, change: str) -> None:
    """Verification and suspension are inputs of the credibility score: its subscriber
    (providers/credibility/subscribers.py) refreshes the stored badge in this transaction."""
    session.flush()
    events.publish(session, OrganisationStandingChanged(organisation_id=org.id, change=change))


def _staff(session: Session) -> list[User]:
    return list(session.scalars(permissions.staff_users()))


# --------------------------------------------------------------------------- staff decisions

def approve(session: Session, staff, org: Organisation, note: str | None = None) -> None:
    require_staff(staff)
    advance(session, org, "verification_status", ("pending",),
            "Only a pending application can be approved.",
            verification_status="verified", verified_at=utcnow(), verification_note=None)
    note = (note or "").strip()[:2000] or None
    audit.record(session, staff, "institution.approve", org, reason=note)
    # Any listings it already has (e.g. re-verified after a change) become visible again.
    search_outbox.enqueue_provider(session, org.id, "provider_verified")
    _standing_changed(session, org, "approved")  # after the outbox rows: no duplicates
    notifications.notify_organisation(
        session, org, "verification.approved", f"{org.name} is verified",
        "Platform staff have verified your institution. You can now submit listings for "
        "review and publish them in the supermarket." + notifications.staff_note(note),
        link=links.DASHBOARD)


def reject(session: Session, staff, org: Organisation, reason: str) -> None:
    require_staff(staff)
    reason = _require_reason(reason, "the rejection")
    advance(session, org, "verification_status", ("pending",),
            "Only a pending application can be rejected.",
            verification_status="rejected", verification_note=reason)
    audit.record(session, staff, "institution.reject", org, reason=reason)
    _standing_changed(session, org, "rejected")
    notifications.notify_organisation(
        session, org, "verification.rejected", "Your institution application was not approved",
        f"Reason given by platform staff: {reason}\n\nYou can correct your application and "
        "submit it again.", link=links.APPLICATION)


def request_more_info(session: Session, staff, org: Organisation, reason: str) -> None:
    require_staff(staff)
    reason = _require_reason(reason, "requesting more documents")
    advance(session, org, "verification_status", ("pending",),
            "Only a pending application can be sent back for more documents.",
            verification_status="more_info", verification_note=reason)
    audit.record(session, staff, "institution.request_info", org, reason=reason)
    _standing_changed(session, org, "more_info")
    notifications.notify_organisation(
        session, org, "verification.more_info", "Platform staff need more documents",
        f"{reason}\n\nUpload the documents and submit your application again.",
        link=links.APPLICATION)


def suspend(session: Session, staff, org: Organisation, reason: str) -> int:
    """Hide every listing of the institution at once; returns how many were queued for search."""
    require_staff(staff)
    reason = _require_reason(reason, "the suspension")
    if org.kind != "provider":
        raise RuleError("Only service institutions can be suspended here.")
    advance(session, org, "suspended", (False,), "This institution is already suspended.",
            suspended=True, suspended_reason=reason)
    audit.record(session, staff, "institution.suspend", org, reason=reason)
    queued = search_outbox.enqueue_provider(session, org.id, "provider_suspended")
    _standing_changed(session, org, "suspended")  # after the outbox rows: no duplicates
    favourites.notify_provider_collectors(session, org)
    notifications.notify_organisation(
        session, org, "institution.suspended", f"{org.name} has been suspended",
        f"Your listings are hidden from the supermarket until platform staff reinstate your "
        f"institution. Reason: {reason}", link=links.DASHBOARD)
    return queued


def reinstate(session: Session, staff, org: Organisation, note: str | None = None) -> int:
    require_staff(staff)
    advance(session, org, "suspended", (True,), "This institution is not suspended.",
            suspended=False, suspended_reason=None)
    audit.record(session, staff, "institution.reinstate", org, reason=(note or "").strip() or None)
    queued = search_outbox.enqueue_provider(session, org.id, "provider_reinstated")
    _standing_changed(session, org, "reinstated")  # after the outbox rows: no duplicates
    favourites.notify_provider_collectors(session, org)
    notifications.notify_organisation(
        session, org, "institution.reinstated", f"{org.name} has been reinstated",
        "Your published listings are visible in the supermarket again.", link=links.DASHBOARD)
    return queued


# --------------------------------------------------------------------------- reading

def history(session: Session, org: Organisation, decisions_only: bool = False) -> list[AuditLog]:
    """The institution's audit trail, newest first (who, when, why)."""
    stmt = select(AuditLog).where(AuditLog.target_type == "organisation",
                                  AuditLog.target_id == org.id)
    if decisions_only:
        stmt = stmt.where(AuditLog.action.in_(DECISIONS))
    else:
        stmt = stmt.where(AuditLog.action.like("institution.%"))
    return list(session.scalars(stmt.order_by(AuditLog.created_at.desc(), AuditLog.id.desc())))


QUEUES = {
    "pending": "Waiting for review",
    "more_info": "More documents requested",
    "rejected": "Rejected",
    "verified": "Verified",
    "unverified": "Not yet applied",
    "suspended": "Suspended",
}


def queue_counts(session: Session) -> dict[str, int]:
    rows = dict(session.execute(
        select(Organisation.verification_status, func.count())
        .where(Organisation.kind == "provider").group_by(Organisation.verification_status)).all())
    counts = {key: rows.get(key, 0) for key in QUEUES if key != "suspended"}
    counts["suspended"] = session.scalar(select(func.count()).select_from(Organisation).where(
        Organisation.kind == "provider", Organisation.suspended.is_(True))) or 0
    return counts


def queue(session: Session, status: str = "pending", *, page: int = 1,
          page_size: int = 24) -> Page:
    """One page of the institutions in one verification state, the longest-waiting first
    (the suspended list by name)."""
    stmt = select(Organisation).where(Organisation.kind == "provider")
    if status == "suspended":
        stmt = stmt.where(Organisation.suspended.is_(True)).order_by(Organisation.name,
                                                                     Organisation.id)
    else:
        stmt = stmt.where(Organisation.verification_status == status).order_by(
            Organisation.submitted_at.asc().nulls_last(), Organisation.created_at, Organisation.id)
    return paginate(session, stmt, page, page_size)


def document_counts(session: Session, org_ids: list[int]) -> dict[int, int]:
    if not org_ids:
        return {}
    return dict(session.execute(
        select(QualificationDocument.organisation_id, func.count())
        .where(QualificationDocument.organisation_id.in_(org_ids))
        .group_by(QualificationDocument.organisation_id)).all())
