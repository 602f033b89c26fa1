"""`make run`'s last step, for real: embedded Redis, migrate, seed, web + worker, log in, Ctrl-C."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import _free_port

ROOT = Path(__file__).resolve().parent.parent
FLASK = str(Path(sys.executable).parent / "flask")


@pytest.fixture
def instance(tmp_path):
    env = {key: value for key, value in os.environ.items() if key not in {"REDIS_URL", "DATABASE_URL"}}
    env["INSTANCE_PATH"] = str(tmp_path)
    return env


def test_dev_runs_everything_and_ctrl_c_stops_it_all(instance, tmp_path):
    port = _free_port()
    process = subprocess.Popen(
        [FLASK, "--app", "wsgi", "dev", "--port", str(port)],
        cwd=ROOT,
        env=instance,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # a process group of its own, like a terminal's
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail("the portal did not come up")
        with httpx.Client(base_url=base, follow_redirects=True) as browser:
            page = browser.get("/login").text
            token = page.split('name="csrf_token" type="hidden" value="', 1)[1].split('"', 1)[0]
            browser.post(
                "/login", data={"csrf_token": token, "email": "demo@example.com", "password": "demo-demo"}
            )
            dashboard = browser.get("/dashboard").text
            assert "Demo Webshop ApS" in dashboard
            assert (
                "Nordlys Webshop ApS" in dashboard and "<strong>Aktiv</strong>" in dashboard
            )  # the e-conomic demo
        children = subprocess.run(
            ["pgrep", "-P", str(process.pid)], capture_output=True, text=True
        ).stdout.split()
        assert len(children) == 4  # Redis, the worker, the periodic jobs' cron, web
        for child in children:  # Ctrl-C reaches the supervisor alone; it stops the others in order
            assert os.getpgid(int(child)) != process.pid
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        output = process.communicate(timeout=30)[0].decode()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert f"http://127.0.0.1:{port}" in output and "demo@example.com / demo-demo" in output
    assert "Traceback" not in output
    left = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True).stdout.split()
    assert left == [], "processes outlived Ctrl-C"


def test_links_in_mails_open_where_the_dev_portal_runs():
    from portal.devserver import child_env

    assert child_env({}, 5123)["PUBLIC_URL"] == "http://127.0.0.1:5123"
    given = {"PUBLIC_URL": "https://demo.bogbro.dk"}
    assert child_env(given, 5123)["PUBLIC_URL"] == "https://demo.bogbro.dk"  # a chosen address wins
