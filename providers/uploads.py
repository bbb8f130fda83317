"""Uploaded files: qualification documents and institution logos.

The rules, in one place:

- the type is decided from the file's CONTENT (magic bytes plus a structural check), never
  from its name or the browser's Content-Type: PDF, PNG or JPEG only;
- the size is capped before anything is written;
- files live in ``UPLOAD_DIR`` (outside ``static/``) under a generated name, uuid4 hex plus
  the extension of the detected type; the name the user gave is kept, cleaned, for display
  only, and a name with folders in it ("../../etc/passwd.pdf") is refused outright, since
  browsers never send one;
- nothing is written until every check has passed, so a refused upload leaves no trace.
"""

import hashlib
import io
import os
import re
import unicodedata
import uuid
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext

PDF = "application/pdf"
PNG = "image/png"
JPEG = "image/jpeg"
# OFD (GB/T 33190), China's electronic-document format for 发票: a ZIP with OFD.xml at its
# root. Accepted only where a caller allows it (issued invoices, orders/invoices.py).
OFD = "application/ofd"
EXTENSIONS = {PDF: "pdf", PNG: "png", JPEG: "jpg", OFD: "ofd"}
LABELS = {PDF: _l("PDF"), PNG: _l("PNG image"), JPEG: _l("JPEG image"),
          OFD: _l("document in OFD format")}
DOCUMENT_TYPES = (PDF, PNG, JPEG)
IMAGE_TYPES = (PNG, JPEG)

DEFAULT_MAX_DOCUMENT_BYTES = 5 * 1024 * 1024
DEFAULT_MAX_LOGO_BYTES = 2 * 1024 * 1024

STORED_NAME = re.compile(r"^[0-9a-f]{32}\.(pdf|png|jpg|ofd)$")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Bidirectional controls: "invoice\u202Efdp.exe" displays as "invoiceexe.pdf".
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


class UploadError(ValueError):
    """An upload was refused; the message says why, in words the user understands."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class CheckedFile:
    """An upload that passed every check, not yet written anywhere."""

    data: bytes
    content_type: str
    original_name: str
    sha256: str

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.content_type]


def human_size(size: int) -> str:
    if size >= 1024 * 1024:
        megabytes = format(size / (1024 * 1024), ".1f").removesuffix(".0")
        return _("%(size)s MB", size=megabytes)
    if size >= 1024:
        return _("%(size)s KB", size=format(size / 1024, ".0f"))
    return ngettext("%(num)d byte", "%(num)d bytes", size)


def display_name(raw: str | None, fallback: str = "document") -> str:
    """The file name to show people: no directories, no control characters, not too long.

    Unlike werkzeug's ``secure_filename`` this keeps Chinese names ("营业执照.pdf") readable;
    the name is never used to build a path.
    """
    name = unicodedata.normalize("NFC", raw or "").replace("\\", "/")
    name = PurePosixPath(name).name if "/" in name else name
    name = _BIDI.sub("", _CONTROL.sub("", name))
    name = " ".join(name.split()).lstrip(".").strip()
    if len(name) > 150:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 140] + dot + ext[:9]) if dot and len(ext) <= 9 else name[:150]
    return name or fallback


def _looks_like_markup(head: bytes) -> str | None:
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<?xml") or b"<svg" in text[:2048]:
        return "svg"
    if text.startswith((b"<!doctype", b"<html", b"<head", b"<body", b"<script", b"<")):
        return "html"
    return None


def detect_type(data: bytes) -> str | None:
    """The content type from the magic bytes, or None."""
    if data.startswith(b"%PDF-"):
        return PDF
    if data.startswith(_PNG_SIGNATURE):
        return PNG
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data.startswith(b"PK\x03\x04") and b"OFD.xml" in data:
        return OFD
    return None


_PDF_NAME = re.compile(rb"/([^\x00\t\n\f\r /<>\[\]()%{}]+)")
_PDF_NAME_ESCAPE = re.compile(rb"#([0-9A-Fa-f]{2})")
_PDF_STREAM = re.compile(rb"stream\r?\n")
_PDF_ACTIVE_NAMES = {b"JavaScript", b"JS", b"Launch", b"EmbeddedFile", b"RichMedia"}
_PDF_INFLATED_MAX = 32 * 1024 * 1024  # all streams together; more is refused as a bomb


def _pdf_names(data: bytes):
    """Every /Name in the file, with #xx escapes decoded (/J#61vaScript is /JavaScript), in
    the plain text and inside Flate-compressed streams (object streams hide dictionaries)."""
    budget = _PDF_INFLATED_MAX
    chunks = [data]
    for match in _PDF_STREAM.finditer(data):
        end = data.find(b"endstream", match.end())
        if end < 0:
            break
        inflater = zlib.decompressobj()
        try:
            inflated = inflater.decompress(data[match.end():end], budget + 1)
        except zlib.error:
            continue  # not Flate (an image, say): its names, if any, are in the plain text
        budget -= len(inflated)
        if budget < 0:
            raise UploadError(_("This PDF unpacks to far more data than a document needs. "
                                "Please upload a plain scan or a printed-to-PDF copy."))
        chunks.append(inflated)
    for chunk in chunks:
        for name in _PDF_NAME.finditer(chunk):
            yield _PDF_NAME_ESCAPE.sub(lambda h: bytes([int(h.group(1), 16)]), name.group(1))


def _check_pdf(data: bytes) -> None:
    if b"%%EOF" not in data[-2048:]:
        raise UploadError(_("This PDF looks damaged or incomplete (it has no end-of-file "
                            "marker). Please export it again and re-upload."))
    if any(name in _PDF_ACTIVE_NAMES for name in _pdf_names(data)):
        raise UploadError(str(ACTIVE_PDF_MESSAGE))
    _check_pdf_objects(data)


ACTIVE_PDF_MESSAGE = _l("PDFs that contain scripts, launch actions or embedded files are not "
                        "accepted. Please upload a plain scan or a printed-to-PDF copy.")
DAMAGED_PDF_MESSAGE = _l("This PDF could not be read: it looks damaged. Please export it again "
                         "and re-upload.")
_PDF_ACTIVE_KEYS = {"/JS", "/JavaScript", "/Launch", "/EmbeddedFile", "/EmbeddedFiles",
                    "/EF", "/RichMedia"}
_PDF_ACTIVE_VALUES = {"/JavaScript", "/Launch", "/EmbeddedFile", "/RichMedia", "/ImportData"}


def _check_pdf_objects(data: bytes) -> None:
    """Parse the PDF with a real PDF library (pikepdf, on qpdf: every cross-reference form,
    object streams, damaged files recovered as a viewer would) and refuse it when any
    object, wherever it is stored, is or names JavaScript, a launch action or an embedded
    file. Object streams are decoded through their whole filter chain (with a size budget,
    so a nested-compression bomb is refused, not inflated) and their text checked too: a
    viewer may find objects in them that the file's cross-reference table does not list."""
    import io

    import pikepdf

    try:
        pdf = pikepdf.open(io.BytesIO(data))
    except (pikepdf.PdfError, pikepdf.PasswordError, ValueError) as exc:
        raise UploadError(str(DAMAGED_PDF_MESSAGE)) from exc
    budget = [_PDF_INFLATED_MAX]
    with pdf:
        try:
            for obj in pdf.objects:
                if _pdf_object_active(obj, depth=0):
                    raise UploadError(str(ACTIVE_PDF_MESSAGE))
                if isinstance(obj, pikepdf.Stream) and _is_object_stream(obj):
                    text = _decode_object_stream(obj, budget)
                    for name in _PDF_NAME.finditer(text):
                        raw = _PDF_NAME_ESCAPE.sub(lambda h: bytes([int(h.group(1), 16)]),
                                                   name.group(1))
                        if raw in _PDF_ACTIVE_NAMES:
                            raise UploadError(str(ACTIVE_PDF_MESSAGE))
        except (pikepdf.PdfError, RecursionError) as exc:
            raise UploadError(str(DAMAGED_PDF_MESSAGE)) from exc


def _is_object_stream(stream) -> bool:
    keys = set(stream.stream_dict.keys())
    return stream.stream_dict.get("/Type") == "/ObjStm" or {"/N", "/First"} <= keys


def _decode_object_stream(stream, budget: list[int]) -> bytes:
    """The stream's bytes through its filters: Flate, ASCIIHex and ASCII85, in any number
    and order, each bounded by what is left of ``budget``. Anything else (predictors, other
    filters) is not what a genuine object stream uses: refused."""
    import base64
    import binascii

    import pikepdf

    filters = stream.stream_dict.get("/Filter")
    if filters is None:
        names = []
    elif isinstance(filters, pikepdf.Array):
        names = [str(item) for item in filters]
    else:
        names = [str(filters)]
    if stream.stream_dict.get("/DecodeParms") not in (None, pikepdf.Array()):
        raise UploadError(str(DAMAGED_PDF_MESSAGE))
    data = stream.read_raw_bytes()
    for name in names:
        try:
            if name in ("/FlateDecode", "/Fl"):
                inflater = zlib.decompressobj()
                data = inflater.decompress(data, budget[0] + 1)
            elif name in ("/ASCIIHexDecode", "/AHx"):
                hex_text = data.split(b">", 1)[0]
                hex_text = re.sub(rb"\s", b"", hex_text)
                data = binascii.unhexlify(hex_text + b"0" * (len(hex_text) % 2))
            elif name in ("/ASCII85Decode", "/A85"):
                text = re.sub(rb"\s", b"", data).removeprefix(b"<~").split(b"~>", 1)[0]
                data = base64.a85decode(text)
            else:
                raise UploadError(str(DAMAGED_PDF_MESSAGE))
        except (zlib.error, binascii.Error, ValueError) as exc:
            raise UploadError(str(DAMAGED_PDF_MESSAGE)) from exc
        if len(data) > budget[0]:
            raise UploadError("This PDF unpacks to far more data than a document needs. "
                              "Please upload a plain scan or a printed-to-PDF copy.")
    budget[0] -= len(data)
    return data


def _pdf_object_active(obj, depth: int) -> bool:
    """Whether this object, or a direct object inside it, is active content. Indirect
    references are not followed: ``pdf.objects`` visits every indirect object itself."""
    import pikepdf

    if depth > 64:
        return True  # absurd nesting: refuse rather than guess
    if isinstance(obj, pikepdf.Name):
        return str(obj) in _PDF_ACTIVE_VALUES
    if isinstance(obj, pikepdf.Stream):
        obj = obj.stream_dict
    if isinstance(obj, pikepdf.Dictionary):
        for key in obj:  # keys
            if key in _PDF_ACTIVE_KEYS:
                return True
            value = obj.get(key)
            if _direct(value) and _pdf_object_active(value, depth + 1):
                return True
        return False
    if isinstance(obj, pikepdf.Array):
        return any(_direct(item) and _pdf_object_active(item, depth + 1) for item in obj)
    return False


def _direct(value) -> bool:
    import pikepdf

    return isinstance(value, pikepdf.Object) and not value.is_indirect


def _check_png(data: bytes) -> None:
    # Signature, then the IHDR chunk (length 13) with a correct CRC, and an IEND chunk.
    header = data[8:33]
    if len(header) < 25 or header[:8] != b"\x00\x00\x00\rIHDR":
        raise UploadError(_("This PNG image is damaged (no image header)."))
    crc = int.from_bytes(header[21:25], "big")
    if zlib.crc32(header[4:21]) != crc:
        raise UploadError(_("This PNG image is damaged (its header checksum is wrong)."))
    width, height = int.from_bytes(header[8:12], "big"), int.from_bytes(header[12:16], "big")
    if not (0 < width <= 20000 and 0 < height <= 20000):
        raise UploadError(_("This PNG image has impossible dimensions."))
    if b"IEND" not in data[-64:]:
        raise UploadError(_("This PNG image is incomplete (it has no end marker)."))


def _check_jpeg(data: bytes) -> None:
    if len(data) < 128 or data.rfind(b"\xff\xd9") < 4:
        raise UploadError(_("This JPEG image is damaged or incomplete."))
    # Markers after SOI: a JFIF/Exif header or a table/frame segment.
    if data[3] not in (0xE0, 0xE1, 0xE2, 0xDB, 0xC0, 0xC2, 0xC4, 0xEE, 0xFE):
        raise UploadError(_("This JPEG image is damaged (unexpected first segment)."))


def accepted_label(allowed: tuple[str, ...]) -> str:
    """"PDF, PNG or JPEG" for the given types."""
    names = ["JPEG" if kind == JPEG else EXTENSIONS[kind].upper() for kind in allowed]
    if len(names) == 1:
        return names[0]
    return _("%(list)s or %(last)s", list=", ".join(names[:-1]), last=names[-1])


def _check_ofd(data: bytes) -> None:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = archive.infolist()
    except (zipfile.BadZipFile, ValueError):
        raise UploadError(_("This OFD document is damaged (it is not a readable OFD/ZIP "
                            "container).")) from None
    names = [entry.filename for entry in entries]
    if "OFD.xml" not in names:
        raise UploadError(_("This ZIP file is not an OFD document (it has no OFD.xml)."))
    if any(name.startswith("/") or ".." in name.split("/") for name in names):
        raise UploadError(_("This OFD document has entries with folder tricks in their names."))
    if sum(entry.file_size for entry in entries) > _PDF_INFLATED_MAX:
        raise UploadError(_("This OFD document unpacks to far more data than an invoice needs."))


_CHECKS = {PDF: _check_pdf, PNG: _check_png, JPEG: _check_jpeg, OFD: _check_ofd}


def check(data: bytes, filename: str | None, *, allowed: tuple[str, ...] = DOCUMENT_TYPES,
          max_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES) -> CheckedFile:
    """Validate an upload entirely in memory; raise UploadError saying what is wrong."""
    name = display_name(filename)
    accepted = accepted_label(allowed)
    raw = filename or ""
    if "/" in raw or "\\" in raw or "\x00" in raw or raw.strip().startswith(".."):
        shown = _CONTROL.sub("", raw)[:80]
        raise UploadError(_("The file name “%(name)s” contains folder names. Browsers never "
                            "send those, so the upload was refused: rename the file and try "
                            "again.", name=shown))
    if not data:
        raise UploadError(_("“%(name)s” is empty. Choose the file again.", name=name))
    if len(data) > max_bytes:
        raise UploadError(_("“%(name)s” is too large (%(size)s); files can be at most "
                            "%(max)s.", name=name, size=human_size(len(data)),
                            max=human_size(max_bytes)))
    content_type = detect_type(data)
    if content_type is None:
        markup = _looks_like_markup(data[:4096])
        if markup == "svg":
            raise UploadError(_("“%(name)s” is an SVG/XML file. SVG images are not accepted "
                                "because they can carry scripts: upload a %(accepted)s file.",
                                name=name, accepted=accepted))
        if markup == "html":
            raise UploadError(_("“%(name)s” is not a %(accepted)s file: its content is a web "
                                "page (HTML), whatever its name says. We check the content, not "
                                "the name.", name=name, accepted=accepted))
        raise UploadError(_("“%(name)s” is not a %(accepted)s file. We check the file's "
                            "content, not its name, so renaming a file does not help.",
                            name=name, accepted=accepted))
    if content_type not in allowed:
        raise UploadError(_("“%(name)s” is a %(kind)s; here we accept %(accepted)s only.",
                            name=name, kind=LABELS[content_type], accepted=accepted))
    _CHECKS[content_type](data)
    return CheckedFile(data=data, content_type=content_type, original_name=name,
                       sha256=hashlib.sha256(data).hexdigest())


def read_limited(stream, max_bytes: int) -> bytes:
    """Read at most ``max_bytes + 1`` bytes, so oversize is detected without reading it all."""
    return stream.read(max_bytes + 1) or b""


def new_stored_name(content_type: str) -> str:
    return f"{uuid.uuid4().hex}.{EXTENSIONS[content_type]}"


def path_for(upload_dir: str | os.PathLike, stored_name: str) -> Path:
    """The file behind a stored name; refuses anything that is not one of our names."""
    if not STORED_NAME.match(stored_name or ""):
        raise UploadError(_("Unknown file."))
    return Path(upload_dir) / stored_name


def write(upload_dir: str | os.PathLike, checked: CheckedFile, stored_name: str) -> None:
    """Write a checked file under its generated name (from ``new_stored_name``), atomically."""
    folder = Path(upload_dir)
    folder.mkdir(parents=True, exist_ok=True)
    target = path_for(folder, stored_name)
    temporary = folder / f".{stored_name}.part"
    with open(temporary, "xb") as handle:
        handle.write(checked.data)
    os.chmod(temporary, 0o640)
    os.replace(temporary, target)


def remove(upload_dir: str | os.PathLike, stored_name: str | None) -> None:
    """Delete a stored file if it exists (after its row is gone or its transaction failed)."""
    if not stored_name:
        return
    try:
        path_for(upload_dir, stored_name).unlink(missing_ok=True)
    except UploadError:
        return
