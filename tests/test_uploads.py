"""Qualification documents and logos: content-checked, size-capped, stored under generated
names outside static/, served only to the institution and staff."""

import hashlib
import io
import re
import zlib
from pathlib import Path

import factories
import provider_support as ps
import pytest
from conftest import csrf_token
from provider_support import clean_uploads  # noqa: F401  (autouse)

from marketplace.config import ROOT
from marketplace.database import db
from marketplace.models import Organisation
from providers import uploads
from providers.models import QualificationDocument

SVG_WITH_SCRIPT = (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" '
                   b'height="10"><script>alert(document.cookie)</script><rect width="10" '
                   b'height="10"/></svg>')
HTML_AS_PDF = (b"<!DOCTYPE html><html><body><script>fetch('/account')</script>"
               b"Business licence</body></html>")


@pytest.fixture
def applicant(app):
    with app.app_context():
        org, owner = ps.applicant(db.session)
        db.session.commit()
        return org.id, owner


def _upload(client, filename, data, kind="business_licence"):
    token = csrf_token(client, "/provider/institution")
    return client.post("/provider/institution/documents",
                       data={"csrf_token": token, "kind": kind,
                             "file": (io.BytesIO(data), filename)},
                       content_type="multipart/form-data")


def _stored(app):
    return ps.files_in(app.config["UPLOAD_DIR"])


def _documents(app) -> int:
    with app.app_context():
        return ps.count(db.session, QualificationDocument)


def _oversized_pdf(app) -> bytes:
    limit = app.config.get("MAX_DOCUMENT_BYTES") or uploads.DEFAULT_MAX_DOCUMENT_BYTES
    data = ps.pdf_bytes()
    return data[:-6] + b"%" + b"0" * (limit - len(data) + 10) + b"\n%%EOF\n"


ABUSE = [
    pytest.param("licence.pdf", HTML_AS_PDF, "web page (HTML)", id="html-named-pdf"),
    pytest.param("../../etc/passwd.pdf", ps.pdf_bytes(), "contains folder names",
                 id="path-traversal-name"),
    pytest.param("..\\..\\windows\\licence.pdf", ps.pdf_bytes(), "contains folder names",
                 id="windows-traversal-name"),
    pytest.param("certificate.svg", SVG_WITH_SCRIPT, "SVG images are not accepted",
                 id="svg-with-script"),
    pytest.param("certificate.png", SVG_WITH_SCRIPT, "SVG images are not accepted",
                 id="svg-named-png"),
    pytest.param("empty.pdf", b"", "is empty", id="empty"),
    pytest.param("licence.pdf", b"MZ\x90\x00\x03 not a document", "not a PDF, PNG or JPEG",
                 id="executable-named-pdf"),
    pytest.param("licence.pdf", ps.pdf_bytes().replace(b"/Type /Catalog",
                                                       b"/Type /Catalog /OpenAction << /S "
                                                       b"/JavaScript /JS (app.alert(1)) >>"),
                 "contain scripts", id="pdf-with-javascript"),
    pytest.param("licence.pdf", ps.pdf_bytes().replace(b"/Type /Catalog",
                                                       b"/Type /Catalog /OpenAction << /S "
                                                       b"/J#61vaScript /J#53 (app.alert(1)) >>"),
                 "contain scripts", id="pdf-with-escaped-javascript-name"),
    pytest.param("licence.pdf", ps.pdf_bytes().replace(
        b"trailer", b"3 0 obj << /Type /ObjStm /Filter /FlateDecode >>\nstream\n"
        + zlib.compress(b"<< /S /Launch /F (cmd.exe) >>") + b"\nendstream endobj\ntrailer"),
                 "contain scripts", id="pdf-with-launch-in-compressed-object-stream"),
    pytest.param("licence.png", ps.png_bytes()[:20] + b"\x00" * 40, "damaged", id="broken-png"),
]


@pytest.mark.parametrize(("filename", "data", "message"), ABUSE)
def test_abusive_upload_is_refused_with_a_message_and_nothing_is_stored(
        app, client, applicant, filename, data, message):
    _org_id, owner = applicant
    ps.login(client, owner)
    response = _upload(client, filename, data)
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert message in body
    assert _documents(app) == 0
    assert _stored(app) == []
    # The rest of the page still shows the saved profile, not the refused form's data.
    assert 'value="suzhou" id="regions_served-suzhou" checked' in body


def test_oversized_file_is_refused_before_anything_is_written(app, client, applicant):
    _org_id, owner = applicant
    ps.login(client, owner)
    response = _upload(client, "big-scan.pdf", _oversized_pdf(app))
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert "too large" in body and "at most 5 MB" in body
    assert _documents(app) == 0
    assert _stored(app) == []


def test_request_larger_than_the_server_limit_is_a_friendly_413(app, client, applicant):
    _org_id, owner = applicant
    ps.login(client, owner)
    data = b"%PDF-1.4\n" + b"0" * (app.config["MAX_CONTENT_LENGTH"] + 10)
    response = _upload(client, "huge.pdf", data)
    assert response.status_code == 413
    assert "larger than we accept" in response.get_data(as_text=True)
    assert _documents(app) == 0 and _stored(app) == []


@pytest.mark.parametrize(("filename", "data", "content_type", "extension"), [
    ("营业执照 2024.pdf", ps.pdf_bytes(), "application/pdf", "pdf"),
    ("certificate.PNG", ps.png_bytes(), "image/png", "png"),
    ("scan.jpeg", ps.jpeg_bytes(), "image/jpeg", "jpg"),
    # The name says PDF but the content is a PNG: the content decides.
    ("licence.pdf", ps.png_bytes(), "image/png", "png"),
])
def test_valid_document_is_stored_under_a_generated_name_outside_static(
        app, client, applicant, filename, data, content_type, extension):
    org_id, owner = applicant
    ps.login(client, owner)
    response = _upload(client, filename, data)
    assert response.status_code == 302
    with app.app_context():
        document = db.session.query(QualificationDocument).one()
        assert document.organisation_id == org_id
        assert document.content_type == content_type
        assert document.original_name == filename
        assert document.size == len(data)
        assert re.fullmatch(rf"[0-9a-f]{{32}}\.{extension}", document.stored_name)
        assert document.sha256 == hashlib.sha256(data).hexdigest()
        stored_name = document.stored_name
    stored = _stored(app)
    assert [p.name for p in stored] == [stored_name]
    assert stored[0].read_bytes() == data
    upload_dir = Path(app.config["UPLOAD_DIR"]).resolve()
    assert not upload_dir.is_relative_to((ROOT / "static").resolve())
    # The page shows the original name for people, never the stored one.
    page = client.get("/provider/institution").get_data(as_text=True)
    assert filename in page


def test_document_is_served_with_its_type_and_nosniff_to_members_and_staff(app, client,
                                                                           applicant):
    org_id, owner = applicant
    ps.login(client, owner)
    _upload(client, "licence.pdf", ps.pdf_bytes())
    with app.app_context():
        document_id = db.session.query(QualificationDocument).one().id
        staff = factories.user(db.session, None, role="staff")
        other_org = factories.provider(db.session)
        other = factories.user(db.session, other_org)
        db.session.commit()
    response = client.get(f"/documents/{document_id}")
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.data == ps.pdf_bytes()
    download = client.get(f"/documents/{document_id}?download=1")
    assert download.headers["Content-Disposition"].startswith("attachment")

    staff_client = client.application.test_client()
    ps.login(staff_client, staff)
    assert staff_client.get(f"/documents/{document_id}").status_code == 200

    other_client = client.application.test_client()
    ps.login(other_client, other)
    assert other_client.get(f"/documents/{document_id}").status_code == 403

    visitor = client.application.test_client()
    response = visitor.get(f"/documents/{document_id}")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_removing_a_document_deletes_its_file(app, client, applicant):
    _org_id, owner = applicant
    ps.login(client, owner)
    _upload(client, "licence.pdf", ps.pdf_bytes())
    with app.app_context():
        document_id = db.session.query(QualificationDocument).one().id
    assert len(_stored(app)) == 1
    token = csrf_token(client, "/provider/institution")
    response = client.post(f"/provider/institution/documents/{document_id}/delete",
                           data={"csrf_token": token})
    assert response.status_code == 302
    assert _documents(app) == 0
    assert _stored(app) == []


def test_logo_must_be_an_image_and_is_served_publicly_once_listed(app, client, applicant):
    org_id, owner = applicant
    ps.login(client, owner)
    with app.app_context():
        org = db.session.get(Organisation, org_id)
        form = {"name": org.name, "credit_code": org.credit_code,
                "institution_type": org.institution_type, "regions_served": ["suzhou"],
                "description": org.description, "contact_name": org.contact_name,
                "contact_phone": org.contact_phone, "contact_email": org.contact_email}

    def post(filename, data):
        token = csrf_token(client, "/provider/institution")
        return client.post("/provider/institution",
                           data={**form, "csrf_token": token, "logo": (io.BytesIO(data), filename)},
                           content_type="multipart/form-data")

    refused = post("logo.svg", SVG_WITH_SCRIPT)
    assert refused.status_code == 422
    assert "SVG images are not accepted" in refused.get_data(as_text=True)
    pdf = post("logo.pdf", ps.pdf_bytes())
    assert pdf.status_code == 422
    assert "here we accept PNG or JPEG only" in pdf.get_data(as_text=True)
    assert _stored(app) == []

    assert post("logo.png", ps.png_bytes()).status_code == 302
    assert len(_stored(app)) == 1
    response = client.get(f"/logos/{org_id}")
    assert response.status_code == 200 and response.mimetype == "image/png"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    # Not listed yet: a visitor does not see the logo of an unverified institution.
    assert client.application.test_client().get(f"/logos/{org_id}").status_code == 404

    # Replacing the logo removes the old file.
    assert post("logo.jpg", ps.jpeg_bytes()).status_code == 302
    stored = _stored(app)
    assert len(stored) == 1 and stored[0].suffix == ".jpg"


def test_check_names_and_types_units():
    assert uploads.display_name("C:\\fakepath\\营业执照.pdf") == "营业执照.pdf"
    assert uploads.display_name("..\x00evil\n.pdf") == "evil.pdf"
    assert uploads.display_name("") == "document"
    assert uploads.detect_type(ps.pdf_bytes()) == uploads.PDF
    assert uploads.detect_type(ps.png_bytes()) == uploads.PNG
    assert uploads.detect_type(ps.jpeg_bytes()) == uploads.JPEG
    assert uploads.detect_type(SVG_WITH_SCRIPT) is None
    with pytest.raises(uploads.UploadError, match="at most 1 KB"):
        uploads.check(ps.pdf_bytes() + b"0" * 2048, "a.pdf", max_bytes=1024)
    with pytest.raises(uploads.UploadError, match="Unknown file"):
        uploads.path_for("/tmp", "../../etc/passwd")
    checked = uploads.check(ps.pdf_bytes(), "licence.pdf")
    assert checked.extension == "pdf" and len(checked.sha256) == 64
