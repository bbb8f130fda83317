"""Files attached to orders (requirements, progress, delivery, messages) and quote requests.

The same rules as every upload on the site (providers.uploads): type decided from the
content (PDF, PNG, JPEG), size capped, stored outside static/ under a generated name, and
served only to the parties of the order and staff (see orders.views.download_file).
"""

from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy.orm import Session

from orders.models import OrderFile
from providers import uploads

MAX_FILES = 5
DEFAULT_MAX_BYTES = uploads.DEFAULT_MAX_DOCUMENT_BYTES


@dataclass
class PendingFiles:
    """Checked uploads, written to disk only when ``save`` is called."""

    checked: list[uploads.CheckedFile]
    written: list[str]

    def save(self, session: Session, upload_dir: str, *, purpose: str, user,
             order_id: int | None = None, quote_request_id: int | None = None,
             progress_update_id: int | None = None,
             message_id: int | None = None) -> list[OrderFile]:
        rows = []
        for checked in self.checked:
            stored = uploads.new_stored_name(checked.content_type)
            uploads.write(upload_dir, checked, stored)
            self.written.append(stored)
            row = OrderFile(order_id=order_id, quote_request_id=quote_request_id,
                            progress_update_id=progress_update_id, message_id=message_id,
                            purpose=purpose, original_name=checked.original_name,
                            stored_name=stored, content_type=checked.content_type,
                            size=checked.size, sha256=checked.sha256,
                            uploaded_by_id=getattr(user, "id", None))
            session.add(row)
            rows.append(row)
        session.flush()
        return rows

    def discard(self, upload_dir: str) -> None:
        """After a failed transaction: delete what was written."""
        for name in self.written:
            uploads.remove(upload_dir, name)
        self.written.clear()


def check_uploads(file_storages, max_bytes: int = DEFAULT_MAX_BYTES) -> PendingFiles:
    """Validate werkzeug FileStorage objects (empty inputs are skipped); raise UploadError."""
    present = [f for f in file_storages if f is not None and f.filename]
    if len(present) > MAX_FILES:
        raise uploads.UploadError(_("Attach at most %(num)d files at a time.", num=MAX_FILES))
    checked = [uploads.check(uploads.read_limited(f.stream, max_bytes), f.filename,
                             max_bytes=max_bytes) for f in present]
    return PendingFiles(checked=checked, written=[])


def human_size(size: int) -> str:
    return uploads.human_size(size)
