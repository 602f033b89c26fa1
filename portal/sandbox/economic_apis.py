"""The e-conomic OpenAPI services (https://apis.e-conomic.com/) under /sandbox/e-conomic-apis/: the
journals service, whose booking endpoints book the kassekladde the legacy REST API fills. Only the version
the connector pins is served (another version's path is a 404, as a version that does not exist is).

What comes from where (docs/connectors/economic.md, "Journals"): `GET /draft-entries` and the whole-journal
`POST /journals/{n}/book` are in the official v5.0.0 document; `POST /journals/{n}/bookdraftentries`
(booking chosen entries, changelog 11.1.0) is known from e-conomic's changelog and two client libraries,
not from a published schema — its body `{"entryNumbers": [...]}` and its 204 are guesses.

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

JOURNALS = "/journalsapi/v16.0.1"
CURSOR_PAGE_SIZE = 1000  # x-cursor-page-size: "usually 1000"
ENTRY_TYPE_NUMBERS = {
    "customerPayment": 2,
    "supplierInvoice": 3,
    "supplierPayment": 4,
    "financeVoucher": 5,
    "manualCustomerInvoice": 10,
}
# x-filterable in the DraftEntry schema (v5.0.0); text and amount are not filterable.
DRAFT_ENTRY_FILTERS = {
    "entryNumber", "entryTypeNumber", "voucherNumber", "journalNumber", "date", "accountNumber", "currency",
    "contraAccountNumber", "projectNumber", "customerNumber", "supplierNumber",
}  # fmt: skip
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


def _book(journal_number: int, from_date=None, to_date=None, entry_numbers=None):
    if g.eco.get("journals", journal_number) is None:
        raise Problem(404, "Not Found", f"Journal {journal_number} does not exist.")
    problems = economic.book_journal(journal_number, from_date, to_date, entry_numbers)
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


@bp.post(f"{JOURNALS}/journals/<int:journal_number>/bookdraftentries")
def book_draft_entries(journal_number):
    """Book only the given draft entries; the journal's other entries stay as they are."""
    body = request.get_json(silent=True)
    numbers = body.get("entryNumbers") if isinstance(body, dict) else None
    if (
        not isinstance(numbers, list)
        or not numbers
        or not all(isinstance(n, int) and not isinstance(n, bool) for n in numbers)
    ):
        raise _invalid("entryNumbers", "entryNumbers must be a non-empty list of entry numbers.")
    if g.eco.get("journals", journal_number) is None:
        raise Problem(404, "Not Found", f"Journal {journal_number} does not exist.")
    drafts = economic.journal_entries(journal_number)
    known = {e["journalEntryNumber"] for e in drafts}
    missing = sorted(set(numbers) - known)
    if missing:
        raise _invalid(
            "entryNumbers", f"Entries {missing} are not draft entries in journal {journal_number}."
        )
    # Guess, on the safe side: a voucher is booked whole or not at all (its entries balance together).
    chosen = [e for e in drafts if e["journalEntryNumber"] in numbers]
    vouchers = {_voucher_key(e) for e in chosen}
    left = sorted(e["journalEntryNumber"] for e in drafts if _voucher_key(e) in vouchers)
    if set(left) != set(numbers):
        raise _invalid("entryNumbers", "Book all entries of a voucher together.")
    return _book(journal_number, entry_numbers=set(numbers))


def _voucher_key(entry: dict) -> tuple:
    return entry["voucher"]["accountingYear"]["year"], entry["voucher"]["voucherNumber"]


def _invalid(prop: str, message: str) -> Problem:
    return Problem(
        400, "Bad Request", message, [{"property": prop, "message": message, "errorCode": "E00100"}]
    )


@bp.get(f"{JOURNALS}/draft-entries")
def draft_entries():
    """Every draft entry of every journal (cursor paging, filter on the filterable properties)."""
    items = sorted((_draft_entry(e) for e in g.eco.all("journal-entries")), key=lambda e: e["entryNumber"])
    text = request.args.get("filter")
    if text:
        try:
            tree = economic.parse_filter(text)
            if not economic._fields(tree) <= DRAFT_ENTRY_FILTERS:
                raise economic.FilterError("not filterable")
            items = [item for item in items if economic.matches(tree, item)]
        except economic.FilterError as exc:
            raise _invalid("filter", f"The filter is not valid: {exc}") from exc
    after = request.args.get("cursor")
    if after:
        if not after.isdigit():
            raise _invalid("cursor", "The cursor is not valid.")
        items = [item for item in items if item["entryNumber"] > int(after)]
    page = items[:CURSOR_PAGE_SIZE]
    body = {"items": page}
    if len(items) > CURSOR_PAGE_SIZE:
        body["cursor"] = str(page[-1]["entryNumber"])  # absent on the last page (documented)
    return Response(economic.json_text(body), mimetype="application/json")


def _draft_entry(entry: dict) -> dict:
    """A kassekladde entry as the journals service's DraftEntry shows it."""
    out = {
        "entryNumber": entry["journalEntryNumber"],
        "entryTypeNumber": ENTRY_TYPE_NUMBERS[entry["entryType"]],
        "voucherNumber": entry["voucher"]["voucherNumber"],
        "journalNumber": entry["journal"]["journalNumber"],
        "date": f"{entry['date']}T00:00:00",
        "amount": entry["amount"],
        "currency": entry["currency"]["code"],
    }
    optional = {
        "accountNumber": (entry.get("account") or {}).get("accountNumber"),
        "vatCode": (entry.get("vatAccount") or {}).get("vatCode"),
        "contraAccountNumber": (entry.get("contraAccount") or {}).get("accountNumber"),
        "contraVatCode": (entry.get("contraVatAccount") or {}).get("vatCode"),
        "text": entry.get("text"),
        "customerNumber": (entry.get("customer") or {}).get("customerNumber"),
        "customerInvoiceNumber": (  # a string in DraftEntry
            str(entry["customerInvoice"]) if entry.get("customerInvoice") is not None else None
        ),
    }
    out.update({key: value for key, value in optional.items() if value is not None})
    return out
