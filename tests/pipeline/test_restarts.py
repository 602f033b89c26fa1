"""A production night: Redis restarted empty, PostgreSQL restarted, both mid-run. Each test starts its own
throwaway redis-server and PostgreSQL cluster (never the machine's shared ones), an app on them, real `rq
worker` and `rq cron` processes (the production watchdog: tests/pipeline/recovery_cron.py), and restarts
the server under them. A process that exits meanwhile is started again, as a supervisor (systemd, Kubernetes)
does in production. Afterwards every event is processed and every order is booked exactly once."""

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import redis as redis_lib
from cryptography.fernet import Fernet
from rq import SimpleWorker
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from portal import create_app
from portal.extensions import db as _db
from portal.models import SourceEvent, Transfer, TransferLog
from portal.queue import get_queue
from tests.conftest import _free_port, make_account, start_rq_cron, start_rq_worker, wait_for
from tests.pipeline.conftest import faults, feed, make_setup, make_source_link, order, remote

PG_BINARIES = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))


# --- throwaway servers -------------------------------------------------------------------------------------


class ThrowawayRedis:
    def __init__(self, directory: Path):
        from portal.devserver import redis_server_executable

        self.executable, self.directory, self.port = redis_server_executable(), directory, _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None
        self.start()

    def start(self):
        options = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(self.directory)]
        self.process = subprocess.Popen(
            [self.executable, "--port", str(self.port), *options],
            stdout=subprocess.DEVNULL,
        )
        client = redis_lib.Redis.from_url(self.url)
        assert wait_for(lambda: _answers(client), 10), "redis-server did not start"

    def restart_empty(self):
        self.process.kill()  # no save, no goodbye: everything it held is gone
        self.process.wait(10)
        self.start()

    def stop(self):
        self.process.terminate()
        self.process.wait(10)


def _answers(client) -> bool:
    try:
        return client.ping()
    except redis_lib.ConnectionError:
        return False


class ThrowawayPostgres:
    """A cluster in a temporary directory on a free port, trust authentication, run as the `postgres` user
    when the tests run as root (PostgreSQL refuses to)."""

    def __init__(self):
        self.bin = Path(PG_BINARIES[-1]).parent
        self.directory = Path(tempfile.mkdtemp(prefix="bogbro-pg-"))
        self.data, self.port = self.directory / "data", _free_port()
        self.user = None
        if os.geteuid() == 0:
            self.user = pwd.getpwnam("postgres")
            os.chown(self.directory, self.user.pw_uid, self.user.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "bogbro", "--auth=trust", "-E", "UTF8", "--no-sync")
        self.url = f"postgresql://bogbro@127.0.0.1:{self.port}/postgres"
        self.start()

    def _run(self, tool, *args):
        def demote():
            os.setgid(self.user.pw_gid)
            os.setuid(self.user.pw_uid)

        subprocess.run(
            [str(self.bin / tool), *args],
            check=True,
            capture_output=True,
            preexec_fn=demote if self.user else None,
            cwd=self.directory,
        )

    def _ctl(self, action, *args):
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = self.directory / "log"
        self._run("pg_ctl", action, "-D", str(self.data), "-o", options, "-l", str(log), "-w", *args)

    def start(self):
        self._ctl("start")

    def restart(self):
        self._ctl("restart", "-m", "fast")  # ends every connection, as a crash or a failover would

    def stop(self):
        self._ctl("stop", "-m", "immediate")
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres():
    if not PG_BINARIES:
        pytest.skip("no PostgreSQL binaries in /usr/lib/postgresql/*/bin (apt-get install postgresql)")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root without a `postgres` user to run the throwaway cluster as")
    server = ThrowawayPostgres()
    yield server
    server.stop()


@pytest.fixture
def night(postgres, tmp_path, smtp_server, monkeypatch):
    """An app on its own Redis and on the throwaway PostgreSQL (schema by the migrations), in an app
    context; workers and the watchdog started by `night.start()` are stopped afterwards."""
    from tests.conftest import _build_schema

    monkeypatch.setenv("PIPELINE_RETRY_SECONDS", "1")  # the workers' retries: seconds, not minutes
    redis_server = ThrowawayRedis(tmp_path)
    try:
        app = create_app(
            {
                "TESTING": True,
                "SQLALCHEMY_DATABASE_URI": postgres.url.replace("postgresql://", "postgresql+psycopg://", 1),
                "REDIS_URL": redis_server.url,
                "SECRET_KEY": "test-secret-key",
                "ENCRYPTION_KEYS": [Fernet.generate_key().decode()],
                "MAIL_SERVER": "127.0.0.1",
                "MAIL_PORT": smtp_server[1],
                "MAIL_USE_TLS": False,
                "MAIL_USERNAME": None,
                "SANDBOX_ENABLED": True,
                "PIPELINE_RETRY_SECONDS": 1,
            }
        )
        night = Night(app, postgres, redis_server, tmp_path)
        with app.app_context():
            try:
                _build_schema()
                yield night
            finally:
                night.stop()
                _db.session.remove()
                _db.engine.dispose()
    finally:
        redis_server.stop()


class Night:
    def __init__(self, app, postgres, redis_server, tmp_path):
        self.app, self.postgres, self.redis_server, self.tmp_path = app, postgres, redis_server, tmp_path
        self.processes: dict[str, subprocess.Popen] = {}
        self.restarted: list[str] = []

    def run_jobs(self):
        queue = get_queue()
        SimpleWorker([queue], connection=queue.connection).work(burst=True)

    def _start(self, name):
        if name == "cron":
            return start_rq_cron(self.app, self.postgres.url, self.tmp_path)
        return start_rq_worker(
            self.app, self.postgres.url, self.tmp_path, "--with-scheduler"
        )  # as production

    def start(self, *names):
        for name in names:
            self.processes[name] = self._start(name)

    def supervise(self):
        """Start again what exited, as production's supervisor does."""
        for name, process in self.processes.items():
            if process.poll() is not None:
                self.restarted.append(name)
                self.processes[name] = self._start(name)

    def stop(self):
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def _shop(db, account, setup, shop_id):
    return make_source_link(db, account, setup, shop_id=shop_id)


def _all_finished(night, count):
    def finished():
        night.supervise()
        _db.session.rollback()
        statuses = _db.session.scalars(select(Transfer.status)).all()
        waiting = _db.session.scalar(select(SourceEvent.id).where(SourceEvent.processed_at.is_(None)))
        return len(statuses) == count and set(statuses) == {"done"} and waiting is None

    return finished


def _booked_once(setup, references):
    connector = remote(setup)
    for reference in references:
        booked = connector._all("/invoices/booked", f"references.other$eq:{reference}")
        assert len(booked) == 1, f"{reference}: {len(booked)} booked invoices"
        assert connector._all("/invoices/drafts", f"references.other$eq:{reference}") == [], reference


def _setup(night):
    account = make_account()
    setup = make_setup(account, "e-conomic", auto_book=True)
    first = _shop(_db, account, setup, "12")
    feed(first, order(number="4999"))  # warms the customer and product caches
    night.run_jobs()
    return account, setup, first


def test_redis_restarted_empty_mid_run_forgets_nothing(night):
    """Redis comes back empty while a worker is inside e-conomic and another shop's drain job is queued:
    the queued job, the flags and locks are gone; the watchdog finds from the database what is left, and
    each order is booked once."""
    account, setup, first = _setup(night)
    second = _shop(_db, account, setup, "13")
    faults(night.app, "e-conomic", latency_ms=4000, next=["slow"])  # the first draft request takes 4 s
    for number in ("5001", "5002", "5003"):
        feed(first, order(number=number))
        feed(second, order(number=number))
    night.start("worker", "cron")

    def inside_e_conomic():
        _db.session.rollback()
        return _db.session.scalar(
            select(Transfer.id).where(Transfer.draft_requested, Transfer.status == "running")
        )

    assert wait_for(inside_e_conomic, 30), "the worker never got to the draft"
    assert get_queue().job_ids, "the other shop's drain job is queued (and about to be forgotten)"
    night.redis_server.restart_empty()
    restarted = time.monotonic()
    assert wait_for(_all_finished(night, 7), 60), "not everything finished after Redis came back"
    print(
        f"all done {time.monotonic() - restarted:.1f} s after Redis restarted; restarted: {night.restarted}"
    )
    _booked_once(setup, [f"WC-{shop}-{n}" for shop in ("12", "13") for n in ("5001", "5002", "5003")])


def test_postgres_restarted_mid_run_workers_and_web_carry_on(night):
    """PostgreSQL restarts while a worker posts: the interrupted job ends visible (the transfer is queued
    again from its checkpoint), the web answers again on a fresh connection, and what arrives after the
    restart goes through."""
    _, setup, first = _setup(night)
    faults(night.app, "e-conomic", latency_ms=3000, next=["slow"])
    for number in ("5001", "5002"):
        feed(first, order(number=number))
    night.start("worker", "cron")

    def inside_e_conomic():
        _db.session.rollback()
        return _db.session.scalar(
            select(Transfer.id).where(Transfer.draft_requested, Transfer.status == "running")
        )

    interrupted = wait_for_value(inside_e_conomic, 30)
    night.postgres.restart()
    restarted = time.monotonic()

    with night.app.app_context():  # a request of its own, as in production: a session from the pool
        response = night.app.test_client().get("/healthz")
    assert response.json == {"status": "ok"}  # the web's pool reconnects (pool_pre_ping)
    try:
        _db.session.rollback()  # this test's own session held a connection the restart ended …
    except OperationalError:
        _db.session.rollback()  # … which is dropped now
    feed(first, order(number="5004"))  # the web side writes again, and the event is taken
    assert wait_for(_all_finished(night, 4), 60), "not everything finished after PostgreSQL came back"
    took = time.monotonic() - restarted
    print(f"all done {took:.1f} s after PostgreSQL restarted; restarted: {night.restarted}")
    _booked_once(setup, [f"WC-12-{n}" for n in ("5001", "5002", "5004")])
    steps = _db.session.scalars(select(TransferLog.step).where(TransferLog.transfer_id == interrupted)).all()
    transfer = _db.session.get(Transfer, interrupted)
    assert transfer.attempts >= 2, steps  # interrupted, then resumed — visible in its log
    assert "watchdog" in steps or "retry" in steps, steps


def wait_for_value(function, seconds):
    found = []
    assert wait_for(lambda: found.append(function()) or found[-1], seconds), "never happened"
    return found[-1]
