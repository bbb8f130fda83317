"""Helpers shared by the provider, moderation and notification tests: sample files, log-in,
and ready-made institutions at each onboarding stage."""

import random
import struct
import zlib
from pathlib import Path

import factories
import pytest
from helpers import login, pdf_bytes  # noqa: F401  (shared helpers, re-exported)
from sqlalchemy import func, select

from catalog.models import SearchOutbox
from marketplace.credit_code import generate

_rng = random.Random(1234)


def png_bytes(width: int = 2, height: int = 2) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = b"".join(b"\x00" + b"\x80\x40\x20" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


def jpeg_bytes() -> bytes:
    # SOI, an APP0/JFIF segment, padding and EOI: enough for the structural check.
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    return b"\xff\xd8" + app0 + b"\x00" * 200 + b"\xff\xd9"


def credit_code() -> str:
    return generate(_rng)


def files_in(folder) -> list[Path]:
    root = Path(folder)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def outbox_reasons(session, product_id=None) -> list[str]:
    stmt = select(SearchOutbox.reason).order_by(SearchOutbox.id)
    if product_id is not None:
        stmt = stmt.where(SearchOutbox.product_id == product_id)
    return list(session.scalars(stmt))


def count(session, model, *where) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where))


def applicant(session, **fields):
    """An unverified institution with a complete profile and its owner (no documents yet)."""
    fields.setdefault("contact_name", "Wang Fang")
    fields.setdefault("contact_phone", "0512-6666 8888")
    fields.setdefault("contact_email", "contact@example.cn")
    description = fields.pop("description", "We draft and file invention patents for "
                             "technology SMEs in Suzhou and across Jiangsu.")
    org = factories.provider(session, verified=False, **fields)
    org.description = description
    owner = factories.user(session, org)
    return org, owner


@pytest.fixture(autouse=True)
def clean_uploads(app):
    """Every test starts with an empty UPLOAD_DIR (the app, and its folder, live for the
    whole session). Import this fixture into a test module to use it."""
    import shutil

    folder = Path(app.config["UPLOAD_DIR"])
    shutil.rmtree(folder, ignore_errors=True)
    yield
    shutil.rmtree(folder, ignore_errors=True)


def person(session, organisation=None, *, full_name: str | None = None, owner: bool | None = None,
           **fields):
    """factories.user with a chosen display name and owner flag."""
    account = factories.user(session, organisation, **fields)
    if full_name:
        account.full_name = full_name
    if owner is not None:
        account.is_org_owner = owner
    session.flush()
    return account
