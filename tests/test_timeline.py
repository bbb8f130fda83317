"""The order timeline's own notes (orders/timeline.py) are shown in the reader's language,
whoever wrote them and in whichever language; what people typed stays as they typed it, and
notes from before the keys existed show as stored."""

import re

import order_support as osup
import pytest
from conftest import post_form
from flask import g
from helpers import login
from sqlalchemy import select

from orders import milestones
from orders.models import Order, OrderEvent


@pytest.fixture
def approved(session):
    """A funded order whose first milestone the buyer approved (the buyer's page in English)."""
    p = osup.parties(session)
    order = osup.funded_order(session, p)
    first = order.milestones[0]
    milestones.submit(session, order, p.provider, first.id, "检索报告")
    session.commit()
    milestones.approve(session, session.get(Order, order.id), p.buyer, first.id)
    session.commit()
    return p, order


def _notes(client, path) -> str:
    # The test's app context outlives each request: start from an empty Flask-Babel state,
    # as a real request does.
    g.pop("_flask_babel", None)
    html = client.get(path).get_data(as_text=True)
    return " ".join(re.findall(r'<div class="note">(.*?)</div>', html, re.S))


def test_platform_notes_follow_the_readers_language(session, client, approved):
    p, order = approved
    event = session.scalar(select(OrderEvent).where(OrderEvent.order_id == order.id,
                                                    OrderEvent.name == "milestone_approved"))
    assert event.note_key == "milestone_approved"
    assert event.note.startswith("Milestone “Step 1” approved; ¥")  # the English, kept

    login(client, p.provider)
    english = _notes(client, f"/provider/orders/{order.id}")
    assert "Milestone “Step 1” approved; ¥" in english
    assert "Milestone “Step 1” submitted: 检索报告" in english  # typed text as typed

    post_form(client, "/language", {"locale": "zh_Hans_CN", "next": "/"})
    chinese = _notes(client, f"/provider/orders/{order.id}")
    assert "里程碑“Step 1”已确认；已放款 ¥" in chinese
    assert "里程碑“Step 1”已提交：检索报告" in chinese
    assert "approved;" not in chinese and "submitted:" not in chinese


def test_a_note_written_before_the_keys_shows_as_stored(session, client, approved):
    p, order = approved
    session.add(OrderEvent(order_id=order.id, name="staff_note", actor_role="staff",
                           note="Legacy note, stored as text."))
    session.commit()
    login(client, p.buyer)
    assert "Legacy note, stored as text." in _notes(client, f"/orders/{order.id}")
