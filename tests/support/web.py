"""The web app as a person meets it: ``mailmover serve`` on a free loopback port, and
headless Chromium (Debian's ``/usr/bin/chromium``) driven by Playwright.

``WebServer`` runs the real command in a subprocess with a data directory of its
own (job database, key file), its local runner on when asked, and a first
administrator from the environment. ``Browser`` holds one Chromium for the session;
``page`` gives each test a fresh context (no cookies shared between tests).

Fixtures (imported by tests/web/conftest.py): ``web`` (a server with its runner,
for the module), ``chromium`` (the session's browser), ``page``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mailmover.service.accounts import ADMIN, USER, Account, create_account
from mailmover.store import Store

from .throwaway import free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: a guard against hangs (seconds), not a timing
START_GUARD = 60.0
SCREENSHOTS = Path(os.environ.get("MAILMOVER_SCREENSHOTS", "/tmp/mailmover-screenshots"))


class WebServer:
    """``mailmover serve`` in a subprocess on 127.0.0.1, with its own data directory."""

    def __init__(self, data_dir: Path, runner: bool = True, admin_from_env: bool = True) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.admin_email = "admin@example.com"
        self.admin_password = secrets.token_urlsafe(14)
        self.env = {
            **os.environ,
            "MAILMOVER_DATA_DIR": str(data_dir),
            "MAILMOVER_ADMIN_EMAIL": self.admin_email,
            "MAILMOVER_ADMIN_PASSWORD": self.admin_password,
            "PYTHONUNBUFFERED": "1",
        }
        if not admin_from_env:  # serve makes one and prints its password
            for var in ("MAILMOVER_ADMIN_EMAIL", "MAILMOVER_ADMIN_PASSWORD"):
                self.env.pop(var, None)
        self.env.pop("MAILMOVER_SECRET_KEY", None)
        self.env.pop("MAILMOVER_DATABASE_URL", None)
        self.log = data_dir.parent / f"serve-{self.port}.log"
        # Cookies without the Secure flag, as `mailmover serve` on loopback gives them
        # (httpx, unlike Chromium, keeps no Secure cookie for http://127.0.0.1).
        self.args = ["--port", str(self.port), "--concurrency", "4"]
        if not runner:
            self.args.append("--no-runner")
        self.proc: subprocess.Popen[bytes] | None = None
        self.passwords: list[str] = [self.admin_password]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.data_dir / 'state.db'}"

    def start(self) -> WebServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        out = self.log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mailmover", "serve", *self.args],
            env=self.env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        out.close()
        deadline = time.monotonic() + START_GUARD
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"mailmover serve ended: {self.output()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.base + "/signin", timeout=2).status_code == 200:
                    return self
            time.sleep(0.1)
        raise AssertionError(f"mailmover serve did not answer: {self.output()[-3000:]}")

    def stop(self) -> int:
        """SIGTERM, as a service manager stops it; its exit code."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(90)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def store(self) -> Store:
        return Store.open(self.db_url)

    def add_account(self, role: str = USER, name: str | None = None) -> tuple[Account, str]:
        """A new account with a random password (remembered for the secret search)."""
        email = f"{name or role}-{secrets.token_hex(3)}@example.com"
        password = secrets.token_urlsafe(14)
        self.passwords.append(password)
        with self.store() as store:
            return create_account(store, email, password, role), password

    def admin(self) -> tuple[str, str]:
        return self.admin_email, self.admin_password


def sign_in(page: Any, server: WebServer, email: str, password: str, next: str = "") -> None:
    """Sign in through the form, as a person does."""
    page.goto(server.base + "/signin" + (f"?next={next}" if next else ""))
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def signed_in(web: WebServer, name: str) -> httpx.Client:
    """A client with a session of a new account, sending the session's CSRF token as a header."""
    account, password = web.add_account(name=name)
    return session_client(web, account.email, password)


def session_client(web: WebServer, email: str, password: str) -> httpx.Client:
    """A client signed in as ``email``, sending the session's CSRF token as a header."""
    client = httpx.Client(base_url=web.base)
    page = client.get("/signin").text
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    form = {"email": email, "password": password, "csrf_token": token}
    assert client.post("/signin", data=form).status_code == 303
    page = client.get("/transfers").text
    client.headers["X-CSRF-Token"] = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    return client


def screenshot(page: Any, name: str) -> Path:
    """Save the whole page as SCREENSHOTS/NAME.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    """``mailmover serve`` with its local runner, for the test module."""
    server = WebServer(tmp_path_factory.mktemp("web") / "data").start()
    try:
        yield server
    finally:
        code = server.stop()
        # uvicorn ends by raising the SIGTERM it caught again, once it has shut down.
        assert code in (0, -signal.SIGTERM), server.output()[-3000:]


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """Headless Debian Chromium, shared by the session (no browser is downloaded)."""
    from playwright.sync_api import sync_playwright

    if not os.access(CHROMIUM, os.X_OK):
        raise AssertionError(f"{CHROMIUM} is missing: run `make sysdeps`")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies) and its page, at a laptop's width."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    try:
        yield context.new_page()
    finally:
        context.close()


__all__ = ["ADMIN", "USER", "WebServer", "chromium", "page", "screenshot", "sign_in", "web"]


def create_transfer(
    server: WebServer,
    batch: Any,
    owner: Account,
    dst_port: int | None = None,
    delta_every_hours: float | None = None,
    **settings: Any,
) -> str:
    """Make ``batch`` (support.service.Batch) a transfer of ``owner`` through the service,
    in the server's job database (as the new-transfer pages will)."""
    from mailmover.engine.settings import PassSettings
    from mailmover.service.batchfile import parse_batch
    from mailmover.service.jobs import JobSpec, create_job_from_batch
    from mailmover.service.secrets import SecretBox

    rows = parse_batch(batch.write_csv(dst_port).read_text(encoding="utf-8"))
    spec = JobSpec(
        name=batch.name,
        owner=owner.email,
        owner_id=owner.id,
        settings=PassSettings(**({"connections": 1} | settings)),
        delta_every_hours=delta_every_hours,
    )
    with server.store() as store:
        return create_job_from_batch(store, SecretBox.open(server.data_dir, {}), rows, spec)
