"""The e-conomic OpenAPI services (https://apis.e-conomic.com/) under /sandbox/e-conomic-apis/: the
journals service v5.0.0, whose booking endpoints book the kassekladde the legacy REST API fills.

Same tokens and the same agreement state as portal.sandbox.economic; errors are RFC 7807 ProblemDetails;
non-GET requests honour `Idempotency-Key` (replayed for an hour with `X-ResultFromCache: true`).
"""

import json
import time
import uuid
from datetime import UTC, datetime

from flask import Blueprint, Response, g, request

from portal.extensions import db
from portal.sandbox import economic
from portal.sandbox.economic import seed  # noqa: F401  (the SANDBOXES contract: bp and seed)

JOURNALS = "/journalsapi/v5.0.0"
IDEMPOTENCY_SECONDS = 3600

bp = Blueprint("sandbox_economic_apis", __name__)


class Problem(Exception):
    def __init__(
        self, status: int, title: str, detail: str, errors: list | None = None, code: str | None = None
    ):
        super().__init__(detail)
        self.status = status
        body = {"type": f"https://apis.e-conomic.com/problems/{status}", "title": title, "status": status}
        body["detail"] = detail
        body["traceId"] = uuid.uuid4().hex
        if code:
            body["errorCode"] = code
        body["traceTimeUtc"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        if errors:
            body["errors"] = errors
        self.body = body


@bp.errorhandler(Problem)
def _problem(exc: Problem):
    db.session.rollback()
    return Response(json.dumps(exc.body), status=exc.status, mimetype="application/problem+json")


@bp.before_request
def _before():
    try:
        g.eco = economic.authenticate()
    except economic.ApiError as exc:
        raise Problem(
            401,
            "Unauthorized",
            "The credentials you supplied were not correct, or the agreement has revoked the grant it gave "
            "your app. Use the word demo for both tokens to try the API.",
        ) from exc
    if request.method != "GET" and request.headers.get("Idempotency-Key"):
        return _replay(request.headers["Idempotency-Key"])
    return None


def _idempotency_key(key: str) -> str:
    return f"{request.method} {request.path} {key}"[:200]


def _replay(key: str):
    stored = g.eco.store.get("_idempotency", _idempotency_key(key))
    if stored is None or time.time() - stored["at"] > IDEMPOTENCY_SECONDS:
        return None
    response = Response(stored["body"], status=stored["status"], mimetype=stored["mimetype"])
    response.headers["X-ResultFromCache"] = "true"
    return response


@bp.after_request
def _remember(response: Response):
    key = request.headers.get("Idempotency-Key")
    if (
        key
        and request.method != "GET"
        and response.status_code < 500
        and "X-ResultFromCache" not in response.headers
        and getattr(g, "eco", None) is not None
    ):
        g.eco.store.put(
            "_idempotency",
            _idempotency_key(key),
            {
                "status": response.status_code,
                "body": response.get_data(as_text=True),
                "mimetype": response.mimetype,
                "at": time.time(),
            },
        )
        db.session.commit()
    return response


def _book(journal_number: int, from_date=None, to_date=None):
    if g.eco.get("journals", journal_number) is None:
        raise Problem(404, "Not Found", f"Journal {journal_number} does not exist.")
    problems = economic.book_journal(journal_number, from_date, to_date)
    if problems:
        raise Problem(
            400,
            "Bad Request",
            "The entries in the journal do not balance.",
            [
                {"property": "voucherNumber", "message": message, "errorCode": "E01100"}
                for message in problems
            ],
            code="E01100",
        )
    db.session.commit()
    return Response(status=204)


@bp.post(f"{JOURNALS}/journals/<int:journal_number>/book")
def book(journal_number):
    """Book every draft entry in the journal (also the ones the bookkeeper typed in)."""
    return _book(journal_number)


@bp.post(f"{JOURNALS}/journals/<int:journal_number>/bookWithDateInterval")
def book_with_date_interval(journal_number):
    body = request.get_json(silent=True) or {}
    if not body.get("fromDate") or not body.get("toDate"):
        raise Problem(
            400,
            "Bad Request",
            "fromDate and toDate are required.",
            [{"property": "fromDate", "message": "Required.", "errorCode": "E00100"}],
        )
    return _book(journal_number, str(body["fromDate"])[:10], str(body["toDate"])[:10])
