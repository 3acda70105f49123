"""The console's sessions and logins over HTTP on both databases: the cookie's flags, a session
ended server-side at logout, Argon2id hashes (an scrypt hash from before verifies once and is
replaced), the lock-out shared by the console and the API's Basic credentials, and no demo
users in production."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select, update

from gateway.entrypoints.bootstrap import Gateway, bootstrap
from gateway.entrypoints.http import create_app
from gateway.service.desk import ReviewDesk
from gateway.settings import Settings
from gateway.store import tables as t

PASSWORD = "ana-password-123"


@pytest.fixture
async def app(database_url: str, amqp_url: str) -> AsyncIterator[tuple[object, Gateway]]:
    settings = Settings(env="test", database_url=database_url, amqp_url=amqp_url, mllp_port=0)
    gateway = bootstrap(settings)
    await gateway.start()
    application = create_app(gateway)
    desk: ReviewDesk = application.state.desk
    await desk.add_user("ana", "operator", "Ana Example", PASSWORD)
    yield application, gateway
    await gateway.stop()


def client(application: object, scheme: str = "http") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=application)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url=f"{scheme}://gateway")


async def log_in(http: httpx.AsyncClient, password: str = PASSWORD) -> httpx.Response:
    form = await http.get("/ui/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token, form.text
    return await http.post("/ui/login", data={"csrf": token[1], "user": "ana", "password": password})


async def test_the_session_cookie_is_httponly_strict_and_secure_over_https(
    app: tuple[object, Gateway],
) -> None:
    application, _ = app
    async with client(application, "https") as http:
        answer = await log_in(http)
        assert answer.status_code == 303 and answer.headers["location"] == "/ui/search"
        cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("cgt_console="))
        assert (
            "HttpOnly" in cookie
            and "SameSite=strict" in cookie
            and "Secure" in cookie
            and "Path=/ui/" in cookie
        )
        page = await http.get("/ui/search")
        assert page.status_code == 200 and "Ana Example" in page.text
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    async with client(application, "http") as http:  # a developer's plain http: not Secure
        cookie = next(
            c for c in (await log_in(http)).headers.get_list("set-cookie") if c.startswith("cgt_console=")
        )
        assert "Secure" not in cookie


async def test_logout_ends_the_session_on_the_server(app: tuple[object, Gateway]) -> None:
    application, gateway = app
    async with client(application) as http:
        await log_in(http)
        kept = http.cookies.get("cgt_console", path="/ui/")
        page = await http.get("/ui/search")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token
        assert (await http.post("/ui/logout", data={"csrf": token[1]})).status_code == 303
    async with gateway.engine.connect() as conn:
        assert (await conn.execute(select(t.console_sessions))).first() is None
    async with client(application) as http:  # the old cookie opens nothing
        http.cookies.set("cgt_console", str(kept), path="/ui/")
        again = await http.get("/ui/search")
        assert again.status_code == 303 and again.headers["location"] == "/ui/login"
        assert (await http.get("/ui/quarantine")).status_code == 303


async def test_a_session_unused_for_its_idle_time_ends(database_url: str, amqp_url: str) -> None:
    settings = Settings(
        env="test", database_url=database_url, amqp_url=amqp_url, mllp_port=0, console_session_minutes=0.05
    )
    gateway = bootstrap(settings)
    await gateway.start()
    try:
        application = create_app(gateway)
        await application.state.desk.add_user("ana", "operator", "Ana Example", PASSWORD)
        async with client(application) as http:
            await log_in(http)
            assert (await http.get("/ui/search")).status_code == 200
            await asyncio.sleep(3.5)  # 3 s unused
            gone = await http.get("/ui/search")
            assert gone.status_code == 303 and gone.headers["location"] == "/ui/login"
    finally:
        await gateway.stop()


async def test_an_scrypt_hash_verifies_once_and_is_replaced_by_argon2id(app: tuple[object, Gateway]) -> None:
    application, gateway = app
    salt = b"0123456789abcdef"
    digest = hashlib.scrypt(PASSWORD.encode(), salt=salt, n=2**14, r=8, p=1)
    old = "$".join(
        ("scrypt", "16384", "8", "1", base64.b64encode(salt).decode(), base64.b64encode(digest).decode())
    )
    async with gateway.engine.begin() as conn:
        await conn.execute(update(t.operators).where(t.operators.c.name == "ana").values(password_hash=old))
    async with client(application) as http:
        assert (await log_in(http, "wrong-password-0")).status_code == 401
        assert (await log_in(http)).status_code == 303
    async with gateway.engine.connect() as conn:
        stored = (await conn.execute(select(t.operators.c.password_hash))).scalar_one()
    assert stored.startswith("$argon2id$")
    async with client(application) as http:
        assert (await log_in(http)).status_code == 303  # and the new hash verifies


async def test_the_lock_out_holds_for_the_api_and_the_console_alike(app: tuple[object, Gateway]) -> None:
    application, _ = app
    wrong = {"Authorization": "Basic " + base64.b64encode(b"ana:wrong-password-0").decode()}
    right = {"Authorization": "Basic " + base64.b64encode(f"ana:{PASSWORD}".encode()).decode()}
    async with client(application) as http:
        assert (await http.get("/api/quarantine", headers=right)).status_code == 200
        for _ in range(4):
            assert (await http.get("/api/quarantine", headers=wrong)).status_code == 401
        fifth = await http.get("/api/quarantine", headers=wrong)
        assert fifth.status_code == 401 and "too many failed logins" in fifth.text
        refused = await http.get("/api/quarantine", headers=right)
        assert refused.status_code == 401 and "too many failed logins" in refused.text
        page = await log_in(http)
        assert page.status_code == 401 and "too many failed logins" in page.text


def test_production_has_no_demo_users(tmp_path: object) -> None:
    env = {**os.environ, "CGT_ENV": "production", "CGT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/g.db"}
    command = [sys.executable, "-m", "gateway.entrypoints.cli", "users", "demo"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "production has no demo users" in done.stderr
