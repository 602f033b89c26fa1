"""JSON log lines in production and errors to Sentry when SENTRY_DSN is set — each in a process of its own
(both are process-wide), checked on what really comes out: the lines on stderr, the envelope Sentry's SDK
posts to a local HTTP server standing in for sentry.io."""

import gzip
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from portal.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parent.parent
SECRET_URL = "https://shop.example/wp-json/wc/v3/orders?consumer_secret=cs_live_very_secret"


def run_python(code: str, tmp_path, **env) -> subprocess.CompletedProcess:
    environment = {
        **os.environ,
        "INSTANCE_PATH": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        **env,
    }
    environment.pop("PRODUCTION", None)
    return subprocess.run(
        [sys.executable, "-c", code], env=environment, cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def test_log_lines_are_json_objects_without_secrets(tmp_path):
    code = (
        "import logging\n"
        "from portal import create_app\n"
        "create_app()\n"
        "log = logging.getLogger('portal.pipeline')\n"
        f"log.warning('shop answered 500 at %s', {SECRET_URL!r})\n"
        "try:\n"
        f"    raise RuntimeError('gave up on ' + {SECRET_URL!r})\n"
        "except RuntimeError:\n"
        "    log.exception('transfer 7 failed')\n"
        "logging.getLogger('portal.pipeline').debug('not at INFO')\n"
    )
    result = run_python(code, tmp_path, LOG_FORMAT="json")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert [line["message"] for line in lines] == [
        "shop answered 500 at https://shop.example/wp-json/wc/v3/orders?consumer_secret=[redacted]",
        "transfer 7 failed",
    ]
    assert lines[0]["level"] == "WARNING" and lines[0]["logger"] == "portal.pipeline"
    assert lines[0]["time"].endswith("+00:00")
    assert "RuntimeError: gave up on" in lines[1]["exception"]
    assert "cs_live_very_secret" not in result.stderr


def test_text_logs_stay_as_they_are_outside_production(tmp_path):
    code = (
        "import logging\nfrom portal import create_app\ncreate_app()\nlogging.getLogger('x').warning('plain')"
    )
    result = run_python(code, tmp_path)
    assert result.returncode == 0 and result.stderr.strip() == "plain"  # Python's own last-resort output


def test_log_format_must_be_json_or_text(tmp_path):
    with pytest.raises(ConfigError, match="LOG_FORMAT"):
        load_config(str(tmp_path), {"LOG_FORMAT": "xml"})
    assert load_config(str(tmp_path), {})["LOG_FORMAT"] == "text"


class Sentry(BaseHTTPRequestHandler):
    received: list[bytes] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        Sentry.received.append(body)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def test_errors_go_to_sentry_without_secrets_or_request_bodies(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Sentry)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Sentry.received = []
    code = (
        "import sentry_sdk\n"
        "from portal import create_app\n"
        "app = create_app({'TESTING': False, 'WTF_CSRF_ENABLED': False})\n"
        "@app.post('/boom')\n"
        "def boom():\n"
        f"    raise RuntimeError('shop refused ' + {SECRET_URL!r})\n"
        "response = app.test_client().post('/boom', data={'customer': 'Jens Jensen, Vestergade 1'})\n"
        "assert response.status_code == 500, response.status_code\n"
        "sentry_sdk.flush(5)\n"
    )
    try:
        result = run_python(code, tmp_path, SENTRY_DSN=f"http://public@127.0.0.1:{server.server_port}/1")
    finally:
        server.shutdown()
    assert result.returncode == 0, result.stderr
    envelope = b"".join(Sentry.received).decode()
    assert "shop refused https://shop.example/wp-json/wc/v3/orders?consumer_secret=[redacted]" in envelope
    assert "cs_live_very_secret" not in envelope
    assert "Jens Jensen" not in envelope  # no request bodies
    event = next(json.loads(line) for line in envelope.splitlines() if '"exception"' in line)
    assert {"flask", "rq"} <= set(event["sdk"]["integrations"])
    assert event["environment"] == "development"
