"""The operator console in a real browser: Debian's Chromium (/usr/bin/chromium, installed by
.ci/run and `make browser`) driven by Playwright, no browser download. One gateway a module,
served by uvicorn on a loopback port, its SQLite database seeded through the core's real path."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Locator, Page, sync_playwright
from sqlalchemy import select

from gateway.canonical.envelope import utcnow
from gateway.service.desk import ReviewDesk
from gateway.service.intake import Intake
from gateway.service.transaction import Rules
from gateway.settings import ROOT, Settings
from gateway.store import tables as t
from gateway.store.db import create_engine, dispose
from gateway.store.migrate import migrate
from tests.integration.test_quarantine_review import cancel_with_other_birth_date
from tests.support.builders import place
from tests.support.drive import AUTHORITY, send
from tests.support.journey import journey
from tests.support.served import served

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
USERS = {
    "ana": ("operator", "Ana Example", "ana-password-123"),
    "bo": ("qa", "Bo Sample", "bo-password-4567"),
    "vi": ("viewer", "Vi Viewer", "vi-password-8910"),
    "locky": ("operator", "Lo Locked", "locky-password-1"),
}
SHOTS = Path(os.environ.get("CGT_SCREENSHOTS_DIR", ROOT / "var" / "screenshots"))


@dataclass
class Console:
    base: str
    coi: str
    held: list[str]
    database_url: str
    context: BrowserContext
    amqp_url: str

    def page(self) -> Page:
        self.context.clear_cookies()
        return self.context.pages[0] if self.context.pages else self.context.new_page()

    def login(self, page: Page, name: str, password: str | None = None) -> None:
        page.goto(f"{self.base}/ui/login")
        page.fill("input[name=user]", name)
        page.fill("input[name=password]", password or USERS[name][2])
        page.click("button[type=submit]")

    def search(self, page: Page, value: str) -> None:
        page.goto(f"{self.base}/ui/search")
        page.fill("input[name=q]", value)
        page.click("form.search button")

    def logout(self, page: Page) -> None:
        page.click("form.logout button")


def shot(page: Page, name: str, part: Locator | None = None) -> None:
    """A screenshot as a test artefact: the viewport, or one part of the page. `make screenshots`
    sets CGT_SCREENSHOTS_DIR=docs/images to refresh the README's (each well under 150 KB)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    if part is not None:
        part.screenshot(path=str(SHOTS / f"{name}.png"))
    else:
        page.screenshot(path=str(SHOTS / f"{name}.png"))


async def _seed(database_url: str) -> tuple[str, list[str]]:
    engine = create_engine(database_url)
    try:
        await migrate(engine)
        intake = Intake(engine, coi_facility=Settings().coi_facility, authority=AUTHORITY)
        seeded = await journey(intake, engine, n=1)
        held = []
        for n in (2, 3, 4):
            assert (await send(intake, place(n))).status == "applied"
            outcome = await send(intake, cancel_with_other_birth_date(n))
            assert outcome.status == "quarantined", outcome
            async with engine.connect() as conn:
                q = t.quarantine
                found = await conn.execute(
                    select(q.c.quarantine_id).where(q.c.inbound_id == outcome.inbound_id)
                )
                held.append(str(found.scalar_one()))
        desk = ReviewDesk(engine, Rules(Settings().coi_facility, AUTHORITY, utcnow), production=False)
        for name, (role, printed, password) in USERS.items():
            await desk.add_user(name, role, printed, password)
        return seeded.coi, held
    finally:
        await dispose(engine)


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory, amqp_url: str) -> Iterator[Console]:
    assert CHROMIUM.exists(), "Debian's chromium is not installed: `make browser` (apt-get install chromium)"
    where = tmp_path_factory.mktemp("console")
    database_url = f"sqlite+aiosqlite:///{where}/gateway.db"
    coi, held = asyncio.run(_seed(database_url))
    settings = Settings(
        env="test", database_url=database_url, amqp_url=amqp_url, mllp_port=0, login_lockout_failures=3
    )
    profile = where / "chromium-profile"
    with served(settings) as port, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=ARGS,
            viewport={"width": 1180, "height": 820},
        )
        try:
            yield Console(f"http://127.0.0.1:{port}", coi, held, database_url, context, amqp_url)
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)
