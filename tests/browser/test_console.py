"""The operator console in headless Chromium: log in (a wrong password, then the lock-out),
search by any identifier, the vein-to-vein timeline of a seeded journey, the quarantine queue
with a full two-user release (the same user twice refused) and a QA rejection, a POST without
its CSRF token refused, a viewer who cannot release, partners' health, the certificate, a dead
letter sent back by an operator (and not by a viewer)."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import uuid
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from datetime import UTC, datetime
from typing import Any, TypeVar

import aio_pika
import orjson
from playwright.sync_api import expect

from gateway.bus.topology import DEAD_LETTERS, declare_topology
from tests.browser.conftest import Console, shot
from tests.support.journey import BATCH, DIN, TRACKING


def audit_actions(database_url: str) -> list[tuple[str, str, str | None]]:
    """The audit chain's (actor, action, subject), read with sqlite3: Playwright's sync API runs
    an event loop of its own in this thread."""
    path = database_url.removeprefix("sqlite+aiosqlite:///")
    with closing(sqlite3.connect(path)) as db:
        return list(db.execute("SELECT actor, action, subject FROM audit_records ORDER BY seq"))


def test_login_refuses_a_wrong_password_then_locks_the_user_out(console: Console) -> None:
    page = console.page()
    page.goto(f"{console.base}/ui/")
    expect(page).to_have_url(re.compile(r"/ui/login$"))
    shot(page, "login")
    console.login(page, "locky", "not-the-password")
    expect(page.get_by_role("alert")).to_have_text("the user name or password is wrong")
    console.login(page, "locky", "still-not-it")
    console.login(page, "locky", "nor-this-one")  # the third in a row locks the name
    expect(page.get_by_role("alert")).to_contain_text("too many failed logins")
    console.login(page, "locky")  # the right password, while locked
    expect(page.get_by_role("alert")).to_contain_text("too many failed logins")
    expect(page).to_have_url(re.compile(r"/ui/login$"))
    console.login(page, "ana")
    expect(page).to_have_url(re.compile(r"/ui/search$"))
    cookie = next(c for c in console.context.cookies() if c["name"] == "cgt_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/ui/"


def test_search_finds_the_order_by_any_identifier(console: Console) -> None:
    page = console.page()
    console.login(page, "ana")
    for value in (console.coi, DIN, TRACKING.value, BATCH.value, "PO-000001", "MRN-000001"):
        console.search(page, value)
        expect(page.get_by_role("link", name=console.coi)).to_be_visible()
    shot(page, "search")
    console.search(page, "NOTHING-KNOWN")
    expect(page.get_by_text("No order is known")).to_be_visible()
    console.logout(page)
    console.login(page, "vi")  # a viewer does not look a patient up by MRN
    console.search(page, "MRN-000001")
    expect(page.get_by_text("need the operator role")).to_be_visible()
    expect(page.get_by_role("link", name=console.coi)).to_have_count(0)


def test_the_timeline_shows_the_journey_custody_temperatures_and_clocks(console: Console) -> None:
    page = console.page()
    console.login(page, "ana")
    console.search(page, DIN)
    page.get_by_role("link", name=console.coi).click()
    expect(page.locator("h1")).to_contain_text(console.coi)
    stages = page.locator("ol.stages li.done")
    expect(stages).to_have_count(9)  # ordered ... infused
    expect(page.locator("h2", has_text="Chain of custody")).to_contain_text("complete, no gap")
    custody = page.locator("table.custody tbody tr")
    expect(custody).to_have_count(9)
    expect(custody.nth(2)).to_contain_text("Demo Air Cargo")
    expect(custody.nth(2)).to_contain_text("Airport cargo hub")
    events = page.locator("table.events")
    expect(events).to_contain_text("demo-courier (canonical-json)")  # who sent each message
    expect(events.locator("tr.excursion")).to_have_count(1)
    expect(page.locator("section.leg svg.chart")).to_have_count(2)
    expect(page.locator("section.leg").first.locator("rect.excursion")).to_have_count(1)
    expect(page.locator("svg.clock")).to_have_count(2)
    expect(page.locator("section.patient")).to_contain_text("Testpatient")
    shot(page, "timeline")
    shot(page, "timeline-legs", page.locator("section.leg").first)
    assert ("operator:ana", "order.patient_viewed", console.coi) in audit_actions(console.database_url)
    response = page.request.get(f"{console.base}/ui/orders/{console.coi}/certificate.pdf")
    assert response.status == 200 and response.headers["content-type"] == "application/pdf"
    console.logout(page)
    console.login(page, "vi")
    page.goto(f"{console.base}/ui/orders/{console.coi}")
    expect(page.locator("section.patient")).to_have_count(0)  # a viewer sees no patient
    expect(page.get_by_text("shown to the operator and QA roles only")).to_be_visible()


def test_a_release_needs_two_different_users_each_signing(console: Console) -> None:
    page = console.page()
    item = console.held[0]
    console.login(page, "ana")
    page.goto(f"{console.base}/ui/quarantine")
    expect(page.locator("table.list tbody tr")).to_have_count(len(console.held))
    shot(page, "quarantine")
    page.goto(f"{console.base}/ui/quarantine/{item}")
    expect(page.locator(".why")).to_contain_text("demographic_mismatch")
    form = page.locator("form#approve")
    form.locator("input[name=meaning]").fill("reviewed: same patient, typo in the birth date")
    form.locator("input[name=password]").fill("ana-password-123")
    form.locator("button").click()
    expect(page.get_by_role("status")).to_contain_text("a second, different user must sign")
    expect(page.locator("tr.signature")).to_have_count(1)
    expect(page.locator("tr.signature")).to_contain_text("Ana Example")
    shot(page, "release-first-signature")
    form.locator("input[name=meaning]").fill("again")  # the same user a second time
    form.locator("input[name=password]").fill("ana-password-123")
    form.locator("button").click()
    expect(page.get_by_role("alert")).to_contain_text("the same user cannot sign twice")
    console.logout(page)

    console.login(page, "bo")
    page.goto(f"{console.base}/ui/quarantine/{item}")
    form.locator("input[name=meaning]").fill("confirmed with the site: same patient")
    form.locator("input[name=password]").fill("wrong-password")  # the password is asked again
    form.locator("button").click()
    expect(page.get_by_role("alert")).to_contain_text("the user name or password is wrong")
    page.goto(f"{console.base}/ui/quarantine/{item}")
    form.locator("input[name=meaning]").fill("confirmed with the site: same patient")
    form.locator("input[name=password]").fill("bo-password-4567")
    form.locator("button").click()
    expect(page.get_by_role("status")).to_contain_text("released")
    signatures = page.locator("tr.signature")
    expect(signatures).to_have_count(2)
    expect(signatures.nth(1)).to_contain_text("Bo Sample")
    expect(signatures.nth(1)).to_contain_text("confirmed with the site: same patient")
    expect(signatures.nth(1)).to_contain_text("UTC")  # printed name, time and meaning
    shot(page, "release-done", page.locator("section.card", has_text="Signatures"))
    actions = audit_actions(console.database_url)
    assert ("operator:ana", "quarantine.approved", item) in actions
    assert ("operator:bo", "quarantine.approved", item) in actions
    assert ("gateway", "quarantine.released", item) in actions


def test_qa_rejects_with_a_reason(console: Console) -> None:
    page = console.page()
    item = console.held[1]
    console.login(page, "bo")
    page.goto(f"{console.base}/ui/quarantine/{item}")
    form = page.locator("form#reject")
    form.locator("input[name=reason]").fill("not our patient: the site confirmed a wrong order")
    form.locator("input[name=password]").fill("bo-password-4567")
    form.locator("button").click()
    expect(page.get_by_role("status")).to_contain_text("rejected")
    expect(page.get_by_role("status")).to_contain_text("tell the sender yourself")  # canonical JSON
    assert ("operator:bo", "quarantine.rejected", item) in audit_actions(console.database_url)


def test_a_post_without_its_csrf_token_is_refused(console: Console) -> None:
    page = console.page()
    item = console.held[2]
    console.login(page, "ana")
    url = f"{console.base}/ui/quarantine/{item}/approve"
    form = {"meaning": "forged", "password": "ana-password-123"}
    missing = page.request.post(url, form=form)
    wrong = page.request.post(url, form={**form, "csrf": "not-the-session-token"})
    assert (missing.status, wrong.status) == (403, 403)
    assert "security token" in missing.text()
    logout = page.request.post(f"{console.base}/ui/logout", form={})
    assert logout.status == 403
    page.goto(f"{console.base}/ui/quarantine/{item}")
    expect(page.locator("tr.signature")).to_have_count(0)  # nothing was signed
    login = page.request.post(
        f"{console.base}/ui/login", form={"user": "ana", "password": "ana-password-123"}
    )
    assert login.status == 403  # the login form's own token, too


def test_a_viewer_can_neither_inspect_nor_release(console: Console) -> None:
    page = console.page()
    item = console.held[2]
    console.login(page, "vi")
    page.goto(f"{console.base}/ui/quarantine")
    expect(page.get_by_role("link", name="Review")).to_have_count(1)  # listing: no patient data
    page.goto(f"{console.base}/ui/quarantine/{item}")
    expect(page.get_by_role("alert")).to_contain_text("this user's role may not do this")
    token = page.locator("form.logout input[name=csrf]").get_attribute("value")
    answer = page.request.post(
        f"{console.base}/ui/quarantine/{item}/approve",
        form={"csrf": token or "", "meaning": "viewer", "password": "vi-password-8910"},
    )
    assert answer.status == 403 and "role may not" in answer.text()
    assert not any(
        a == ("operator:vi", "quarantine.approved", item) for a in audit_actions(console.database_url)
    )


def test_partner_health(console: Console) -> None:
    page = console.page()
    console.login(page, "vi")
    page.goto(f"{console.base}/ui/partners")
    rows = page.locator("table.list tbody tr")
    expect(rows.filter(has_text="demo-hospital")).to_have_count(1)
    expect(rows.filter(has_text="demo-courier").first).to_contain_text("UTC")
    shot(page, "partners")


T = TypeVar("T")


def outside_the_browser_loop(work: Coroutine[Any, Any, T]) -> T:
    """An AMQP step, run on a thread of its own: Playwright's sync API holds this thread's loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, work).result()


async def given_up(amqp_url: str, queue: str, event_id: str, coi: str) -> None:
    """A delivery given up by the consumer of `queue`, as the gateway dead-letters one."""
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        await declare_topology(channel)
        await channel.declare_queue(queue, durable=True)
        body = orjson.dumps(
            {"specversion": "1.0", "id": event_id, "type": "org.cgt.order.placed", "subject": coi}
        )
        headers = {
            "x-cgt-queue": queue,
            "x-cgt-reason": "the courier's API said no",
            "x-cgt-dead-at": datetime(2026, 11, 30, 9, 15, tzinfo=UTC),
        }
        dlx = await channel.get_exchange(DEAD_LETTERS)
        await dlx.publish(
            aio_pika.Message(body, message_id=event_id, headers=headers), routing_key="order.placed"
        )
    finally:
        await connection.close()


async def taken_from(amqp_url: str, queue: str) -> list[str | None]:
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        found = await channel.declare_queue(queue, passive=True)
        ids = []
        while (message := await found.get(no_ack=True, fail=False)) is not None:
            ids.append(message.message_id)
        await found.delete(if_unused=False, if_empty=False)
        return ids
    finally:
        await connection.close()


def test_a_dead_letter_is_sent_back_by_an_operator_not_a_viewer(console: Console) -> None:
    queue, event_id = f"test.console.{uuid.uuid4().hex[:8]}", str(uuid.uuid4())
    outside_the_browser_loop(given_up(console.amqp_url, queue, event_id, console.coi))
    page = console.page()
    console.login(page, "vi")
    page.goto(f"{console.base}/ui/dead-letters")
    row = page.locator("table.list tbody tr", has_text=event_id)
    expect(row).to_contain_text(console.coi)
    expect(row).to_contain_text(queue)
    expect(row).to_contain_text("the courier's API said no")
    expect(row).to_contain_text("2026-11-30 09:15 UTC")
    expect(row.locator("form.send-back")).to_have_count(0)  # a viewer sees, and may not send back
    token = page.locator("form.logout input[name=csrf]").get_attribute("value")
    answer = page.request.post(
        f"{console.base}/ui/dead-letters/send-back", form={"csrf": token or "", "event_id": event_id}
    )
    assert answer.status == 403
    console.logout(page)

    console.login(page, "ana")
    page.goto(f"{console.base}/ui/dead-letters")
    shot(page, "dead-letters")
    page.locator("table.list tbody tr", has_text=event_id).locator("form.send-back button").click()
    expect(page.get_by_role("status")).to_have_text(f"Sent back {event_id} to {queue}.")
    expect(page.locator("table.list tbody tr", has_text=event_id)).to_have_count(0)
    assert outside_the_browser_loop(taken_from(console.amqp_url, queue)) == [event_id]
    assert ("operator:ana", "delivery.redelivered", console.coi) in audit_actions(console.database_url)
    assert not any(
        a[0] == "operator:vi" and a[1] == "delivery.redelivered" for a in audit_actions(console.database_url)
    )
