"""The operator console under /ui/: server-rendered pages (Jinja2 templates, a little CSS,
charts drawn as SVG on the server), for operations and quality staff."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI

from gateway.console import dead_letter_pages, pages, review_pages
from gateway.console.sessions import Sessions
from gateway.console.web import Console
from gateway.service.desk import ReviewDesk
from gateway.service.journeys import Journeys
from gateway.settings import Settings


def mount_console(app: FastAPI, settings: Settings, desk: ReviewDesk, journeys: Journeys) -> None:
    sessions = Sessions(
        desk.engine,
        desk,
        idle=timedelta(minutes=settings.console_session_minutes),
        production=settings.env == "production",
        clock=desk.rules.clock,
    )
    app.state.console = Console(sessions, desk, journeys, settings.amqp_url)
    app.include_router(pages.router)
    app.include_router(review_pages.router)
    app.include_router(dead_letter_pages.router)
