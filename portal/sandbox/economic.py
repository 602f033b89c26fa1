"""The e-conomic sandbox: an emulator of e-conomic's legacy REST API (https://restapi.e-conomic.com/)
under /sandbox/e-conomic/, with the grant-token consent page of secure.e-conomic.com.

It answers with e-conomic's paths, field names, status codes, annotated 400 errors, pagination envelope,
`filter=`/`sort=` syntax and self-link encoding of product numbers, and computes invoice totals the way
e-conomic does (each line rounded to 2 decimals half up, VAT per rate on the net total). Every guess about
the real system is listed in docs/connectors/economic.md. The journals service of apis.e-conomic.com (used
to book journals) lives in portal.sandbox.economic_apis and shares this state.

State: SandboxStore("e-conomic", <agreement number>); grants and agreements in the "_global" tenant.
This module emulates the vendor: it never imports from portal.connectors.
"""

import json
import re
import secrets
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from urllib.parse import quote, urlencode

from flask import Blueprint, Response, g, redirect, request

from portal.extensions import db
from portal.sandbox.common import consent_page, redirect_allowed, redirect_back
from portal.sandbox.pdf import invoice_pdf
from portal.sandbox.store import SandboxStore

SYSTEM = "e-conomic"
PREFIX = "/sandbox/e-conomic"
DEMO_AGREEMENT = 5182734  # arbitrary; the real demo agreement's number is not documented
DEMO_TOKEN = "demo"  # noqa: S105  the documented demo grant (read-only at e-conomic, read-write here)
# app public token -> app secret token of the apps "registered" with the sandbox
APPS = {"demo-public": "demo"}
CENT = Decimal("0.01")
PAGE_SIZE, MAX_PAGE_SIZE = 20, 1000

bp = Blueprint("sandbox_economic", __name__, template_folder="templates")


# --- errors -------------------------------------------------------------------------------------------------


class ApiError(Exception):
    def __init__(self, status: int, body: dict, headers: dict | None = None):
        super().__init__(body.get("message") or body.get("title"))
        self.status = status
        self.body = body
        self.headers = headers or {}


def error_body(status: int, message: str, hint: str, errors: dict | None = None, code: str | None = None):
    """e-conomic's REST error document (shape of the documented 400 and of recorded 404 bodies)."""
    body = {"message": message, "developerHint": hint}
    if code:
        body["errorCode"] = code
    body.update(
        {
            "logId": uuid.uuid4().hex[:16] + "-CPH",
            "httpStatusCode": status,
            "logTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        }
    )
    if errors:
        body["errors"] = errors
    return body


def not_found():
    return ApiError(
        404,
        error_body(
            404,
            "Resource not found.",
            "The API tries to provide all the resource urls you need. If you have hard coded urls yourself, "
            "then try to look at the enclosing collection for hypermedia information on where the resource "
            "you are looking for could be.",
        ),
    )


def bad_request(message: str, hint: str, code: str | None = None):
    return ApiError(400, error_body(400, message, hint, code=code))


# Documented codes: E06000 (referenced resource does not exist), E04740 (more than two decimals), E04500
# (product without identifier), E04730 (quantity required with a product). The others are guesses.
E_NOT_FOUND, E_DECIMALS, E_NO_IDENTIFIER, E_QUANTITY = "E06000", "E04740", "E04500", "E04730"
E_REQUIRED, E_TOO_LONG, E_INVALID, E_EXISTS, E_NOT_OPEN = "E04300", "E04310", "E04100", "E07010", "E07330"


class Problems:
    """Collects annotated errors in the shape of the posted document (arrays carry arrayIndex)."""

    def __init__(self):
        self.errors: dict = {}

    def add(self, path, code, message, value=None, hint="Please check your request data."):
        node = self.errors
        parts = list(path)
        while len(parts) > 1:
            key = parts.pop(0)
            if parts and isinstance(parts[0], int):
                index = parts.pop(0)
                items = node.setdefault(key, [])
                item = next((i for i in items if i["arrayIndex"] == index), None)
                if item is None:
                    item = {"arrayIndex": index}
                    items.append(item)
                node = item
            else:
                node = node.setdefault(key, {})
        error = {"errorCode": code, "message": message}
        if value is not None:
            error["value"] = value
        error["developerHint"] = hint
        node.setdefault(parts[0], {"errors": []})["errors"].append(error)

    def raise_if_any(self):
        if self.errors:
            raise ApiError(
                400,
                error_body(
                    400,
                    "Validation error.",
                    "Inspect validation errors and correct your request.",
                    errors=self.errors,
                ),
            )


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError):
    db.session.rollback()
    return json_response(exc.body, exc.status, exc.headers)


# --- JSON with exact decimals -------------------------------------------------------------------------------


def json_text(value) -> str:
    """JSON where Decimals are written as numbers with exactly their digits (never via float)."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{json_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(json_text(v) for v in value) + "]"
    if isinstance(value, Decimal):
        return format(value, "f")
    return json.dumps(value, ensure_ascii=False)


def json_response(body, status=200, headers=None) -> Response:
    response = Response(json_text(body), status=status, mimetype="application/json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def request_json():
    if not (request.mimetype or "").endswith("json"):
        raise ApiError(
            415,
            error_body(
                415, "Unsupported media type.", "Send the document as JSON (Content-Type: application/json)."
            ),
        )
    try:
        return json.loads(request.get_data(as_text=True) or "null", parse_float=Decimal)
    except ValueError as exc:
        raise bad_request("The request body is not valid JSON.", str(exc)) from None


# Stored documents live in a JSON column: Decimals are kept as floats there (their repr gives back the
# same digits for the at most 15 significant digits money has) and turned back into Decimals on reading.
def _for_storage(value):
    if isinstance(value, dict):
        return {k: _for_storage(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_for_storage(v) for v in value]
    if isinstance(value, Decimal):
        return (
            int(value)
            if value == value.to_integral_value() and value.as_tuple().exponent >= 0
            else float(value)
        )
    return value


def _from_storage(value):
    if isinstance(value, dict):
        return {k: _from_storage(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_storage(v) for v in value]
    if isinstance(value, float):
        return Decimal(repr(value))
    return value


def money(value) -> Decimal:
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


# --- state --------------------------------------------------------------------------------------------------


class Agreement:
    """The documents of one agreement."""

    def __init__(self, number: int):
        self.number = int(number)
        self.store = SandboxStore(SYSTEM, str(self.number))

    def get(self, collection, key):
        document = self.store.get(collection, key)
        return None if document is None else _from_storage(document)

    def all(self, collection):
        return [_from_storage(d) for d in self.store.all(collection)]

    def put(self, collection, key, document):
        self.store.put(collection, key, _for_storage(document))
        return document

    def delete(self, collection, key):
        return self.store.delete(collection, key)

    def next(self, counter, start):
        return self.store.next_number(counter, start)

    @property
    def info(self) -> dict:
        return _global().get("agreements", str(self.number)) or {}


def _global() -> SandboxStore:
    return SandboxStore(SYSTEM, "_global")


def register_agreement(number: int, company: dict, modules: list[dict]) -> None:
    store = _global()
    if store.get("agreements", str(number)) is None:
        store.put(
            "agreements", str(number), {"agreementNumber": number, "company": company, "modules": modules}
        )


def issue_grant(agreement_number: int, app_public_token: str) -> str:
    token = secrets.token_urlsafe(24)
    _global().put(
        "grants", token, {"agreementNumber": agreement_number, "app": app_public_token, "revoked": False}
    )
    return token


def revoke_grant(token: str) -> bool:
    """What the customer does under Settings → Apps in e-conomic; the sandbox exposes it for demos/tests."""
    store = _global()
    grant = store.get("grants", token)
    if grant is None:
        return False
    store.put("grants", token, {**grant, "revoked": True})
    return True


UNAUTHORIZED_HINT = (
    "Check the X-AppSecretToken and X-AgreementGrantToken headers. A grant that the agreement has revoked "
    "is no longer valid; ask the customer to grant access again."
)


def authenticate() -> Agreement:
    """The agreement the request's tokens give access to, or the 401 e-conomic answers."""
    secret = request.headers.get("X-AppSecretToken", "")
    grant_token = request.headers.get("X-AgreementGrantToken", "")
    if not secret or not grant_token:
        raise unauthorized("Missing the X-AppSecretToken or X-AgreementGrantToken header.")
    if secret not in APPS.values():
        raise unauthorized("The X-AppSecretToken is not valid.")
    if grant_token == DEMO_TOKEN:
        number = DEMO_AGREEMENT
        register_agreement(DEMO_AGREEMENT, DEMO_COMPANY, DEMO_MODULES)
    else:
        grant = _global().get("grants", grant_token)
        if grant is None or grant.get("revoked") or APPS.get(grant["app"]) != secret:
            raise unauthorized("The X-AgreementGrantToken is not valid or the grant has been revoked.")
        number = grant["agreementNumber"]
    agreement = Agreement(number)
    if not agreement.store.is_seeded():
        seed(str(number))
    return agreement


def unauthorized(message):
    return ApiError(401, error_body(401, f"Unauthorized access (401): {message}", UNAUTHORIZED_HINT))


@bp.before_request
def _before():
    if request.endpoint and request.endpoint.endswith(("connect_page", "revoke")):
        return
    g.eco = authenticate()
    g.eco_base = request.host_url.rstrip("/") + PREFIX


# --- self links ---------------------------------------------------------------------------------------------

_ENCODE = {
    "<": "_0_",
    ">": "_1_",
    "*": "_2_",
    "%": "_3_",
    ":": "_4_",
    "&": "_5_",
    "/": "_6_",
    "\\": "_7_",
    "_": "_8_",
    " ": "_9_",
    "?": "_10_",
    ".": "_11_",
    "#": "_12_",
    "+": "_13_",
}
_DECODE = {v.strip("_"): k for k, v in _ENCODE.items()}


def encode_key(value: str) -> str:
    """e-conomic's custom self-link encoding, then standard URL encoding of what is left."""
    return quote("".join(_ENCODE.get(c, c) for c in value), safe="")


def decode_key(segment: str) -> str:
    return re.sub(r"_(\d{1,2})_", lambda m: _DECODE.get(m.group(1), m.group(0)), segment)


# id property -> collection path: objects carrying it get a self link
LINKS = (
    ("draftInvoiceNumber", "invoices/drafts"),
    ("bookedInvoiceNumber", "invoices/booked"),
    ("customerNumber", "customers"),
    ("productNumber", "products"),
    ("productGroupNumber", "product-groups"),
    ("customerGroupNumber", "customer-groups"),
    ("layoutNumber", "layouts"),
    ("paymentTermsNumber", "payment-terms"),
    ("vatZoneNumber", "vat-zones"),
    ("vatTypeNumber", "vat-types"),
    ("vatCode", "vat-accounts"),
    ("unitNumber", "units"),
    ("accountNumber", "accounts"),
    ("journalNumber", "journals"),
    ("employeeNumber", "employees"),
    ("moduleNumber", "modules"),
    ("roleNumber", "app-roles"),
    ("languageNumber", "languages"),
    ("code", "currencies"),
    ("year", "accounting-years"),
)


def link(value, base):
    """Add the self links e-conomic puts on every referenced object."""
    if isinstance(value, list):
        return [link(v, base) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: link(v, base) for k, v in value.items()}
    if "self" not in out:
        for key, path in LINKS:
            if key in out and not isinstance(out[key], dict | list):
                ident = encode_key(str(out[key])) if key == "productNumber" else quote(str(out[key]), safe="")
                out["self"] = f"{base}/{path}/{ident}"
                break
    return out


def reference(document: dict | None, key: str):
    """A referenced resource's id, given by number or by self link (both are allowed)."""
    if not isinstance(document, dict):
        return None
    if document.get(key) is not None:
        return document[key]
    if isinstance(document.get("self"), str):
        last = document["self"].rstrip("/").rsplit("/", 1)[-1]
        return decode_key(last) if key == "productNumber" else _int_or(last)
    return None


def _int_or(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


# --- filter, sort and pagination ----------------------------------------------------------------------------

_ESCAPES = "$()*,[]"
_OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "like", "in", "nin")


class FilterError(ValueError):
    pass


def parse_filter(text: str):
    """Parse e-conomic's filter syntax into a tree: ("and"|"or", left, right) or ("pred", field, op, value).

    Values are lists of (character, escaped) pairs until evaluation, so an escaped "*" is not a wildcard.
    """
    tokens, buf, i = [], [], 0

    def flush():
        if buf:
            tokens.append(("pred", list(buf)))
            buf.clear()

    while i < len(text):
        if text.startswith("$and:", i) or text.startswith("$or:", i):
            flush()
            op = "and" if text.startswith("$and:", i) else "or"
            tokens.append((op,))
            i += len(op) + 2
        elif text[i] == "$" and i + 1 < len(text) and text[i + 1] in _ESCAPES:
            buf.append((text[i + 1], True))
            i += 2
        elif text[i] == "(" and not buf:
            tokens.append(("(",))
            i += 1
        elif text[i] == ")":
            flush()
            tokens.append((")",))
            i += 1
        else:
            buf.append((text[i], False))
            i += 1
    flush()

    position = 0

    def peek():
        return tokens[position][0] if position < len(tokens) else None

    def take():
        nonlocal position
        position += 1
        return tokens[position - 1]

    def term():
        if peek() == "(":
            take()
            node = expression()
            if peek() != ")":
                raise FilterError("missing closing parenthesis")
            take()
            return node
        if peek() != "pred":
            raise FilterError("expected a predicate")
        return predicate(take()[1])

    def conjunction():
        node = term()
        while peek() == "and":
            take()
            node = ("and", node, term())
        return node

    def expression():
        node = conjunction()
        while peek() == "or":
            take()
            node = ("or", node, conjunction())
        return node

    tree = expression()
    if position != len(tokens):
        raise FilterError("unexpected text after the filter")
    return tree


def predicate(chars):
    start = next((n for n, (c, escaped) in enumerate(chars) if c == "$" and not escaped), None)
    if start is None:
        raise FilterError("a predicate needs an operator such as $eq:")
    field = "".join(c for c, _ in chars[:start])
    rest = chars[start + 1 :]
    colon = next((n for n, (c, escaped) in enumerate(rest) if c == ":" and not escaped), None)
    if colon is None:
        raise FilterError("an operator ends with ':'")
    op = "".join(c for c, _ in rest[:colon])
    if op not in _OPERATORS:
        raise FilterError(f"unknown operator ${op}:")
    value = rest[colon + 1 :]
    if "".join(c for c, _ in value) == "$null:" and not any(e for _, e in value):
        value = None
    return ("pred", field, op, value)


def _plain(value) -> str:
    return "".join(c for c, _ in value)


def _path(document, field):
    value = document
    for part in field.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _compare(actual, wanted: str):
    """(actual, wanted) converted to comparable values; strings compare case-insensitively."""
    if isinstance(actual, bool):
        return actual, wanted.lower() == "true"
    if isinstance(actual, int | Decimal):
        try:
            return Decimal(str(actual)), Decimal(wanted)
        except InvalidOperation:
            raise FilterError(f"{wanted!r} is not a number") from None
    return str(actual).lower(), wanted.lower()


def matches(tree, document) -> bool:
    if tree[0] == "and":
        return matches(tree[1], document) and matches(tree[2], document)
    if tree[0] == "or":
        return matches(tree[1], document) or matches(tree[2], document)
    _, field, op, value = tree
    actual = _path(document, field)
    if actual is None and field.split(".")[-1] in BOOLEAN_FIELDS:
        actual = False  # false booleans are omitted from documents
    if value is None:
        return (actual is None) == (op == "eq")
    if op in ("in", "nin"):
        text = _plain(value)
        if not (text.startswith("[") and text.endswith("]")):
            raise FilterError("$in: and $nin: take a list in brackets")
        items = [item for item in text[1:-1].split(",") if item]
        if len(items) > 200:
            raise FilterError("at most 200 values in $in: and $nin:")
        found = actual is not None and any(
            _compare(actual, item)[0] == _compare(actual, item)[1] for item in items
        )
        return found if op == "in" else not found
    if actual is None:
        return op == "ne"
    if op == "like":
        pattern = "".join(".*" if c == "*" and not escaped else re.escape(c) for c, escaped in value)
        if not any(c == "*" and not escaped for c, escaped in value):
            pattern = f".*{pattern}.*"  # without wildcards $like: means "contains"
        return re.fullmatch(pattern, str(actual), re.IGNORECASE | re.DOTALL) is not None
    left, right = _compare(actual, _plain(value))
    return {
        "eq": left == right,
        "ne": left != right,
        "gt": left > right,
        "gte": left >= right,
        "lt": left < right,
        "lte": left <= right,
    }[op]


BOOLEAN_FIELDS = {"barred", "blockDirectEntries", "closed", "deleted", "inventoryEnabled"}


def _fields(tree):
    if tree[0] in ("and", "or"):
        return _fields(tree[1]) | _fields(tree[2])
    return {tree[1]}


def collection(items: list[dict], filterable: set[str], default_sort: str | None = None, metadata=None):
    """The collection envelope with e-conomic's filter, sort and skippages/pagesize pagination."""
    args = request.args
    total = len(items)
    text = args.get("filter")
    if text:
        try:
            tree = parse_filter(text)
            unknown = sorted(_fields(tree) - filterable)
            if unknown:
                raise FilterError(f"filtering on {', '.join(unknown)} is not allowed")
            items = [item for item in items if matches(tree, item)]
        except FilterError as exc:
            raise bad_request(
                "The filter is not valid.",
                f"{exc}. Properties marked filterable in the collection's schema can be filtered on.",
            ) from None
    sort = args.get("sort") or default_sort
    if sort:
        for key in reversed(sort.split(",")):
            descending, as_text = key.startswith("-"), "~" in key
            field = key.lstrip("-~")
            if field not in filterable:
                raise bad_request("The sort is not valid.", f"Sorting on {field} is not allowed.")

            def sort_key(item, field=field, as_text=as_text):
                value = _path(item, field)
                if value is None:
                    return (0, "")
                if as_text or isinstance(value, str):
                    return (1, str(value).lower())
                return (1, Decimal(str(value)))

            items = sorted(items, key=sort_key, reverse=descending)
    try:
        skip = int(args.get("skippages", 0))
        size = int(args.get("pagesize", PAGE_SIZE))
    except ValueError:
        raise bad_request(
            "skippages and pagesize must be whole numbers.", "Use e.g. ?skippages=0&pagesize=100."
        ) from None
    if skip < 0 or not 1 <= size <= MAX_PAGE_SIZE:
        raise bad_request(
            f"pagesize must be between 1 and {MAX_PAGE_SIZE}, skippages 0 or more.",
            "Use e.g. ?skippages=0&pagesize=1000.",
        )
    results = len(items)
    last = max(0, (results - 1) // size)
    page = items[skip * size : (skip + 1) * size]

    def page_url(n):
        query = {"skippages": n, "pagesize": size}
        for name in ("filter", "sort"):
            if args.get(name):
                query[name] = args[name]
        return f"{g.eco_base}{request.path[len(PREFIX) :]}?{urlencode(query)}"

    pagination = {
        "maxPageSizeAllowed": MAX_PAGE_SIZE,
        "skipPages": skip,
        "pageSize": size,
        "results": results,
        "resultsWithoutFilter": total,
        "firstPage": page_url(0),
    }
    if skip < last:
        pagination["nextPage"] = page_url(skip + 1)
    pagination["lastPage"] = page_url(last)
    body = {"collection": link(page, g.eco_base), "pagination": pagination}
    if metadata:
        body["metaData"] = metadata
    body["self"] = page_url(skip)
    return json_response(body)


def created(document: dict, location_path: str):
    body = link(document, g.eco_base)
    return json_response(body, 201, {"Location": f"{g.eco_base}/{location_path}"})


# --- validation helpers -------------------------------------------------------------------------------------


def _decimal_places(value) -> int:
    exponent = Decimal(str(value)).normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def check_number(problems, path, value, places=2):
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        problems.add(path, E_INVALID, f"{path[-1]} must be a number.", value)
    elif _decimal_places(value) > places:
        problems.add(
            path,
            E_DECIMALS,
            f"{path[-1]} scale cannot be greater then two decimal places."
            if places == 2
            else f"{path[-1]} scale cannot be greater then {places} decimal places.",
            value,
            "Please check the format of your data.",
        )


def check_text(problems, path, value, limit, required=False):
    if value is None:
        if required:
            problems.add(path, E_REQUIRED, f"Property {path[-1]} is required.")
        return
    if not isinstance(value, str):
        problems.add(path, E_INVALID, f"{path[-1]} must be a string.", value)
    elif required and not value.strip():
        problems.add(path, E_REQUIRED, f"Property {path[-1]} is required.")
    elif len(value) > limit:
        problems.add(path, E_TOO_LONG, f"{path[-1]} cannot be longer than {limit} characters.", value)


def check_nulls(problems, document, path=()):
    """e-conomic does not accept null: omit a property to clear it."""
    if isinstance(document, dict):
        for key, value in document.items():
            if value is None:
                problems.add((*path, key), E_INVALID, f"{key} cannot be null. Omit the property instead.")
            else:
                check_nulls(problems, value, (*path, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            check_nulls(problems, value, (*path, index))


def check_ref(problems, path, document, key, collection, required=True, hint_path=None):
    """A reference to another resource by number or self link; returns the number or None."""
    number = reference(document, key)
    if number is None:
        if required:
            problems.add(path, E_REQUIRED, f"Property {path[-1]} is required.")
        return None
    if g.eco.get(collection, number) is None:
        problems.add(
            path,
            E_NOT_FOUND,
            f"{path[-1]} does not exist.",
            number,
            f"Find a list of resources at https://restapi.e-conomic.com/{hint_path or collection}.",
        )
        return None
    return number


def parse_date(problems, path, value, required=True):
    if value is None:
        if required:
            problems.add(path, E_REQUIRED, f"Property {path[-1]} is required.")
        return None
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        problems.add(path, E_INVALID, f"{path[-1]} is not a valid date (YYYY-MM-DD).", value)
        return None


def accounting_year_for(day: date) -> dict | None:
    """The accounting year taking documents dated `day`: None outside every year, or in a closed year or
    period (economic_periods)."""
    for year in g.eco.all("accounting-years"):
        if year["fromDate"] <= day.isoformat() <= year["toDate"]:
            return year if economic_periods.is_open(year, day) else None
    return None


def today() -> str:
    return date.today().isoformat()


# --- master data --------------------------------------------------------------------------------------------

DEMO_COMPANY = {
    "name": "Nordlys Webshop ApS",
    "addressLine1": "Vestergade 12",
    "zip": "8000",
    "city": "Aarhus C",
    "country": "Danmark",
    "phoneNumber": "86 12 34 56",
    "email": "bogholderi@nordlys-webshop.dk",
    "website": "https://nordlys-webshop.dk",
    "companyIdentificationNumber": "29400008",
}
# Module names as the Danish UI shows them; the numbers are guesses.
DEMO_MODULES = [{"moduleNumber": 2, "name": "Lager"}, {"moduleNumber": 7, "name": "Projekter"}]

ACCOUNTS = [
    # number, name, type, debit/credit, vat code
    (1000, "Omsætning", "heading", "credit", None),
    (1010, "Salg af varer, indland", "profitAndLoss", "credit", "U25"),
    (1020, "Salg af varer, EU", "profitAndLoss", "credit", None),
    (1030, "Salg af varer, udland", "profitAndLoss", "credit", None),
    (1040, "Salg af varer, momsfrit", "profitAndLoss", "credit", None),
    (1050, "Salg af ydelser, indland", "profitAndLoss", "credit", "U25"),
    (1100, "Fragt, indland", "profitAndLoss", "credit", "U25"),
    (1110, "Fragt, EU", "profitAndLoss", "credit", None),
    (1120, "Fragt, udland", "profitAndLoss", "credit", None),
    (1300, "Vareforbrug", "heading", "debit", None),
    (1310, "Varekøb", "profitAndLoss", "debit", "I25"),
    (7200, "Administration", "heading", "debit", None),
    (7220, "Gebyrer, betalingsformidling", "profitAndLoss", "debit", None),
    (7290, "Øreafrunding", "profitAndLoss", "debit", None),
    (5500, "Omsætningsaktiver", "heading", "debit", None),
    (5600, "Debitorer", "status", "debit", None),
    (5810, "Kasse", "status", "debit", None),
    (5820, "Bank", "status", "debit", None),
    (5830, "Betalingsformidler (clearing)", "status", "debit", None),
    (6900, "Moms", "heading", "credit", None),
    (6910, "Salgsmoms", "status", "credit", None),
    (6920, "Købsmoms", "status", "debit", None),
    (6930, "Moms af varekøb i udlandet", "status", "credit", None),
]
VAT_TYPES = [(1, "Salgsmoms"), (2, "Købsmoms"), (3, "Moms af varekøb i udlandet (EU)")]
VAT_ACCOUNTS = [
    # code, name, rate, type, account
    ("U25", "Salgsmoms 25%", "25.00", 1, 6910),
    ("I25", "Købsmoms 25%", "25.00", 2, 6920),
    ("EUV", "Moms af varekøb i EU", "25.00", 3, 6930),
]
VAT_ZONES = [(1, "Domestic", True), (2, "EU", True), (3, "Abroad", True), (4, "Domestic exempt VAT", False)]
LAYOUTS = [(19, "Standard faktura"), (21, "Faktura med girokort"), (22, "Engelsk faktura")]
PAYMENT_TERMS = [
    (1, "Netto 8 dage", "net", 8),
    (2, "Netto 14 dage", "net", 14),
    (3, "Løbende måned + 30 dage", "invoiceMonth", 30),
    (4, "Kontant", "paidInCash", 0),
    (5, "Netto 30 dage", "net", 30),
]
CUSTOMER_GROUPS = [(1, "Danske kunder", 5600), (2, "Udenlandske kunder", 5600)]
UNITS = [(1, "stk."), (2, "timer"), (3, "kg")]
CURRENCIES = [("DKK", "Danske kroner", "208"), ("EUR", "Euro", "978"), ("SEK", "Svenske kroner", "752")]
CURRENCIES += [
    ("NOK", "Norske kroner", "578"),
    ("USD", "Amerikanske dollar", "840"),
    ("GBP", "Britiske pund", "826"),
]
# Base-currency price of 100 units, used when a foreign-currency document gives no exchangeRate.
EXCHANGE_RATES = {
    "DKK": "100",
    "EUR": "746.05",
    "SEK": "65.12",
    "NOK": "63.80",
    "USD": "690.55",
    "GBP": "872.40",
}
PRODUCT_GROUPS = [
    # number, name, inventory, sales account per VAT zone 1-4
    (1, "Varer", True, (1010, 1020, 1030, 1040)),
    (2, "Fragt", False, (1100, 1110, 1120, 1040)),
    (3, "Ydelser", False, (1050, 1020, 1030, 1040)),
    # gift cards and the rounding line: no VAT in any zone (Bogbro's VAT-free template)
    (4, "Momsfrit salg (gavekort, afrunding)", False, (1040, 1040, 1040, 1040)),
]
# OSS (EU sales to private customers at the buyer's country's VAT) as an accountant sets it up: per country a
# VAT code with its standard rate (current rates: ../shared/specs/vat) posting to the country's own OSS VAT
# account (the OSS return is per country), a sales account carrying that code, and a product group whose
# EU-zone account is that sales account (its other zones as the goods group's: a private customer elsewhere
# is no OSS sale). Other countries have none, so a demo can show a country without a group.
OSS_SETUP = [
    # country, Danish name, VAT code, rate, sales account, OSS VAT account, product group
    ("SE", "Sverige", "SE25", "25.00", 1210, 6941, 11),
    ("DE", "Tyskland", "DE19", "19.00", 1220, 6942, 12),
    ("FI", "Finland", "FI255", "25.50", 1230, 6943, 13),
    ("FR", "Frankrig", "FR20", "20.00", 1240, 6944, 14),
]
OSS_HEADINGS = [(1200, "Salg til EU-forbrugere (OSS)", "credit"), (6940, "OSS-moms", "credit")]
JOURNALS = [
    # number, name, first voucher number, contra account for customer payments and finance vouchers
    (1, "Kassekladde", 1, 5820),
    (2, "Indbetalinger fra webshop", 10001, 5820),
    (3, "Udbetalinger fra betalingsformidler", 20001, 5830),
]


def seed(tenant: str) -> None:
    """Idempotent master data of a small Danish webshop company; the demo agreement also gets customers
    and products."""
    number = int(tenant)
    if number == DEMO_AGREEMENT:
        register_agreement(number, DEMO_COMPANY, DEMO_MODULES)
    else:
        register_agreement(
            number, {"name": f"Ny virksomhed ApS ({number})", "country": "Danmark"}, DEMO_MODULES
        )
    agreement = Agreement(number)
    if agreement.store.is_seeded():
        if agreement.get("product-groups", OSS_SETUP[0][6]) is None:  # seeded before the OSS master data
            _seed_oss(agreement)
            db.session.commit()
        return
    for n, name, kind, side, vat in ACCOUNTS:
        _put_account(agreement, n, name, kind, side, vat)
    for n, name in VAT_TYPES:
        agreement.put("vat-types", n, {"vatTypeNumber": n, "name": name})
    for code, name, rate, kind, account in VAT_ACCOUNTS:
        _put_vat_account(agreement, code, name, rate, kind, account)
    for n, name, supplier in VAT_ZONES:
        zone = {"vatZoneNumber": n, "name": name, "enabledForCustomer": True}
        if supplier:
            zone["enabledForSupplier"] = True
        agreement.put("vat-zones", n, zone)
    for n, name in LAYOUTS:
        agreement.put("layouts", n, {"layoutNumber": n, "name": name})
    for n, name, kind, days in PAYMENT_TERMS:
        agreement.put(
            "payment-terms",
            n,
            {
                "paymentTermsNumber": n,
                "name": name,
                "paymentTermsType": kind,
                "daysOfCredit": days,
                "description": name,
            },
        )
    for n, name, account in CUSTOMER_GROUPS:
        agreement.put(
            "customer-groups",
            n,
            {
                "customerGroupNumber": n,
                "name": name,
                "account": {"accountNumber": account},
                "layout": {"layoutNumber": 19},
            },
        )
    for n, name in UNITS:
        agreement.put("units", n, {"unitNumber": n, "name": name})
    for code, name, iso in CURRENCIES:
        agreement.put("currencies", code, {"code": code, "name": name, "isoNumber": iso})
    for n, name, inventory, accounts in PRODUCT_GROUPS:
        _put_product_group(agreement, n, name, inventory, accounts)
    _seed_oss(agreement)
    for n, name, first, contra in JOURNALS:
        agreement.put(
            "journals",
            n,
            {
                "journalNumber": n,
                "name": name,
                "settings": {
                    "voucherNumbers": {"minimumVoucherNumber": first},
                    "contraAccounts": {
                        "customerPayments": {"accountNumber": contra},
                        "financeVouchers": {"accountNumber": contra},
                    },
                },
            },
        )
    this_year = date.today().year
    for year in (this_year - 1, this_year):
        agreement.put(
            "accounting-years",
            str(year),
            {"year": str(year), "fromDate": f"{year}-01-01", "toDate": f"{year}-12-31", "closed": False},
        )
    if number == DEMO_AGREEMENT:
        _seed_demo_documents(agreement)
    agreement.store.mark_seeded()
    db.session.commit()


def _put_account(agreement: Agreement, n: int, name: str, kind: str, side: str, vat: str | None) -> None:
    account = {
        "accountNumber": n,
        "accountType": kind,
        "balance": Decimal("0.00"),
        "debitCredit": side,
        "name": name,
    }
    if vat:
        account["vatAccount"] = {"vatCode": vat}
    agreement.put("accounts", n, account)


def _put_vat_account(agreement: Agreement, code: str, name: str, rate: str, kind: int, account: int) -> None:
    vat_type = {"vatTypeNumber": kind, "name": dict(VAT_TYPES)[kind]}
    document = {
        "vatCode": code,
        "name": name,
        "ratePercentage": Decimal(rate),
        "vatType": vat_type,
        "account": {"accountNumber": account},
    }
    agreement.put("vat-accounts", code, document)


def _put_product_group(agreement: Agreement, n: int, name: str, inventory: bool, accounts) -> None:
    group = {"productGroupNumber": n, "name": name, "salesAccountsByZone": list(accounts)}
    if inventory:
        group["inventoryEnabled"] = True
    agreement.put("product-groups", n, group)


def _seed_oss(agreement: Agreement) -> None:
    """The OSS accounts, VAT codes and product groups (OSS_SETUP); the caller commits."""
    for n, name, side in OSS_HEADINGS:
        _put_account(agreement, n, name, "heading", side, None)
    for _country, name, code, rate, sales, vat_account, group in OSS_SETUP:
        shown = format(Decimal(rate).normalize(), "f").replace(".", ",")
        _put_account(agreement, sales, f"Salg OSS {name}", "profitAndLoss", "credit", code)
        _put_account(agreement, vat_account, f"Skyldig OSS-moms {name}", "status", "credit", None)
        _put_vat_account(agreement, code, f"OSS-moms {name} {shown}%", rate, 1, vat_account)
        _put_product_group(agreement, group, f"OSS {name}", False, (1010, sales, 1030, 1040))


def _seed_demo_documents(agreement: Agreement) -> None:
    customers = [
        (
            1,
            "Café Havblik ApS",
            "Strandvejen 4",
            "8240",
            "Risskov",
            "Danmark",
            "ordre@havblik.dk",
            1,
            1,
            "35000038",
        ),
        (
            2,
            "Anna Jensen",
            "Søndergade 2, 2. th.",
            "5000",
            "Odense C",
            "Danmark",
            "anna.jensen@example.dk",
            1,
            1,
            None,
        ),
        (
            3,
            "Berliner Laden GmbH",
            "Torstraße 101",
            "10119",
            "Berlin",
            "Tyskland",
            "einkauf@berliner-laden.de",
            2,
            2,
            None,
        ),
    ]
    for n, name, address, zip_, city, country, email, group, zone, cvr in customers:
        customer = {
            "customerNumber": n,
            "name": name,
            "address": address,
            "zip": zip_,
            "city": city,
            "country": country,
            "email": email,
            "currency": "DKK" if zone == 1 else "EUR",
            "customerGroup": {"customerGroupNumber": group},
            "paymentTerms": {"paymentTermsNumber": 1 if zone == 1 else 5},
            "vatZone": {"vatZoneNumber": zone},
            "layout": {"layoutNumber": 19},
            "balance": Decimal("0.00"),
            "dueAmount": Decimal("0.00"),
            "lastUpdated": _now(),
        }
        if cvr:
            customer["corporateIdentificationNumber"] = cvr
        if zone == 2:
            customer["vatNumber"] = "DE811907980"
        agreement.put("customers", n, customer)
    agreement.next("customer", 3)
    for number, name, price, group, stock in (
        ("KRUS-01", "Keramikkrus, blå", "79.96", 1, "24"),
        ("PLAID-ULD", "Plaid i uld, 130x170", "479.20", 1, "8"),
        ("FRAGT", "Fragt", "39.20", 2, None),
        ("GAVEINDP", "Gaveindpakning", "16.00", 3, None),
    ):
        product = {
            "productNumber": number,
            "name": name,
            "salesPrice": Decimal(price),
            "productGroup": {"productGroupNumber": group},
            "unit": {"unitNumber": 1},
            "lastUpdated": _now(),
        }
        if stock is not None:
            product["inventory"] = _inventory(Decimal(stock))
        agreement.put("products", number, product)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _inventory(in_stock: Decimal) -> dict:
    return {
        "available": in_stock,
        "inStock": in_stock,
        "orderedByCustomers": Decimal("0.00"),
        "orderedFromSuppliers": Decimal("0.00"),
        "packageVolume": Decimal("0.00"),
        "grossWeight": Decimal("0.00"),
        "netWeight": Decimal("0.00"),
        "inventoryLastUpdated": today(),
        "recommendedCostPrice": Decimal("0.00"),
    }


# --- the API: self and master data --------------------------------------------------------------------------


@bp.get("/self")
def get_self():
    info = g.eco.info
    body = {
        "agreementNumber": g.eco.number,
        "agreementType": {"agreementTypeNumber": 1, "name": "denmark"},
        "userName": "Bogbro Sandbox",
        "company": info.get("company", {}),
        "application": {
            "appNumber": 1,
            "name": "Bogbro",
            "appPublicToken": "demo-public",
            "created": "2026-01-01",
            "requiredRoles": [{"roleNumber": 1, "name": "SuperUser"}],
            "self": f"{g.eco_base}/apps/1",
        },
        "settings": {"baseCurrency": "DKK", "internationalLedger": "false"},
        "modules": info.get("modules", []),
        "self": f"{g.eco_base}/self",
    }
    return json_response(link(body, g.eco_base))


def _master(collection_name, filterable=frozenset(), default_sort=None, shape=lambda d: d):
    return collection([shape(d) for d in g.eco.all(collection_name)], set(filterable), default_sort)


def _one(collection_name, key, shape=lambda d: d):
    document = g.eco.get(collection_name, key)
    if document is None:
        raise not_found()
    return json_response(link(shape(document), g.eco_base))


def _account(document):
    out = dict(document)
    out["accountingYears"] = f"{g.eco_base}/accounts/{document['accountNumber']}/accounting-years"
    return out


def _product_group(document):
    out = {k: v for k, v in document.items() if k != "salesAccountsByZone"}
    n = document["productGroupNumber"]
    out["salesAccounts"] = f"{g.eco_base}/product-groups/{n}/sales-accounts"
    out["products"] = f"{g.eco_base}/product-groups/{n}/products"
    return out


def _journal(document):
    out = dict(document)
    n = document["journalNumber"]
    out["vouchers"] = f"{g.eco_base}/journals/{n}/vouchers"
    out["entries"] = f"{g.eco_base}/journals/{n}/entries"
    out["templates"] = {
        "financeVoucher": f"{g.eco_base}/journals/{n}/templates/financeVoucher",
        "manualCustomerInvoice": f"{g.eco_base}/journals/{n}/templates/manualCustomerInvoice",
        "self": f"{g.eco_base}/journals/{n}/templates",
    }
    return out


def _accounting_year(document):
    out = {"closed": False} | {k: v for k, v in document.items() if not k.startswith("_")}
    y = document["year"]
    for name in ("periods", "entries", "totals", "vouchers"):
        out[name] = f"{g.eco_base}/accounting-years/{y}/{name}"
    return out


ACCOUNT_FILTERS = {
    "accountNumber",
    "accountType",
    "balance",
    "barred",
    "blockDirectEntries",
    "debitCredit",
    "name",
}


@bp.get("/accounts")
def list_accounts():
    return _master("accounts", ACCOUNT_FILTERS, "accountNumber", _account)


@bp.get("/accounts/<int:n>")
def get_account(n):
    return _one("accounts", n, _account)


@bp.get("/layouts")
def list_layouts():
    return _master("layouts")


@bp.get("/layouts/<int:n>")
def get_layout(n):
    return _one("layouts", n)


@bp.get("/payment-terms")
def list_payment_terms():
    return _master("payment-terms")


@bp.get("/payment-terms/<int:n>")
def get_payment_terms(n):
    return _one("payment-terms", n)


@bp.get("/vat-zones")
def list_vat_zones():
    return _master("vat-zones")


@bp.get("/vat-zones/<int:n>")
def get_vat_zone(n):
    return _one("vat-zones", n)


@bp.get("/vat-accounts")
def list_vat_accounts():
    return _master("vat-accounts")


@bp.get("/vat-accounts/<code>")
def get_vat_account(code):
    return _one("vat-accounts", code)


@bp.get("/vat-types")
def list_vat_types():
    return _master("vat-types")


@bp.get("/units")
def list_units():
    return _master("units")


@bp.get("/currencies")
def list_currencies():
    return _master("currencies")


@bp.get("/customer-groups")
def list_customer_groups():
    filterable = {"customerGroupNumber", "name", "account.accountNumber"}
    return _master("customer-groups", filterable)


@bp.get("/product-groups")
def list_product_groups():
    return _master("product-groups", shape=_product_group)


@bp.get("/product-groups/<int:n>")
def get_product_group(n):
    return _one("product-groups", n, _product_group)


@bp.get("/product-groups/<int:n>/sales-accounts")
def list_sales_accounts(n):
    group = g.eco.get("product-groups", n)
    if group is None:
        raise not_found()
    items = []
    for zone_number, account_number in enumerate(group["salesAccountsByZone"], start=1):
        zone, account = g.eco.get("vat-zones", zone_number), g.eco.get("accounts", account_number)
        items.append({"salesAccount": _account(account), "vatZone": zone})
    return collection(items, set())


@bp.get("/journals")
def list_journals():
    return _master("journals", {"name", "journalNumber"}, "journalNumber", _journal)


@bp.get("/journals/<int:n>")
def get_journal(n):
    return _one("journals", n, _journal)


@bp.get("/accounting-years")
def list_accounting_years():
    return _master("accounting-years", {"fromDate", "toDate", "year"}, "year", _accounting_year)


@bp.get("/accounting-years/<year>")
def get_accounting_year(year):
    return _one("accounting-years", decode_key(year), _accounting_year)


# --- customers ----------------------------------------------------------------------------------------------

CUSTOMER_FILTERS = {
    "address", "balance", "barred", "city", "corporateIdentificationNumber", "country", "creditLimit",
    "currency", "customerNumber", "ean", "email", "lastUpdated", "name", "publicEntryNumber",
    "telephoneAndFaxNumber", "mobilePhone", "vatNumber", "website", "zip",
    "customerGroup.customerGroupNumber",
}  # fmt: skip
CUSTOMER_TEXT = {
    "address": 510, "zip": 30, "city": 50, "country": 50, "email": 255, "corporateIdentificationNumber": 40,
    "pNumber": 10, "vatNumber": 20, "ean": 13, "publicEntryNumber": 50, "telephoneAndFaxNumber": 255,
    "mobilePhone": 50, "website": 255,
}  # fmt: skip
CUSTOMER_REFS = {
    "customerGroup": ("customerGroupNumber", "customer-groups", True),
    "paymentTerms": ("paymentTermsNumber", "payment-terms", True),
    "vatZone": ("vatZoneNumber", "vat-zones", True),
    "layout": ("layoutNumber", "layouts", False),
    "salesPerson": ("employeeNumber", "employees", False),
}
CUSTOMER_READ_ONLY = {"balance", "dueAmount", "lastUpdated", "self", "contacts", "deliveryLocations"}
CUSTOMER_READ_ONLY |= {"templates", "totals", "invoices"}


def _customer_out(document):
    out = dict(document)
    n = document["customerNumber"]
    base = f"{g.eco_base}/customers/{n}"
    out["contacts"] = f"{base}/contacts"
    out["deliveryLocations"] = f"{base}/delivery-locations"
    out["templates"] = {
        "invoice": f"{base}/templates/invoice",
        "invoiceLine": f"{base}/templates/invoiceline",
        "self": f"{base}/templates",
    }
    out["totals"] = {
        "drafts": f"{base}/totals/drafts",
        "booked": f"{base}/totals/booked",
        "self": f"{base}/totals",
    }
    out["invoices"] = {
        "drafts": f"{base}/invoices/drafts",
        "booked": f"{base}/invoices/booked",
        "self": f"{base}/invoices",
    }
    return out


def _validate_customer(body, number=None) -> dict:
    problems = Problems()
    if not isinstance(body, dict):
        raise bad_request("The request body must be a customer document.", "Send a JSON object.")
    check_nulls(problems, body)
    check_text(problems, ("name",), body.get("name"), 255, required=True)
    currency = body.get("currency")
    if currency is None:
        problems.add(("currency",), E_REQUIRED, "Property currency is required.")
    elif g.eco.get("currencies", str(currency).upper()) is None:
        problems.add(
            ("currency",),
            E_NOT_FOUND,
            "currency does not exist.",
            currency,
            "Find a list of currencies at https://restapi.e-conomic.com/currencies.",
        )
    for key, limit in CUSTOMER_TEXT.items():
        check_text(problems, (key,), body.get(key), limit)
    check_number(problems, ("creditLimit",), body.get("creditLimit"))
    refs = {}
    for key, (id_key, collection_name, required) in CUSTOMER_REFS.items():
        if key == "salesPerson":
            continue  # employees are not emulated
        refs[key] = check_ref(problems, (key,), body.get(key), id_key, collection_name, required)
    wanted = body.get("customerNumber") if number is None else number
    if wanted is not None and (not isinstance(wanted, int) or not 1 <= wanted <= 999999999):
        problems.add(
            ("customerNumber",), E_INVALID, "customerNumber must be between 1 and 999999999.", wanted
        )
    elif number is None and wanted is not None and g.eco.get("customers", wanted) is not None:
        problems.add(
            ("customerNumber",), E_EXISTS, "A customer with this customerNumber already exists.", wanted
        )
    problems.raise_if_any()
    document = {k: v for k, v in body.items() if k not in CUSTOMER_READ_ONLY and k not in CUSTOMER_REFS}
    document["currency"] = str(currency).upper()
    for key, (id_key, _, _) in CUSTOMER_REFS.items():
        if refs.get(key) is not None:
            document[key] = {id_key: refs[key]}
    for key in ("barred", "eInvoicingDisabledByDefault"):
        if not document.get(key):
            document.pop(key, None)  # false booleans are omitted
    return document


@bp.get("/customers")
def list_customers():
    return collection([_customer_out(c) for c in g.eco.all("customers")], CUSTOMER_FILTERS, "customerNumber")


@bp.post("/customers")
def create_customer():
    document = _validate_customer(request_json())
    number = document.get("customerNumber")
    if number is None:
        number = g.eco.next("customer", 1)
        while g.eco.get("customers", number) is not None:
            number = g.eco.next("customer", 1)
    document = {
        "customerNumber": number,
        **document,
        "balance": Decimal("0.00"),
        "dueAmount": Decimal("0.00"),
    }
    document["lastUpdated"] = _now()
    g.eco.put("customers", number, document)
    db.session.commit()
    return created(_customer_out(document), f"customers/{number}")


@bp.get("/customers/<int:n>")
def get_customer(n):
    return _one("customers", n, _customer_out)


@bp.put("/customers/<int:n>")
def replace_customer(n):
    current = g.eco.get("customers", n)
    if current is None:
        raise not_found()
    document = _validate_customer(request_json(), number=n)
    document.update({"customerNumber": n, "balance": current["balance"], "dueAmount": current["dueAmount"]})
    document["lastUpdated"] = _now()
    g.eco.put("customers", n, document)
    db.session.commit()
    return json_response(link(_customer_out(document), g.eco_base))


@bp.delete("/customers/<int:n>")
def delete_customer(n):
    if not g.eco.delete("customers", n):
        raise not_found()
    db.session.commit()
    return Response(status=204)


# --- products -----------------------------------------------------------------------------------------------

PRODUCT_FILTERS = {
    "productNumber", "description", "name", "costPrice", "recommendedPrice", "salesPrice", "barCode",
    "barred", "lastUpdated", "unit.unitNumber", "productGroup.productGroupNumber",
}  # fmt: skip


def _product_out(document):
    out = dict(document)
    group = g.eco.get("product-groups", document["productGroup"]["productGroupNumber"])
    out["productGroup"] = _product_group(group)
    if "unit" in document:
        out["unit"] = g.eco.get("units", document["unit"]["unitNumber"])
    if out.get("inventory"):  # open orders reserve stock
        ordered = economic_orders.reserved(document["productNumber"])
        in_stock = Decimal(str(out["inventory"]["inStock"]))
        out["inventory"] = {
            **out["inventory"],
            "orderedByCustomers": ordered,
            "available": in_stock - ordered,
        }
    encoded = encode_key(document["productNumber"])
    out["invoices"] = {
        "drafts": f"{g.eco_base}/products/{encoded}/invoices/drafts",
        "booked": f"{g.eco_base}/products/{encoded}/invoices/booked",
    }
    return out


def _validate_product(body, number=None) -> dict:
    problems = Problems()
    if not isinstance(body, dict):
        raise bad_request("The request body must be a product document.", "Send a JSON object.")
    check_nulls(problems, body)
    check_text(problems, ("productNumber",), body.get("productNumber"), 25, required=True)
    check_text(problems, ("name",), body.get("name"), 300, required=True)
    check_text(problems, ("description",), body.get("description"), 500)
    check_text(problems, ("barCode",), body.get("barCode"), 50)
    for key in ("salesPrice", "costPrice", "recommendedPrice"):
        check_number(problems, (key,), body.get(key))
    group = check_ref(
        problems, ("productGroup",), body.get("productGroup"), "productGroupNumber", "product-groups"
    )
    unit = check_ref(problems, ("unit",), body.get("unit"), "unitNumber", "units", required=False)
    product_number = body.get("productNumber")
    if number is None and isinstance(product_number, str) and g.eco.get("products", product_number):
        problems.add(
            ("productNumber",), E_EXISTS, "A product with this productNumber already exists.", product_number
        )
    if number is not None and product_number != number:
        problems.add(
            ("productNumber",), E_INVALID, "productNumber must match the product's url.", product_number
        )
    problems.raise_if_any()
    document = {k: body[k] for k in ("productNumber", "name", "description", "barCode") if k in body}
    for key in ("salesPrice", "costPrice", "recommendedPrice"):
        if key in body:
            document[key] = Decimal(str(body[key]))
    if body.get("barred"):
        document["barred"] = True
    document["productGroup"] = {"productGroupNumber": group}
    if unit is not None:
        document["unit"] = {"unitNumber": unit}
    return document


def _with_inventory(document, current=None):
    """Products in an inventory-enabled group show read-only stock figures (inventory module on)."""
    group = g.eco.get("product-groups", document["productGroup"]["productGroupNumber"])
    if group.get("inventoryEnabled") and any(m["name"] == "Lager" for m in g.eco.info.get("modules", [])):
        document["inventory"] = (current or {}).get("inventory") or _inventory(Decimal("0.00"))
    return document


@bp.get("/products")
def list_products():
    return collection([_product_out(p) for p in g.eco.all("products")], PRODUCT_FILTERS, "productNumber")


@bp.post("/products")
def create_product():
    document = _with_inventory(_validate_product(request_json()))
    document["lastUpdated"] = _now()
    g.eco.put("products", document["productNumber"], document)
    db.session.commit()
    return created(_product_out(document), f"products/{encode_key(document['productNumber'])}")


@bp.get("/products/<path:encoded>")
def get_product(encoded):
    return _one("products", decode_key(encoded), _product_out)


@bp.put("/products/<path:encoded>")
def replace_product(encoded):
    number = decode_key(encoded)
    current = g.eco.get("products", number)
    if current is None:
        raise not_found()
    document = _with_inventory(_validate_product(request_json(), number=number), current)
    document["lastUpdated"] = _now()
    g.eco.put("products", number, document)
    db.session.commit()
    return json_response(link(_product_out(document), g.eco_base))


@bp.delete("/products/<path:encoded>")
def delete_product(encoded):
    if not g.eco.delete("products", decode_key(encoded)):
        raise not_found()
    db.session.commit()
    return Response(status=204)


# --- draft and booked invoices ------------------------------------------------------------------------------

DRAFT_FILTERS = {
    "draftInvoiceNumber", "date", "currency", "exchangeRate", "paymentTerms.paymentTermsNumber",
    "customer.customerNumber", "recipient.name", "recipient.address", "recipient.zip", "recipient.city",
    "recipient.country", "recipient.ean", "recipient.publicEntryNumber",
    "deliveryLocation.deliveryLocationNumber",
    "delivery.address", "delivery.zip", "delivery.city", "delivery.country", "delivery.deliveryTerms",
    "delivery.deliveryDate", "notes.heading", "notes.textLine1", "notes.textLine2",
    "references.salesPerson.employeeNumber", "references.vendorReference.employeeNumber", "references.other",
    "lastUpdated", "soap.currentInvoiceHandle.id",
}  # fmt: skip
BOOKED_FILTERS = (DRAFT_FILTERS - {"draftInvoiceNumber", "lastUpdated", "soap.currentInvoiceHandle.id"}) | {
    "bookedInvoiceNumber",
    "recipient.vatZone.vatZoneNumber",
}
RECIPIENT_TEXT = {
    "name": 250,
    "address": 250,
    "zip": 50,
    "city": 250,
    "country": 50,
    "ean": 13,
    "publicEntryNumber": 40,
}
DELIVERY_TEXT = {"address": 255, "zip": 30, "city": 50, "country": 50, "deliveryTerms": 100}
NOTES_TEXT = {"heading": 250, "textLine1": 1000, "textLine2": 1000}


def vat_rate(product_group: int, zone: int) -> tuple[str | None, Decimal]:
    """VAT code and rate of the sales account the product group uses in the VAT zone."""
    group = g.eco.get("product-groups", product_group)
    accounts = group["salesAccountsByZone"]
    account = g.eco.get("accounts", accounts[min(zone, len(accounts)) - 1])
    code = (account.get("vatAccount") or {}).get("vatCode")
    if not code:
        return None, Decimal("0")
    return code, Decimal(str(g.eco.get("vat-accounts", code)["ratePercentage"]))


def _due_date(day: date, terms: dict, given: str | None) -> str:
    kind, days = terms["paymentTermsType"], terms.get("daysOfCredit", 0)
    if kind == "dueDate" and given:
        return given
    if kind == "invoiceMonth":
        end_of_month = (day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        return (end_of_month + timedelta(days=days)).isoformat()
    if kind in ("paidInCash", "prepaid", "creditcard"):
        return day.isoformat()
    return (day + timedelta(days=days)).isoformat()


def _validate_invoice(body) -> dict:
    """Validate a draft invoice document and compute its totals the way e-conomic does."""
    problems = Problems()
    if not isinstance(body, dict):
        raise bad_request("The request body must be a draft invoice document.", "Send a JSON object.")
    check_nulls(problems, body)
    day = parse_date(problems, ("date",), body.get("date"))
    if day is not None and accounting_year_for(day) is None:
        problems.add(("date",), E_NOT_OPEN, "date must be within an open accounting year.", body["date"])
    currency = body.get("currency")
    if currency is None:
        problems.add(("currency",), E_REQUIRED, "Property currency is required.")
    elif g.eco.get("currencies", str(currency).upper()) is None:
        problems.add(
            ("currency",),
            E_NOT_FOUND,
            "currency does not exist.",
            currency,
            "Find a list of currencies at https://restapi.e-conomic.com/currencies.",
        )
        currency = None
    check_number(problems, ("exchangeRate",), body.get("exchangeRate"), places=6)
    layout = check_ref(problems, ("layout",), body.get("layout"), "layoutNumber", "layouts")
    terms = check_ref(
        problems, ("paymentTerms",), body.get("paymentTerms"), "paymentTermsNumber", "payment-terms"
    )
    customer = check_ref(problems, ("customer",), body.get("customer"), "customerNumber", "customers")
    recipient = body.get("recipient")
    zone = None
    if not isinstance(recipient, dict):
        problems.add(("recipient",), E_REQUIRED, "Property recipient is required.")
        recipient = {}
    else:
        for key, limit in RECIPIENT_TEXT.items():
            check_text(problems, ("recipient", key), recipient.get(key), limit, required=key == "name")
        zone = check_ref(
            problems, ("recipient", "vatZone"), recipient.get("vatZone"), "vatZoneNumber", "vat-zones"
        )
    for key, limit in DELIVERY_TEXT.items():
        check_text(problems, ("delivery", key), (body.get("delivery") or {}).get(key), limit)
    for key, limit in NOTES_TEXT.items():
        check_text(problems, ("notes", key), (body.get("notes") or {}).get(key), limit)
    references = body.get("references") or {}
    check_text(problems, ("references", "other"), references.get("other"), 250)

    lines = []
    for index, line in enumerate(body.get("lines") or []):
        lines.append(_validate_line(problems, index, line))
    problems.raise_if_any()

    currency = str(currency).upper()
    rate = body.get("exchangeRate")
    rate = Decimal(str(rate)) if rate is not None else Decimal(EXCHANGE_RATES.get(currency, "100"))
    terms_document = g.eco.get("payment-terms", terms)
    zone_document = g.eco.get("vat-zones", zone)
    document = {
        "date": day.isoformat(),
        "currency": currency,
        "exchangeRate": rate,
        "dueDate": _due_date(day, terms_document, body.get("dueDate")),
        "paymentTerms": {
            k: terms_document[k] for k in ("paymentTermsNumber", "daysOfCredit", "name", "paymentTermsType")
        },
        "customer": {"customerNumber": customer},
        "recipient": {
            **{k: v for k, v in recipient.items() if k in RECIPIENT_TEXT},
            "vatZone": zone_document,
        },
        "layout": {"layoutNumber": layout},
    }
    for key in ("delivery", "notes"):
        if body.get(key):
            document[key] = {k: v for k, v in body[key].items() if v not in ("", None)}
    if references.get("other"):
        document["references"] = {"other": references["other"]}
    document["lines"] = lines
    return _totals(document)


def _validate_line(problems, index, line) -> dict:
    path = ("lines", index)
    if not isinstance(line, dict):
        problems.add(path, E_INVALID, "A line must be an object.")
        return {}
    product = None
    if "product" in line:
        number = reference(line["product"], "productNumber")
        if number is None:
            problems.add(
                (*path, "product"),
                E_NO_IDENTIFIER,
                "No identifiers present on product. Please include either a self link or a productNumber.",
                hint="Find a list of resources at https://restapi.e-conomic.com/products.",
            )
        else:
            product = g.eco.get("products", number)
            if product is None:
                problems.add(
                    (*path, "product"),
                    E_NOT_FOUND,
                    "product does not exist.",
                    number,
                    "Find a list of resources at https://restapi.e-conomic.com/products.",
                )
    elif line.get("quantity") is not None or line.get("unitNetPrice") is not None:
        # Guess: a priced line must name a product (which decides account and VAT).
        problems.add(
            (*path, "product"),
            E_NO_IDENTIFIER,
            "No identifiers present on product. Please include either a self link or a productNumber.",
            hint="Find a list of resources at https://restapi.e-conomic.com/products.",
        )
    check_text(problems, (*path, "description"), line.get("description"), 2500, required="product" in line)
    if "product" in line and line.get("quantity") is None:
        problems.add(
            (*path, "quantity"), E_QUANTITY, "Property quantity must have a value when product is set."
        )
    for key in ("quantity", "unitNetPrice", "discountPercentage", "unitCostPrice"):
        check_number(problems, (*path, key), line.get(key))
    unit = check_ref(problems, (*path, "unit"), line.get("unit"), "unitNumber", "units", required=False)
    out = {"lineNumber": index + 1, "sortKey": line.get("sortKey", index + 1)}
    if line.get("description"):
        out["description"] = line["description"]
    if product is None:
        return out  # a text line
    unit = unit or (product.get("unit") or {}).get("unitNumber")
    if unit:
        out["unit"] = g.eco.get("units", unit)
    out["product"] = {"productNumber": product["productNumber"]}
    out["quantity"] = Decimal(str(line.get("quantity") or 0))
    out["unitNetPrice"] = Decimal(str(line.get("unitNetPrice", product.get("salesPrice", 0))))
    out["discountPercentage"] = Decimal(str(line.get("discountPercentage", 0)))
    out["unitCostPrice"] = Decimal(str(line.get("unitCostPrice", product.get("costPrice", 0))))
    out["productGroupNumber"] = product["productGroup"]["productGroupNumber"]  # internal, not rendered
    return out


def _totals(document: dict) -> dict:
    """Each line rounded to 2 decimals (half up); VAT per rate on the summed net; amounts in base currency
    at exchangeRate per 100 units."""
    zone = document["recipient"]["vatZone"]["vatZoneNumber"]
    net_by_rate: dict[Decimal, Decimal] = {}
    cost = Decimal("0")
    for line in document["lines"]:
        if "product" not in line:
            continue  # a text line
        gross_line = line["quantity"] * line["unitNetPrice"]
        total = money(gross_line * (1 - line["discountPercentage"] / 100))
        line["totalNetAmount"] = total
        _, rate = vat_rate(line["productGroupNumber"], zone)
        line["vatRate"] = rate
        net_by_rate[rate] = net_by_rate.get(rate, Decimal("0")) + total
        cost += line["quantity"] * line["unitCostPrice"]
    net = sum(net_by_rate.values(), Decimal("0.00"))
    vat = sum((money(amount * rate / 100) for rate, amount in net_by_rate.items()), Decimal("0.00"))
    rate = document["exchangeRate"]
    net_base, gross_base, cost_base = money(net * rate / 100), money((net + vat) * rate / 100), money(cost)
    margin = net_base - cost_base
    document.update(
        {
            "netAmount": money(net),
            "netAmountInBaseCurrency": net_base,
            "grossAmount": money(net + vat),
            "grossAmountInBaseCurrency": gross_base,
            "marginInBaseCurrency": margin,
            "marginPercentage": money(margin * 100 / net_base) if net_base else Decimal("0.00"),
            "vatAmount": money(vat),
            "roundingAmount": Decimal("0.00"),
            "costPriceInBaseCurrency": cost_base,
        }
    )
    return document


INTERNAL_LINE_KEYS = {"productGroupNumber", "vatRate"}


def public_lines(document: dict) -> list[dict]:
    """A draft's (or order's) lines as e-conomic shows them: without what the sandbox keeps for itself."""
    return [{k: v for k, v in line.items() if k not in INTERNAL_LINE_KEYS} for line in document["lines"]]


def _draft_out(document):
    out = {k: v for k, v in document.items() if k != "lines"}
    n = document["draftInvoiceNumber"]
    out["soap"] = {"currentInvoiceHandle": {"id": n}}
    out["templates"] = {
        "bookingInstructions": f"{g.eco_base}/invoices/drafts/{n}/templates/booking-instructions",
        "self": f"{g.eco_base}/invoices/drafts/{n}/templates",
    }
    out["pdf"] = {"download": f"{g.eco_base}/invoices/drafts/{n}/pdf"}
    out["lines"] = public_lines(document)
    return out


def _booked_out(document):
    out = {k: v for k, v in document.items() if k != "lines"}
    n = document["bookedInvoiceNumber"]
    out["pdf"] = {"download": f"{g.eco_base}/invoices/booked/{n}/pdf"}
    out["lines"] = [
        {k: v for k, v in line.items() if k != "productGroupNumber"} for line in document["lines"]
    ]
    out["sent"] = f"{g.eco_base}/invoices/booked/{n}/sent"
    return out


@bp.get("/invoices/drafts")
def list_drafts():
    drafts = [_draft_out(d) for d in g.eco.all("drafts")]
    return collection(drafts, DRAFT_FILTERS, "draftInvoiceNumber")


@bp.post("/invoices/drafts")
def create_draft():
    document = _validate_invoice(request_json())
    number = g.eco.next("draftInvoice", 1)
    document = {"draftInvoiceNumber": number, **document, "lastUpdated": _now()}
    g.eco.put("drafts", number, document)
    economic_orders.archive_upgraded(document)
    db.session.commit()
    return created(_draft_out(document), f"invoices/drafts/{number}")


@bp.get("/invoices/drafts/<int:n>")
def get_draft(n):
    return _one("drafts", n, _draft_out)


@bp.put("/invoices/drafts/<int:n>")
def replace_draft(n):
    if g.eco.get("drafts", n) is None:
        raise not_found()
    document = {"draftInvoiceNumber": n, **_validate_invoice(request_json()), "lastUpdated": _now()}
    g.eco.put("drafts", n, document)
    db.session.commit()
    return json_response(link(_draft_out(document), g.eco_base))


@bp.delete("/invoices/drafts/<int:n>")
def delete_draft(n):
    # The answer e-conomic/slate _invoices.md shows for DELETE /invoices/drafts/:draftInvoiceNumber
    if not g.eco.delete("drafts", n):
        raise not_found()
    db.session.commit()
    deleted = {"draftInvoiceNumber": n, "self": f"{g.eco_base}/invoices/drafts/{n}"}
    return json_response({"message": "Deleted invoice.", "deletedCount": 1, "deletedItems": [deleted]})


@bp.get("/invoices/booked")
def list_booked():
    booked = [_booked_out(d) for d in g.eco.all("booked")]
    return collection(booked, BOOKED_FILTERS, "bookedInvoiceNumber")


@bp.get("/invoices/booked/<int:n>")
def get_booked(n):
    return _one("booked", n, _booked_out)


def _pdf_response(document: dict, number: int, draft: bool) -> Response:
    gross = document.get("grossAmount", 0)
    kind = "Kladde" if draft else ("Kreditnota" if money(gross) < 0 else "Faktura")
    name = (document.get("recipient") or {}).get("name", "")
    body = invoice_pdf("e-conomic", kind, number, gross, document.get("currency", "DKK"), name)
    return Response(body, mimetype="application/pdf")


@bp.get("/invoices/booked/<int:n>/pdf")
def get_booked_pdf(n):
    """The booked invoice (or credit note: a booked invoice with negative amounts) as PDF — the address
    the booked invoice's `pdf.download` names."""
    document = g.eco.get("booked", n)
    if document is None:
        raise not_found()
    return _pdf_response(document, n, draft=False)


@bp.get("/invoices/drafts/<int:n>/pdf")
def get_draft_pdf(n):
    document = g.eco.get("drafts", n)
    if document is None:
        raise not_found()
    return _pdf_response(document, n, draft=True)


@bp.post("/invoices/booked")
def book_draft():
    """Book a draft: it disappears, a booked invoice with its own number appears, the ledger is posted."""
    body = request_json()
    problems = Problems()
    if not isinstance(body, dict):
        raise bad_request("The request body must be a booking instruction.", 'Send {"draftInvoice": {...}}.')
    number = reference(body.get("draftInvoice"), "draftInvoiceNumber")
    draft = None
    if number is None:
        problems.add(("draftInvoice",), E_REQUIRED, "Property draftInvoice is required.")
    else:
        draft = g.eco.get("drafts", number)
        if draft is None:
            problems.add(
                ("draftInvoice",),
                E_NOT_FOUND,
                "draftInvoice does not exist.",
                number,
                "Find a list of resources at https://restapi.e-conomic.com/invoices/drafts.",
            )
    send_by = body.get("sendBy")
    if send_by is not None and str(send_by).lower() not in ("none", "ean", "email"):
        problems.add(("sendBy",), E_INVALID, "sendBy must be one of none, EAN, Email.", send_by)
    wanted = body.get("bookWithNumber")
    if wanted is not None and (not isinstance(wanted, int) or wanted < 1 or g.eco.get("booked", wanted)):
        problems.add(("bookWithNumber",), E_EXISTS, "bookWithNumber is already used or not valid.", wanted)
    if draft is not None:
        if str(send_by).lower() == "ean" and not draft["recipient"].get("ean"):
            problems.add(
                ("sendBy",), E_INVALID, "The recipient has no EAN number to send the invoice to.", send_by
            )
        customer = g.eco.get("customers", draft["customer"]["customerNumber"])
        if str(send_by).lower() == "email" and not (customer or {}).get("email"):
            problems.add(
                ("sendBy",), E_INVALID, "The customer has no e-mail address to send the invoice to.", send_by
            )
        if accounting_year_for(date.fromisoformat(draft["date"])) is None:
            problems.add(
                ("draftInvoice",), E_NOT_OPEN, "The invoice date is not within an open accounting year."
            )
    problems.raise_if_any()

    booked_number = wanted or g.eco.next("bookedInvoice", 1)
    while wanted is None and g.eco.get("booked", booked_number) is not None:
        booked_number = g.eco.next("bookedInvoice", 1)
    booked = {
        k: v
        for k, v in draft.items()
        if k
        not in (
            "draftInvoiceNumber",
            "lastUpdated",
            "marginInBaseCurrency",
            "marginPercentage",
            "costPriceInBaseCurrency",
        )
    }
    booked = {"bookedInvoiceNumber": booked_number, **booked}
    for line in booked["lines"]:
        if "product" in line:
            line["vatAmount"] = money(line["totalNetAmount"] * line["vatRate"] / 100)
    booked["remainder"] = booked["grossAmount"]
    booked["remainderInBaseCurrency"] = booked["grossAmountInBaseCurrency"]
    g.eco.put("booked", booked_number, booked)
    g.eco.delete("drafts", number)
    post_invoice(booked)
    db.session.commit()
    return created(_booked_out(booked), f"invoices/booked/{booked_number}")


# --- the ledger ---------------------------------------------------------------------------------------------


def post_entry(year: str, entry: dict) -> dict:
    number = g.eco.next("entry", 1)
    entry = {"entryNumber": number, **entry}
    g.eco.put("entries", number, {**entry, "accountingYear": year})
    account = g.eco.get("accounts", entry["account"]["accountNumber"])
    account["balance"] = money(Decimal(str(account.get("balance", 0))) + entry["amountInBaseCurrency"])
    g.eco.put("accounts", account["accountNumber"], account)
    return entry


def debtor_account(customer_number: int) -> int:
    customer = g.eco.get("customers", customer_number)
    return g.eco.get("customer-groups", customer["customerGroup"]["customerGroupNumber"])["account"][
        "accountNumber"
    ]


def post_invoice(booked: dict) -> None:
    """Debtor +gross, each sales account -net, the VAT account -VAT; stock and the customer balance move."""
    day = booked["date"]
    year = accounting_year_for(date.fromisoformat(day))["year"]
    rate = booked["exchangeRate"]
    customer_number = booked["customer"]["customerNumber"]
    text = f"Faktura nr. {booked['bookedInvoiceNumber']}"
    common = {
        "currency": booked["currency"],
        "date": day,
        "text": text,
        "voucherNumber": booked["bookedInvoiceNumber"],
    }
    common["entryType"] = "customerInvoice"
    common["bookedInvoice"] = {"bookedInvoiceNumber": booked["bookedInvoiceNumber"]}
    gross = booked["grossAmount"]
    post_entry(
        year,
        {
            **common,
            "account": {"accountNumber": debtor_account(customer_number)},
            "customer": {"customerNumber": customer_number},
            "amount": gross,
            "amountInBaseCurrency": booked["grossAmountInBaseCurrency"],
            "remainder": gross,
            "remainderInBaseCurrency": booked["grossAmountInBaseCurrency"],
        },
    )
    zone = booked["recipient"]["vatZone"]["vatZoneNumber"]
    by_account: dict[int, Decimal] = {}
    vat_by_code: dict[str, Decimal] = {}
    for line in [line for line in booked["lines"] if "product" in line]:
        group = g.eco.get("product-groups", line["productGroupNumber"])
        accounts = group["salesAccountsByZone"]
        account = accounts[min(zone, len(accounts)) - 1]
        by_account[account] = by_account.get(account, Decimal("0")) + line["totalNetAmount"]
        code, _ = vat_rate(line["productGroupNumber"], zone)
        if code:
            vat_by_code[code] = vat_by_code.get(code, Decimal("0")) + line["totalNetAmount"]
    for account, amount in by_account.items():
        post_entry(
            year,
            {
                **common,
                "account": {"accountNumber": account},
                "amount": -amount,
                "amountInBaseCurrency": -money(amount * rate / 100),
            },
        )
    vat_left = booked["vatAmount"]
    for n, (code, net) in enumerate(vat_by_code.items(), start=1):
        vat_account = g.eco.get("vat-accounts", code)
        amount = (
            vat_left
            if n == len(vat_by_code)
            else money(net * Decimal(str(vat_account["ratePercentage"])) / 100)
        )
        vat_left -= amount
        entry = {**common, "account": vat_account["account"], "vatAccount": {"vatCode": code}}
        post_entry(year, {**entry, "amount": -amount, "amountInBaseCurrency": -money(amount * rate / 100)})
    customer = g.eco.get("customers", customer_number)
    customer["balance"] = money(
        Decimal(str(customer.get("balance", 0))) + booked["grossAmountInBaseCurrency"]
    )
    customer["dueAmount"] = customer["balance"]
    g.eco.put("customers", customer_number, customer)
    for line in [line for line in booked["lines"] if "product" in line]:
        product = g.eco.get("products", line["product"]["productNumber"])
        if product and product.get("inventory"):
            for key in ("inStock", "available"):
                product["inventory"][key] = money(Decimal(str(product["inventory"][key])) - line["quantity"])
            g.eco.put("products", product["productNumber"], product)


ENTRY_FILTERS = {
    "amount", "amountInBaseCurrency", "currency", "date", "dueDate", "entryNumber", "text", "entryType",
    "customer.customerNumber", "voucherNumber", "remainder", "remainderInBaseCurrency",
}  # fmt: skip


@bp.get("/accounting-years/<year>/entries")
def list_year_entries(year):
    year = decode_key(year)
    if g.eco.get("accounting-years", year) is None:
        raise not_found()
    entries = []
    for entry in g.eco.all("entries"):
        if entry.pop("accountingYear") == year:
            entry["self"] = f"{g.eco_base}/accounting-years/{year}/entries/{entry['entryNumber']}"
            entries.append(entry)
    return collection(entries, ENTRY_FILTERS, "entryNumber")


# --- journals and vouchers (kassekladde) --------------------------------------------------------------------

ENTRY_TYPES = {
    "financeVouchers": "financeVoucher",
    "customerPayments": "customerPayment",
    "manualCustomerInvoices": "manualCustomerInvoice",
    "supplierInvoices": "supplierInvoice",
    "supplierPayments": "supplierPayment",
}
JOURNAL_ENTRY_FILTERS = {
    "account.accountNumber", "customer.customerNumber", "text", "amount", "contraAccount.accountNumber",
    "currency.code", "date", "exchangeRate", "entryType", "voucher.voucherNumber", "amountDefaultCurrency",
    "journalEntryNumber",
}  # fmt: skip


def _journal_or_404(n) -> dict:
    journal = g.eco.get("journals", n)
    if journal is None:
        raise not_found()
    return journal


def journal_entries(n: int) -> list[dict]:
    return [e for e in g.eco.all("journal-entries") if e["journal"]["journalNumber"] == n]


def _entry_out(entry: dict) -> dict:
    out = dict(entry)
    j = entry["journal"]["journalNumber"]
    voucher = entry["voucher"]
    year, number = voucher["accountingYear"]["year"], voucher["voucherNumber"]
    out["voucher"] = {**voucher, "self": f"{g.eco_base}/journals/{j}/vouchers/{year}-{number}"}
    out["self"] = f"{g.eco_base}/journals/{j}/entries/{entry['journalEntryNumber']}"
    return out


def _vouchers_of(entries: list[dict]) -> list[dict]:
    vouchers: dict[tuple, dict] = {}
    for entry in entries:
        voucher = entry["voucher"]
        j = entry["journal"]["journalNumber"]
        year, number = voucher["accountingYear"]["year"], voucher["voucherNumber"]
        document = vouchers.setdefault(
            (year, number),
            {
                "accountingYear": {"year": year},
                "journal": {"journalNumber": j},
                "entries": {},
                "voucherNumber": number,
                "self": f"{g.eco_base}/journals/{j}/vouchers/{year}-{number}",
            },
        )
        kind = next(k for k, v in ENTRY_TYPES.items() if v == entry["entryType"])
        document["entries"].setdefault(kind, []).append(_entry_out(entry))
    return list(vouchers.values())


@bp.get("/journals/<int:n>/entries")
def list_journal_entries(n):
    _journal_or_404(n)
    return collection(
        [_entry_out(e) for e in journal_entries(n)], JOURNAL_ENTRY_FILTERS, "journalEntryNumber"
    )


@bp.get("/journals/<int:n>/vouchers")
def list_journal_vouchers(n):
    _journal_or_404(n)
    return collection(_vouchers_of(journal_entries(n)), {"voucherNumber"}, "voucherNumber")


@bp.get("/journals/<int:n>/vouchers/<year>-<int:number>")
def get_journal_voucher(n, year, number):
    _journal_or_404(n)
    found = [
        e for e in journal_entries(n)
        if e["voucher"]["voucherNumber"] == number and e["voucher"]["accountingYear"]["year"] == year
    ]  # fmt: skip
    if not found:
        raise not_found()
    return json_response(link(_vouchers_of(found)[0], g.eco_base))


@bp.post("/journals/<int:n>/vouchers")
def create_vouchers(n):
    """One voucher or an array of vouchers; answers with the array of created vouchers."""
    journal = _journal_or_404(n)
    body = request_json()
    many = isinstance(body, list)
    vouchers = body if many else [body]
    problems = Problems()
    if many and not vouchers:  # an empty array is not known to be accepted: refused
        problems.add(("vouchers",), E_REQUIRED, "At least one voucher is required.")
    planned = []
    for index, voucher in enumerate(vouchers):
        path = (index,) if many else ()
        planned.append(_validate_voucher(problems, path, voucher, journal))
    if many and problems.errors:
        # arrays of documents carry arrayIndex on the document level
        problems.errors = {
            "items": [problems.errors.pop(k) | {"arrayIndex": k} for k in sorted(problems.errors)]
        }
    problems.raise_if_any()
    created_entries = []
    for year, number, entries in planned:
        if number is None:
            number = _next_voucher_number(journal, year)
        for kind, entry in entries:
            entry_number = g.eco.next("journalEntry", 1)
            document = {
                "journalEntryNumber": entry_number,
                "journal": {"journalNumber": n},
                "entryType": ENTRY_TYPES[kind],
                "voucher": {"voucherNumber": number, "accountingYear": {"year": year}},
                **entry,
            }
            g.eco.put("journal-entries", entry_number, document)
            created_entries.append(document)
    db.session.commit()
    result = link(_vouchers_of(created_entries), g.eco_base)
    return json_response(
        result, 201, {"Location": result[0]["self"] if result else f"{g.eco_base}/journals/{n}/vouchers"}
    )


def _next_voucher_number(journal, year) -> int:
    first = journal["settings"]["voucherNumbers"].get("minimumVoucherNumber", 1)
    used = [
        e["voucher"]["voucherNumber"]
        for e in g.eco.all("journal-entries")
        if e["voucher"]["accountingYear"]["year"] == year
    ] + [
        e["voucherNumber"]
        for e in g.eco.all("entries")
        if e.get("accountingYear") == year and e["entryType"] != "customerInvoice"
    ]
    return max([first - 1, *[u for u in used if u >= first]]) + 1


def _validate_voucher(problems, path, voucher, journal):
    if not isinstance(voucher, dict):
        problems.add((*path, "entries") if path else ("entries",), E_INVALID, "A voucher must be an object.")
        return None, None, []
    check_nulls(problems, voucher, path)
    year = reference(voucher.get("accountingYear"), "year")
    year_document = None
    if year is None:
        problems.add((*path, "accountingYear"), E_REQUIRED, "Property accountingYear is required.")
    else:
        year = str(year)
        year_document = g.eco.get("accounting-years", year)
        if year_document is None:
            problems.add(
                (*path, "accountingYear"),
                E_NOT_FOUND,
                "accountingYear does not exist.",
                year,
                "Find a list of resources at https://restapi.e-conomic.com/accounting-years.",
            )
    number = voucher.get("voucherNumber")
    if number is not None:
        check_number(problems, (*path, "voucherNumber"), number, places=0)
        if isinstance(number, Decimal):
            number = int(number)
    entries = []
    for kind, items in (voucher.get("entries") or {}).items():
        if kind not in ENTRY_TYPES:
            problems.add((*path, "entries", kind), E_INVALID, f"{kind} is not an entry type.")
            continue
        for index, entry in enumerate(items or []):
            entries.append(
                (kind, _validate_entry(problems, (*path, "entries", kind, index), kind, entry, year_document))
            )
    if not entries:
        problems.add((*path, "entries"), E_REQUIRED, "A voucher needs at least one entry.")
    return year, number, entries


def _validate_entry(problems, path, kind, entry, year_document) -> dict:
    if not isinstance(entry, dict):
        problems.add(path, E_INVALID, "An entry must be an object.")
        return {}
    amount = entry.get("amount")
    if amount is None:
        problems.add((*path, "amount"), E_REQUIRED, "Property amount is required.")
    check_number(problems, (*path, "amount"), amount)
    day = parse_date(problems, (*path, "date"), entry.get("date"))
    if day and year_document and not year_document["fromDate"] <= day.isoformat() <= year_document["toDate"]:
        problems.add(
            (*path, "date"), E_NOT_OPEN, "date must be within the voucher's accounting year.", entry["date"]
        )
    elif day and year_document and not economic_periods.is_open(year_document, day):
        problems.add((*path, "date"), E_NOT_OPEN, "date is in a closed accounting period.", entry["date"])
    check_text(problems, (*path, "text"), entry.get("text"), 250)
    out = {"date": entry.get("date"), "amount": amount}
    if entry.get("text"):
        out["text"] = entry["text"]
    for key in ("account", "contraAccount"):
        number = check_ref(
            problems, (*path, key), entry.get(key), "accountNumber", "accounts", required=False
        )
        if number is not None:
            out[key] = {"accountNumber": number}
    for key in ("vatAccount", "contraVatAccount"):
        code = check_ref(problems, (*path, key), entry.get(key), "vatCode", "vat-accounts", required=False)
        if code is not None:
            out[key] = {"vatCode": code}
    currency = reference(entry.get("currency"), "code") or "DKK"
    if g.eco.get("currencies", str(currency).upper()) is None:
        problems.add((*path, "currency"), E_NOT_FOUND, "currency does not exist.", currency)
    out["currency"] = {"code": str(currency).upper()}
    if kind in ("customerPayments", "manualCustomerInvoices"):
        customer = check_ref(
            problems,
            (*path, "customer"),
            entry.get("customer"),
            "customerNumber",
            "customers",
            required=False,
        )
        if customer is not None:
            out["customer"] = {"customerNumber": customer}
        elif "contraAccount" not in out and kind == "customerPayments":
            problems.add((*path, "customer"), E_REQUIRED, "Either 'customer' or 'contraAccount' is required.")
        if entry.get("customerInvoice") is not None:
            out["customerInvoice"] = entry["customerInvoice"]
    elif kind == "financeVouchers" and "account" not in out:
        problems.add((*path, "account"), E_REQUIRED, "Property account is required.")
    if kind.startswith("supplier"):
        problems.add(path, E_INVALID, "Supplier entries are not supported by this sandbox.")
    return out


def book_journal(
    n: int, from_date: str | None = None, to_date: str | None = None, entry_numbers: set | None = None
) -> list[str]:
    """Book the journal's entries (within the dates, or only `entry_numbers`); returns problems instead of
    booking any when a voucher does not balance."""
    entries = [
        e
        for e in journal_entries(n)
        if (from_date is None or from_date <= e["date"])
        and (to_date is None or e["date"] <= to_date)
        and (entry_numbers is None or e["journalEntryNumber"] in entry_numbers)
    ]
    postings: dict[tuple, Decimal] = {}
    plans = []
    for entry in entries:
        year = entry["voucher"]["accountingYear"]["year"]
        key = (year, entry["voucher"]["voucherNumber"])
        amount = Decimal(str(entry["amount"]))
        if entry["entryType"] == "customerPayment":
            side = debtor_account(entry["customer"]["customerNumber"]) if "customer" in entry else None
        else:
            side = (entry.get("account") or {}).get("accountNumber")
        lines = []  # (account, amount, VAT code, customer side?)
        if side is not None:
            vat_code = (entry.get("vatAccount") or {}).get("vatCode")
            vat = Decimal("0")
            if vat_code:
                # the amount includes VAT; the VAT code splits it out onto the VAT account
                rate = Decimal(str(g.eco.get("vat-accounts", vat_code)["ratePercentage"]))
                vat = money(amount * rate / (100 + rate))
                lines.append(
                    (g.eco.get("vat-accounts", vat_code)["account"]["accountNumber"], vat, vat_code, False)
                )
            lines.append((side, amount - vat, None, entry["entryType"] == "customerPayment"))
        if "contraAccount" in entry:
            lines.append((entry["contraAccount"]["accountNumber"], -amount, None, False))
        postings[key] = postings.get(key, Decimal("0")) + sum((line[1] for line in lines), Decimal("0"))
        plans.append((entry, year, lines))
    unbalanced = [
        f"Voucher {number} ({year}) does not balance: {total}"
        for (year, number), total in postings.items()
        if total != 0
    ]
    if unbalanced:
        return unbalanced
    for entry, year, lines in plans:
        common = {
            "date": entry["date"],
            "currency": entry["currency"]["code"],
            "entryType": entry["entryType"],
        }
        common["voucherNumber"] = entry["voucher"]["voucherNumber"]
        if entry.get("text"):
            common["text"] = entry["text"]
        for account, amount, vat_code, customer_side in lines:
            posting = {
                **common,
                "account": {"accountNumber": account},
                "amount": amount,
                "amountInBaseCurrency": amount,
            }
            if vat_code:
                posting["vatAccount"] = {"vatCode": vat_code}
            if customer_side:
                posting["customer"] = entry["customer"]
            post_entry(year, posting)
        if entry["entryType"] == "customerPayment" and "customer" in entry:
            _settle(entry)
        g.eco.delete("journal-entries", entry["journalEntryNumber"])
    return []


def _settle(entry: dict) -> None:
    """A customer payment credits the debtor (a negative amount reduces what the customer owes) and,
    with customerInvoice, the booked invoice's remainder."""
    amount = Decimal(str(entry["amount"]))
    customer = g.eco.get("customers", entry["customer"]["customerNumber"])
    customer["balance"] = money(Decimal(str(customer.get("balance", 0))) + amount)
    customer["dueAmount"] = customer["balance"]
    g.eco.put("customers", customer["customerNumber"], customer)
    invoice = g.eco.get("booked", entry.get("customerInvoice")) if entry.get("customerInvoice") else None
    if invoice is not None and invoice["customer"]["customerNumber"] == customer["customerNumber"]:
        invoice["remainder"] = money(Decimal(str(invoice["remainder"])) + amount)
        invoice["remainderInBaseCurrency"] = money(Decimal(str(invoice["remainderInBaseCurrency"])) + amount)
        g.eco.put("booked", invoice["bookedInvoiceNumber"], invoice)


# --- the grant-token consent page (stands for secure.e-conomic.com/secure/api1/requestaccess.aspx) ----------


@bp.route("/_connect/requestaccess.aspx", methods=["GET", "POST"])
def connect_page():
    """Choose an agreement and Accept (redirect to redirectUrl?token=…) or Cancel (redirect without one)."""
    values = request.values
    app_token = values.get("appPublicToken") or values.get("appId") or ""
    redirect_url = values.get("redirectUrl") or ""
    if app_token not in APPS or not redirect_allowed(redirect_url):
        return consent_page("sandbox/economic_connect.html", "invalid_request")
    if request.method == "GET":
        register_agreement(DEMO_AGREEMENT, DEMO_COMPANY, DEMO_MODULES)
        return consent_page(
            "sandbox/economic_connect.html",
            None,
            app_token=app_token,
            redirect_url=redirect_url,
            locale=values.get("locale", "da-DK"),
            demo_agreement=DEMO_AGREEMENT,
            demo_company=DEMO_COMPANY["name"],
        )
    if values.get("action") != "accept":
        return redirect(redirect_url)  # guess: e-conomic's cancel sends the user back without a token
    if values.get("agreement") == "new":
        number = SandboxStore(SYSTEM, "_global").next_number("agreement", DEMO_AGREEMENT + 1)
    else:
        number = DEMO_AGREEMENT
    seed(str(number))
    token = issue_grant(number, app_token)
    db.session.commit()
    return redirect_back(redirect_url, {"token": token})


@bp.delete("/_grants/<token>")
def revoke(token):
    """Sandbox-only: revoke a grant, as the customer would in e-conomic's settings."""
    if not revoke_grant(token):
        raise not_found()
    db.session.commit()
    return Response(status=204)


# The orders resource shares this blueprint and state; importing it registers its routes.
from portal.sandbox import economic_orders, economic_periods  # noqa: E402
