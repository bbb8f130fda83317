"""Contracts and 发票 in the demo activity (orders/demo_activity.py calls these).

- ``sign_contract``: right after the institution accepts an order that carries a contract,
  both sides sign it (the buyer first), so the work can start as the story goes on. An
  order whose story stops at "accepted" sometimes keeps the institution's signature
  missing, for the staff nudge list.
- ``invoice_history``: after the history is played, buyers of completed orders with a
  contract ask for 发票, which their institutions mostly issued (a small PDF stands in for
  the real file); a few requests stay open, some of them overdue.
"""

import random
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace.models import User
from orders import contracts, invoices
from orders.models import Order
from orders.paperwork_models import Contract, InvoiceProfile
from providers import uploads


def _ip(rng: random.Random) -> str:
    return f"58.210.{rng.randint(1, 254)}.{rng.randint(1, 254)}"  # Suzhou broadband


def sign_contract(session: Session, order_id: int, buyer: User, provider: User,
                  moment: datetime, rng: random.Random, provider_signs: bool = True) -> None:
    contract = contracts.live(session, order_id)
    if contract is None or contract.status != "awaiting_signatures":
        return
    contracts.record_signature(session, contract, buyer, ip=_ip(rng), now=moment)
    if provider_signs:
        contracts.record_signature(session, contract, provider, ip=_ip(rng),
                                   now=moment + timedelta(minutes=rng.randint(5, 90)))


def _demo_pdf(number: str) -> bytes:
    """A one-page PDF the upload check accepts (it rejects files without pages)."""
    import io

    import pikepdf

    pdf = pikepdf.new()
    pdf.add_blank_page()
    pdf.docinfo["/Title"] = f"Demo fapiao {number}"
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def _profile(session: Session, buyer: User) -> InvoiceProfile:
    existing = session.scalar(select(InvoiceProfile).where(
        InvoiceProfile.organisation_id == buyer.organisation_id))
    if existing is not None:
        return existing
    organisation = buyer.organisation
    return invoices.save_profile(session, buyer, invoices.ProfileInput(
        title=organisation.name, taxpayer_number=organisation.credit_code,
        address="苏州工业园区星湖街 328 号", phone=organisation.contact_phone or "0512-62880000",
        bank_name="中国银行苏州工业园区支行",
        bank_account=f"3205{organisation.id:012d}",
        kind="special", email=organisation.contact_email or ""))


def invoice_history(session: Session, now: datetime, rng: random.Random) -> int:
    """发票 for completed orders with a signed contract; returns how many were requested."""
    upload_dir = current_app.config["UPLOAD_DIR"]
    rows = session.execute(
        select(Order, Contract).join(Contract, Contract.order_id == Order.id)
        .where(Contract.status == "signed", Order.status.in_(("completed", "settled")))
        .order_by(Order.id)).all()
    requested = 0
    serial = 10_000_000 + rng.randint(0, 80_000_000)
    for order, _contract in rows:
        if rng.random() < 0.25 or order.buyer_user_id is None:
            continue  # this buyer has not asked yet
        buyer = session.get(User, order.buyer_user_id)
        figures = invoices.amounts(session, order)
        if figures.requestable <= 0:
            continue
        asked = (order.completed_at or order.paid_at or now) + timedelta(days=rng.randint(0, 3))
        asked = min(asked, now - timedelta(hours=2))
        invoice = invoices.request_invoice(session, buyer, order, _profile(session, buyer),
                                           figures.requestable, now=asked)
        requested += 1
        if rng.random() < 0.15:
            continue  # still waiting: overdue once INVOICE_OVERDUE_DAYS have passed
        issued_at = min(asked + timedelta(days=rng.randint(1, 6)), now - timedelta(hours=1))
        provider = session.scalar(select(User).where(
            User.organisation_id == order.provider_org_id, User.role == "provider",
            User.active.is_(True)).order_by(User.id))
        if provider is None:
            continue
        serial += rng.randint(1, 400)
        number = f"{serial:08d}"
        checked = invoices.check_file(_demo_pdf(number), f"发票-{number}.pdf")
        stored = uploads.new_stored_name(checked.content_type)
        invoices.issue(session, provider, invoice, invoices.IssueInput(
            number=number, code="3200" + f"{issued_at:%y}" + "1130", issued_on=issued_at.date(),
            amount=figures.requestable, tax_rate_bp=600), checked, stored, now=issued_at)
        uploads.write(upload_dir, checked, stored)
    session.flush()
    return requested
