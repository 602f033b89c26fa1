"""Secrets out of log lines. Some APIs carry the key in the URL itself (Dynaccount: /v1/<id>/<api key>/…;
WooCommerce on hosts that drop the Authorization header: ?consumer_key=…&consumer_secret=…), so every
URL that is logged — in the transfer log or by Python logging (httpx logs each request) — is masked."""

import logging
import re

REDACTED = "[redacted]"
# a query parameter whose name says it is a secret
_SECRET_PARAM = re.compile(
    r"(?P<name>[?&;](?:[\w.-]*(?:key|secret|token|password|signature|hmac|code)[\w.-]*)=)[^&#\s'\"]*", re.I
)
# a path segment that is a long hex string: an API key or signature, never a readable id
_HEX_SEGMENT = re.compile(r"(?<=/)[0-9a-fA-F]{32,}(?=[/?#\s'\"]|$)")


def redact_text(text: str) -> str:
    if "/" not in text and "=" not in text:
        return text
    return _HEX_SEGMENT.sub(REDACTED, _SECRET_PARAM.sub(rf"\g<name>{REDACTED}", text))


_installed = False


def install_log_redaction() -> None:
    """Every log record of this process has its message redacted as it is made (httpx, RQ, ours)."""
    global _installed
    if _installed:
        return
    make_record = logging.getLogRecordFactory()

    def redacting_record(*args, **kwargs):
        record = make_record(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is logging's to report, not ours
            return record
        cleaned = redact_text(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return record

    logging.setLogRecordFactory(redacting_record)
    _installed = True
