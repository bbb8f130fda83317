"""The notification centre: a user's in-app notices, newest first, and the navbar badge."""

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select, update

from marketplace.database import db, utcnow
from marketplace.models import Notification
from marketplace.navigation import is_safe_next
from marketplace.notifications import unread_count
from marketplace.paging import paginate, parse_page

bp = Blueprint("notifications", __name__, url_prefix="/notifications")

PAGE_SIZE = 20


@bp.app_context_processor
def _unread_badge():
    """``unread_notifications`` for the bell in the navbar (0 for visitors)."""
    def count() -> int:
        if not current_user.is_authenticated:
            return 0
        return unread_count(db.session, current_user)

    return {"unread_notifications": count}


def _mine(notification_id: int) -> Notification:
    notice = db.session.get(Notification, notification_id)
    # Someone else's notice is "not found", not "forbidden": ids reveal nothing.
    if notice is None or notice.user_id != current_user.id:
        abort(404)
    return notice


@bp.get("")
@login_required
def index():
    show = request.args.get("show")
    stmt = select(Notification).where(Notification.user_id == current_user.id)
    if show == "unread":
        stmt = stmt.where(Notification.read_at.is_(None))
    stmt = stmt.order_by(Notification.created_at.desc(), Notification.id.desc())
    page = paginate(db.session, stmt, parse_page(request.args.get("page")),
                    int(current_app.config.get("NOTIFICATIONS_PAGE_SIZE") or PAGE_SIZE))
    return render_template("notifications/index.html", page=page, show=show,
                           unread=unread_count(db.session, current_user))


@bp.post("/<int:notification_id>/read")
@login_required
def mark_read(notification_id):
    notice = _mine(notification_id)
    if notice.read_at is None:
        notice.read_at = utcnow()
        db.session.commit()
    if request.form.get("open") and notice.link and is_safe_next(notice.link):
        return redirect(notice.link)
    target = request.form.get("next")
    return redirect(target if is_safe_next(target) else url_for("notifications.index"))


@bp.post("/read-all")
@login_required
def mark_all_read():
    result = db.session.execute(
        update(Notification)
        .where(Notification.user_id == current_user.id, Notification.read_at.is_(None))
        .values(read_at=utcnow()))
    db.session.commit()
    if result.rowcount:
        flash(f"Marked {result.rowcount} notification{'s' if result.rowcount != 1 else ''} "
              "as read.", "success")
    return redirect(url_for("notifications.index"))
