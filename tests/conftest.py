"""Fixtures: app, db, redis, client, mailbox, workers, users, live server and browser.

Real services only: Redis is REDIS_URL when set (the suite flushes that database, so point it at a
spare one) or a throwaway embedded redis-server; the database is TEST_DATABASE_URL when set
(PostgreSQL in CI; its tables are dropped and rebuilt by the migrations) or a fresh SQLite file.

`make test` runs the suite in two processes (pytest-xdist, one per core). Each has its own embedded Redis
and SQLite file; with REDIS_URL and TEST_DATABASE_URL, worker N uses the Redis database N below the given
one and a PostgreSQL database of its own (`<name>_gwN`, made fresh from the given one's server).
"""

import html
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import redis as redis_lib
from aiosmtpd.controller import Controller
from cryptography.fernet import Fernet
from flask.testing import FlaskClient
from itsdangerous import URLSafeTimedSerializer
from rq import SimpleWorker
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from werkzeug.serving import make_server

from portal import create_app
from portal.auth.passwords import hash_password
from portal.extensions import db as _db
from portal.models import Account, User
from portal.queue import get_queue

SPECS = Path(__file__).resolve().parent.parent.parent / "shared" / "specs"
PASSWORD = "correct horse battery"


# --- services -------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker_number() -> int:
    """0 without xdist or in its first worker ("gw0"), 1 in "gw1", …"""
    return int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    if os.environ.get("REDIS_URL"):
        url = make_url_redis(os.environ["REDIS_URL"], _worker_number())
        yield url
        return
    from portal.devserver import redis_server_executable

    directory = tmp_path_factory.mktemp("redis")
    port = _free_port()
    process = subprocess.Popen(
        [
            redis_server_executable(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            str(directory),
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis_lib.Redis.from_url(url)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis_lib.ConnectionError:
            time.sleep(0.05)
    yield url
    process.terminate()
    process.wait(10)


def make_url_redis(url: str, worker: int) -> str:
    """The given Redis URL with its database number lowered by the worker's number (15 → 15, 14, …)."""
    base, _, number = url.rpartition("/")
    if not number.isdigit() or int(number) < worker:
        raise pytest.UsageError(f"REDIS_URL {url} needs a database number of at least {worker}")
    return f"{base}/{int(number) - worker}"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return url
    # A database of this worker's own on the same server, made fresh (the migrations build its tables).
    given = make_url(url)
    own = given.set(database=f"{given.database}_{os.environ['PYTEST_XDIST_WORKER']}")
    engine = create_engine(given, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{own.database}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{own.database}"'))
    engine.dispose()
    return own.render_as_string(hide_password=False)


class Mailbox:
    """Messages received by a real local SMTP server."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        import email
        from email import policy

        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"

    def clear(self):
        self.messages.clear()

    def last(self, to=None):
        found = [m for m in self.messages if to is None or m["To"] == to]
        assert found, f"no mail to {to}; got {[m['To'] for m in self.messages]}"
        return found[-1]

    def link(self, message, path_fragment):
        body = message.get_content()
        match = re.search(rf"https?://\S*{re.escape(path_fragment)}\S*", body)
        assert match, f"no link with {path_fragment} in:\n{body}"
        return match.group(0)


@pytest.fixture(scope="session")
def smtp_server():
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield mailbox, controller.port
    controller.stop()


# --- the app ----------------------------------------------------------------------------------------------


class CSRFClient(FlaskClient):
    """A test client that sends a valid CSRF token with every form post, as the browser would.

    Pass csrf=False to send none (to prove it is required). Each request runs in a fresh app context
    (its own `g` and database session), as in production, even while the test holds one open.
    """

    def open(self, *args, csrf=True, **kwargs):
        method = kwargs.get("method", "GET").upper()
        if csrf and method in {"POST", "PUT", "PATCH", "DELETE"}:
            headers = dict(kwargs.pop("headers", None) or {})
            headers.setdefault("X-CSRFToken", self.csrf_token())
            kwargs["headers"] = headers
        with self.application.app_context():
            return super().open(*args, **kwargs)

    def csrf_token(self) -> str:
        with self.session_transaction() as session:
            raw = session.setdefault("csrf_token", os.urandom(20).hex())
        return URLSafeTimedSerializer(self.application.secret_key, salt="wtf-csrf-token").dumps(raw)


@pytest.fixture(scope="session")
def app(database_url, redis_url, smtp_server):
    _, smtp_port = smtp_server
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url.replace("postgresql://", "postgresql+psycopg://", 1),
            "REDIS_URL": redis_url,
            "SECRET_KEY": "test-secret-key",
            "ENCRYPTION_KEYS": [Fernet.generate_key().decode()],
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": smtp_port,
            "MAIL_USE_TLS": False,
            "MAIL_USERNAME": None,
            "SANDBOX_ENABLED": True,
        }
    )
    app.test_client_class = CSRFClient
    with app.app_context():
        _build_schema()
    return app


def _build_schema():
    """Drop everything and build the schema with the migrations (never create_all)."""
    from flask_migrate import upgrade

    engine = _db.engine
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    if engine.dialect.name == "sqlite":
        Path(engine.url.database).unlink(missing_ok=True)
        engine.dispose()
    upgrade()


@pytest.fixture
def db(app, redis):
    """An app context with empty tables; rows are removed afterwards with plain SQL."""
    with app.app_context():
        yield _db
        _db.session.remove()
        tables = list(reversed(_db.metadata.sorted_tables))  # children first
        with _db.engine.begin() as connection:
            for table in tables:
                connection.execute(table.delete())
            if _db.engine.dialect.name == "postgresql":
                # Ids start at 1 again, as after TRUNCATE … RESTART IDENTITY — which cost ~0.1 s a test
                # (it makes new files for every table); DELETE and a sequence reset cost a fifth of it.
                sequences = connection.scalars(
                    text("SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema()")
                ).all()
                if sequences:
                    connection.execute(
                        text("; ".join(f'ALTER SEQUENCE "{name}" RESTART' for name in sequences))
                    )


@pytest.fixture
def redis(app):
    client = redis_lib.Redis.from_url(app.config["REDIS_URL"])
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture
def mailbox(smtp_server):
    mailbox, _ = smtp_server
    mailbox.clear()
    return mailbox


@pytest.fixture
def run_jobs(app, db):
    """Run every queued RQ job now, in this process, with a real worker on the real Redis."""

    def run():
        queue = get_queue()
        worker = SimpleWorker([queue], connection=queue.connection)
        worker.work(burst=True)
        failed = queue.failed_job_registry.get_job_ids()
        assert not failed, f"jobs failed: {failed}"

    return run


RQ = Path(sys.executable).parent / "rq"


def start_rq_worker(app, database_url, tmp_path, *args, worker_class="workers.worker.AppWorker"):
    """A real `rq worker` process on the tests' database and Redis, in its own process group."""
    return _start_rq(app, database_url, tmp_path, "worker", *args, "--worker-class", worker_class)


def start_rq_cron(app, database_url, tmp_path, module="tests.pipeline.recovery_cron"):
    """A real `rq cron` process enqueuing `module`'s periodic jobs on the tests' Redis."""
    return _start_rq(app, database_url, tmp_path, "cron", module)


def _start_rq(app, database_url, tmp_path, *args):
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": app.config["REDIS_URL"],
        "INSTANCE_PATH": str(tmp_path),
        "SECRET_KEY": app.config["SECRET_KEY"],
        "ENCRYPTION_KEYS": ",".join(app.config["ENCRYPTION_KEYS"]),
        "SANDBOX_ENABLED": "1",
        "PRODUCTION": "0",
    }
    return subprocess.Popen(
        [str(RQ), *args, "--url", env["REDIS_URL"]],
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: a kill reaches everything it started
    )


def wait_for(condition, seconds=60.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def client(app, db):
    return app.test_client()


# --- people -----------------------------------------------------------------------------------------------


def make_account(name="Kunde ApS", cvr="35000011") -> Account:
    account = Account(name=name, cvr=cvr)
    _db.session.add(account)
    _db.session.commit()
    return account


def make_user(email, account=None, role="owner", staff=False, name=None, password=PASSWORD) -> User:
    user = User(
        email=email,
        name=name or email.split("@")[0].title(),
        password_hash=hash_password(password),
        account_id=None if staff else account.id,
        role=None if staff else role,
        is_staff=staff,
    )
    _db.session.add(user)
    _db.session.commit()
    return user


@pytest.fixture
def account(db):
    return make_account("Kunde ApS", "35000011")


@pytest.fixture
def owner(account):
    return make_user("owner@kunde.dk", account, role="owner", name="Olga Owner")


@pytest.fixture
def member(account, owner):
    return make_user("member@kunde.dk", account, role="member", name="Mads Member")


@pytest.fixture
def staff(db):
    return make_user("agent@bogbro.dk", staff=True, name="Agnes Agent")


@pytest.fixture
def other_account(db):
    account = make_account("Anden Butik ApS", "35000038")
    make_user("owner@anden.dk", account, role="owner", name="Otto Other")
    return account


def login(client, email, password=PASSWORD):
    response = client.post("/login", data={"email": email, "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)
    return response


@pytest.fixture
def owner_client(client, owner):
    login(client, owner.email)
    return client


@pytest.fixture
def member_client(client, member):
    login(client, member.email)
    return client


@pytest.fixture
def staff_client(client, staff):
    login(client, staff.email)
    return client


# --- browser --------------------------------------------------------------------------------------------

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="session")
def live_server(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="session")
def _browser():
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium, or set CHROMIUM)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(_browser, live_server, db):
    context = _browser.new_context(base_url=live_server, locale="da-DK")
    page = context.new_page()
    errors = []
    # Script errors and CSP violations; an HTTP error status the test provokes on purpose is not one.
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda message: (
            message.type == "error"
            and not message.text.startswith("Failed to load resource")
            and errors.append(message.text)
        ),
    )
    yield page
    context.close()
    errors = _without_aborted_requests(errors)
    assert not errors, f"browser errors: {errors}"


def _without_aborted_requests(errors: list[str]) -> list[str]:
    """htmx logs a request it aborts on purpose (hx-sync="this:replace": a newer input replaces the
    request in flight, or the page is left) as two console errors, afterRequest then sendAbort. That is
    the design working, not a fault; every other error stays."""
    kept: list[str] = []
    for message in errors:
        if message.startswith("htmx:sendAbort"):
            if kept and kept[-1].startswith("htmx:afterRequest"):
                kept.pop()
            continue
        kept.append(message)
    return kept


# --- accounting sandboxes -------------------------------------------------------------------------------


# The sandboxes accept redirects back to the host that asked them (here: the in-process origin).
CALLBACK = "http://sandbox.bogbro.internal/setup/connect/callback"


def sandbox_connect_params(system_key: str) -> dict:
    """What the customer's browser (or form) hands back after granting access to a sandbox: the
    consent pages are really used, through the in-process transport."""
    from urllib.parse import parse_qs, urlsplit

    from flask import current_app

    from portal.connectors import system_module
    from portal.sandbox.transport import IN_PROCESS_ORIGIN, SandboxTransport

    module = system_module(system_key)
    settings = module.sandbox_settings(IN_PROCESS_ORIGIN)
    if system_key == "dynaccount":
        return {key: settings[f"demo_{key}"] for key in ("api_id", "api_key", "api_secret")}
    url = module.start_connect(settings, CALLBACK, "test-state")
    answer = {"e-conomic": {"agreement": "demo", "action": "accept"}, "dinero": {"answer": "accept"}}[
        system_key
    ]
    transport = SandboxTransport(current_app._get_current_object())
    with httpx.Client(transport=transport, base_url=IN_PROCESS_ORIGIN) as browser:
        page = browser.get(url)  # the consent page, with its hidden fields (and a session for its CSRF)
        hidden = dict(
            re.findall(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page.text)
        )
        hidden.update(
            re.findall(r'<input[^>]*name="([^"]+)"[^>]*type="hidden"[^>]*value="([^"]*)"', page.text)
        )
        response = browser.post(
            urlsplit(url).path, data={**{k: html.unescape(v) for k, v in hidden.items()}, **answer}
        )
    assert response.status_code == 302, response.text
    return {key: values[0] for key, values in parse_qs(urlsplit(response.headers["Location"]).query).items()}


def connect_sandbox(account, system_key: str):
    """A sandbox Connection made through the real connect flow (as the wizard does it)."""
    from portal.setups import operations

    return operations.connect(account, system_key, True, sandbox_connect_params(system_key), CALLBACK)
