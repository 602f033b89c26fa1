"""What operators read besides /metrics: log lines as JSON in production (one object a line, for a log
collector), and errors sent to Sentry when SENTRY_DSN is set (Flask and RQ integrations).

Log messages are already free of secrets in URLs (portal.redaction masks each record as it is made); what
goes to Sentry is masked the same way, and no request bodies, cookies or user details are sent (webshop
payloads carry customers' names and addresses).
"""

import json
import logging
import sys
from datetime import UTC, datetime

from portal.redaction import redact_text

_configured: dict[str, bool] = {}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, and the traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        if record.exc_info:
            entry["exception"] = redact_text(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(log_format: str, level: str) -> None:
    """`json`: every record of this process, ours, the libraries' and RQ's worker lines, as JSON on stderr
    (RQ's own handlers keep their stdout/stderr split, with our format). `text` leaves logging as it is."""
    if log_format != "json" or _configured.get("logging"):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("rq.worker", "rq.scheduler"):
        for rq_handler in logging.getLogger(name).handlers:
            rq_handler.setFormatter(JsonFormatter())
    _configured["logging"] = True


def _masked(value):
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {key: _masked(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(item) for item in value]
    return value


def _before_send(event, hint):
    return _masked(event)


def _before_breadcrumb(crumb, hint):
    return _masked(crumb)


def init_sentry(dsn: str, environment: str, traces_sample_rate: float) -> None:
    """Once per process (Sentry's client is global): unhandled errors in requests and in RQ jobs."""
    if not dsn or _configured.get("sentry"):
        return
    import sentry_sdk
    from sentry_sdk.integrations.flask import FlaskIntegration
    from sentry_sdk.integrations.rq import RqIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        integrations=[FlaskIntegration(), RqIntegration()],
        traces_sample_rate=traces_sample_rate,
        send_default_pii=False,
        max_request_body_size="never",
        before_send=_before_send,
        before_breadcrumb=_before_breadcrumb,
    )
    _configured["sentry"] = True


def init_app(app) -> None:
    configure_logging(app.config["LOG_FORMAT"], app.config["LOG_LEVEL"])
    init_sentry(
        app.config["SENTRY_DSN"], app.config["SENTRY_ENVIRONMENT"], app.config["SENTRY_TRACES_SAMPLE_RATE"]
    )
