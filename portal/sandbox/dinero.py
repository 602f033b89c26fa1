"""An emulator of Dinero's public API (https://api.dinero.dk/) and of the Visma Connect OAuth handshake.

Mounted under /sandbox/dinero/. Paths, methods, field names (PascalCase), list envelopes, `fields=`,
`queryFilter=`, status codes and error bodies follow Dinero's official OpenAPI document; every place where
the real behaviour is not documented and this emulator had to guess is listed in docs/connectors/dinero.md.

State lives in SandboxRecord rows through SandboxStore: tenant "visma-connect" holds the OAuth grants and
tokens; each organisation id is a tenant with its chart of accounts, contacts, products, invoices, credit
notes and manual vouchers. The demo Visma user reaches two organisations: a Pro one that works and one
without a paid plan that answers 403 (error code 90), as the real API does.

This module emulates the vendor; it never imports Bogbro's connectors.
"""

import base64
import calendar
import json
import secrets
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import wraps

from flask import Blueprint, Response, current_app, request
from sqlalchemy import select

from portal.extensions import db
from portal.models import SandboxRecord
from portal.redis_client import get_redis
from portal.sandbox.common import (
    consent_page,
    pkce_challenge_problem,
    pkce_verified,
    redirect_allowed,
    redirect_back,
)
from portal.sandbox.pdf import invoice_pdf
from portal.sandbox.store import SandboxStore

SYSTEM = "dinero"
AUTH_TENANT = "visma-connect"
bp = Blueprint("sandbox_dinero", __name__, template_folder="templates")

# The applications registered with the emulated Visma Connect (client id -> secret). Bogbro's sandbox
# settings use this pair; anything else is an unknown client, as on the real Visma Connect.
CLIENTS = {"isv_bogbro_sandbox": "bogbro-sandbox-secret"}
SCOPES = ("dineropublicapi:read", "dineropublicapi:write", "offline_access")
ACCESS_TOKEN_SECONDS = 3600
CODE_SECONDS = 300
DEMO_USER = {"name": "Dorthe Demo", "email": "dorthe.demo@sandbox.visma.example"}

PRO_ORG = 412345
FREE_ORG = 412346
ORGANIZATIONS = {
    PRO_ORG: {
        "Name": "Demo Webshop ApS",
        "Id": PRO_ORG,
        "Type": "Default",
        "IsPro": True,
        "IsPayingPro": True,
        "IsVatFree": False,
        "Email": "regnskab@demowebshop.dk",
        "Phone": "70 20 30 40",
        "Street": "Vestergade 12",
        "City": "Aarhus C",
        "ZipCode": "8000",
        "AttPerson": "Dorthe Demo",
        "IsTaxFreeUnion": False,
        "VatNumber": "DK12345674",
        "CountryKey": "DK",
        "Website": "demowebshop.dk",
    },
    FREE_ORG: {
        "Name": "Hobbyklubben",
        "Id": FREE_ORG,
        "Type": "Default",
        "IsPro": False,
        "IsPayingPro": False,
        "IsVatFree": True,
        "Email": "kasserer@hobbyklubben.dk",
        "Phone": None,
        "Street": "Skolevej 3",
        "City": "Silkeborg",
        "ZipCode": "8600",
        "AttPerson": "Dorthe Demo",
        "IsTaxFreeUnion": True,
        "VatNumber": None,
        "CountryKey": "DK",
        "Website": None,
    },
}

UNITS = [
    "hours",
    "parts",
    "km",
    "day",
    "week",
    "month",
    "kilogram",
    "cubicMetre",
    "set",
    "litre",
    "box",
    "case",
    "carton",
    "metre",
    "package",
    "shipment",
    "squareMetre",
    "session",
    "tonne",
]
PAYMENT_CONDITIONS = ("Netto", "NettoCash", "CurrentMonthOut", "Paid")
# Fixed "daily" exchange rates (DKK per unit); the real system uses the day's rate.
EXCHANGE_RATES = {
    "DKK": Decimal("1"),
    "EUR": Decimal("7.4600"),
    "SEK": Decimal("0.6450"),
    "NOK": Decimal("0.6350"),
    "USD": Decimal("6.9100"),
    "GBP": Decimal("8.6500"),
}
CENT = Decimal("0.01")

# --- the demo company's master data ----------------------------------------------------------------------

VAT_TYPES = [
    ("U25", "Salgsmoms 25%", "0.25"),
    ("I25", "Købsmoms 25%", "0.25"),
    ("UEUV", "Salg af varer til andre EU-lande (rubrik B - varer)", "0"),
    ("UEUY", "Salg af ydelser til andre EU-lande (rubrik B - ydelser)", "0"),
    ("UEXP", "Salg til lande uden for EU (rubrik C)", "0"),
    ("IEUV", "Køb af varer i andre EU-lande (erhvervelsesmoms)", "0.25"),
    ("IEUY", "Køb af ydelser i andre EU-lande (omvendt betalingspligt)", "0.25"),
    ("none", "Ingen moms", "0"),
]

# (number, name, VAT code, category, is default sales account)
ENTRY_ACCOUNTS = [
    (1000, "Salg af varer/ydelser m/moms", "U25", "Turnover", True),
    (1050, "Salg af varer/ydelser u/moms", None, "Turnover", False),
    (1100, "Salg af varer til EU-virksomheder", "UEUV", "Turnover", False),
    (1150, "Salg af ydelser til EU-virksomheder", "UEUY", "Turnover", False),
    (1200, "Salg af varer uden for EU (eksport)", "UEXP", "Turnover", False),
    (1300, "Fragt, salg m/moms", "U25", "Turnover", False),
    (1310, "Fragt, salg til EU-virksomheder", "UEUV", "Turnover", False),
    (1320, "Fragt, salg uden for EU", "UEXP", "Turnover", False),
    (1900, "Øreafrunding", None, "Turnover", False),
    (2000, "Vareforbrug", "I25", "Variable Expenses", False),
    (2010, "Varekøb i EU", "IEUV", "Variable Expenses", False),
    (2100, "Fragtudgifter", "I25", "Variable Expenses", False),
    (3000, "Annoncering og reklame", "I25", "Sales Expenses", False),
    (3650, "Gebyrer til betalingsudbydere", None, "Administration Expenses", False),
    (3660, "Bankgebyrer", None, "Administration Expenses", False),
    (5800, "Debitorer", None, "Receivables", False),
    (55000, "Bank", None, "Liquid Assets", False),
    (55010, "Stripe", None, "Liquid Assets", False),
    (55020, "PayPal", None, "Liquid Assets", False),
    (55030, "MobilePay", None, "Liquid Assets", False),
    (55100, "Kasse", None, "Liquid Assets", False),
    (61000, "Salgsmoms", None, "Vat Due", False),
    (61100, "Købsmoms", None, "Vat Due", False),
    (61200, "Moms af varekøb i udlandet", None, "Vat Due", False),
    (63000, "Kreditorer", None, "Short Term Debt", False),
    (70000, "Egenkapital", None, "Equity", False),
]
DEPOSIT_ACCOUNTS = {55000: True, 55010: False, 55020: False, 55030: False, 55100: False}  # -> IsDefault
SALES_VAT_ACCOUNT, PURCHASE_VAT_ACCOUNT, RECEIVABLES_ACCOUNT = 61000, 61100, 5800


def _template_id(org, name) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"sandbox.dinero/{org}/template/{name}"))


def seed(tenant) -> None:
    """Idempotently give one organisation the master data of a small Danish webshop company."""
    store = SandboxStore(SYSTEM, tenant)
    if store.is_seeded():
        return
    org = int(tenant)
    for code, name, rate in VAT_TYPES:
        store.put("vat_types", code, {"VatCode": code, "Name": name, "VatRate": rate})
    for number, name, vat_code, category, default in ENTRY_ACCOUNTS:
        store.put(
            "accounts",
            number,
            {
                "AccountNumber": number,
                "Name": name,
                "VatCode": vat_code,
                "Category": category,
                "IsHidden": False,
                "IsDefaultSalesAccount": default,
                "IsDeposit": number in DEPOSIT_ACCOUNTS,
                "IsDefaultDeposit": DEPOSIT_ACCOUNTS.get(number, False),
            },
        )
    templates = [
        ("Standard", True, "Standard", "#1f5f8b"),
        ("Webshop (engelsk)", False, "TopImage", "#2f7d32"),
    ]
    for name, default, theme, color in templates:
        template_id = _template_id(org, name)
        store.put(
            "templates",
            template_id,
            {
                "Id": template_id,
                "Name": name,
                "IsDefault": default,
                "Theme": theme,
                "PrimaryColor": color,
                "SecondaryColor": "#f4f4f4",
                "AddressPlacement": "Right",
                "Font": "Open Sans",
                "LogoType": "Letters",
                "LogoText": ORGANIZATIONS.get(org, {}).get("Name", "Demo"),
                "LogoFileGuid": None,
                "MaxImageWidthMm": 60,
                "ShowCompanyInfo": True,
                "ShowPaymentConditions": True,
                "ShowLogo": True,
                "ShowLineQuantity": True,
                "ShowLineUnit": True,
                "ImageFileUploadGuid": None,
                "ImageTextColor": None,
            },
        )
    store.put(
        "settings",
        "sales",
        {
            "LinesInclVat": False,
            "FikCode": None,
            "UseFikCode": False,
            "DefaultAccountNumber": 1000,
            "InvoiceTemplateId": _template_id(org, "Standard"),
            "AddVoucherAsPdfAttachment": True,
            "ReminderFee": "100",
            "ReminderInterestRate": "0.7",
            "TrustPilotEmail": None,
            "PaymentConditionNumberOfDays": 8,
            "PaymentConditionType": "Netto",
        },
    )
    this_year = date.today().year
    for year in (this_year - 1, this_year):
        store.put(
            "years",
            year,
            {
                "Name": str(year),
                "FromDate": f"{year}-01-01",
                "ToDate": f"{year}-12-31",
                "SalarySumTaxStateEnum": "None",
            },
        )
    store.mark_seeded()
    db.session.commit()


# --- small helpers ----------------------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _money(value) -> float:
    """Amounts are kept as exact decimal strings and leave as JSON numbers (Dinero's are doubles)."""
    return float(Decimal(str(value)))


def _q2(value: Decimal) -> Decimal:
    # Guess (documented): commercial rounding, half away from zero, to whole øre.
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _json(payload, status=200) -> Response:
    return Response(json.dumps(payload, ensure_ascii=False), status=status, mimetype="application/json")


def _error(status, code, message, fields=None, danish=None) -> Response:
    """Dinero's error body: {code, message, validationErrors, languageSpecificMessages}."""
    fields = fields or {}
    localized = [
        {"property": name, "message": (danish or {}).get(name, text)} for name, text in fields.items()
    ]
    return _json(
        {"code": code, "message": message, "validationErrors": fields, "languageSpecificMessages": localized},
        status,
    )


class ApiError(Exception):
    def __init__(self, status, code, message, fields=None, danish=None):
        super().__init__(message)
        self.response = _error(status, code, message, fields, danish)


def _invalid(fields: dict, danish: dict | None = None):
    return ApiError(400, 42, "Validation Error", fields, danish)


def _not_found(what="The requested resource"):
    return ApiError(404, 40, f"{what} was not found")


def _outdated():
    return ApiError(
        400,
        58,
        "Timestamp is outdated. Get the latest version of the entity and use its timestamp.",
        {"Timestamp": "The timestamp does not match the latest version of the entity."},
        {"Timestamp": "Tidsstemplet passer ikke med den seneste version."},
    )


@bp.errorhandler(ApiError)
def _api_error(error):
    return error.response


def _body() -> dict:
    raw = request.get_data()
    try:
        payload = json.loads(raw or b"null", parse_float=Decimal)
    except ValueError:
        raise _invalid({"body": "The request body is not valid JSON."}) from None
    if payload is None:
        raise _invalid({"body": "A request body is required."})
    if not isinstance(payload, dict):
        raise _invalid({"body": "The request body must be a JSON object."})
    return payload


def _decimal(payload, name, *, required=False, errors=None, path=None):
    value = payload.get(name)
    key = path or name
    if value is None:
        if required:
            errors[key] = f"The {name} field is required."
        return None
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        errors[key] = f"The {name} field must be a number."
        return None
    return Decimal(value)


def _string(payload, name, *, required=False, errors=None, max_length=None, path=None):
    value = payload.get(name)
    key = path or name
    if value is None or value == "":
        if required:
            errors[key] = f"The {name} field is required."
        return None
    if not isinstance(value, str):
        errors[key] = f"The {name} field must be a string."
        return None
    if max_length and len(value) > max_length:
        errors[key] = f"The field {name} must be a string with a maximum length of {max_length}."
    return value


def _bool(payload, name, *, required=False, errors=None):
    value = payload.get(name)
    if value is None:
        if required:
            errors[name] = f"The {name} field is required."
        return None
    if not isinstance(value, bool):
        errors[name] = f"The {name} field must be true or false."
        return None
    return value


def _guid(payload, name, errors, *, path=None):
    value = payload.get(name)
    if value is None:
        return None
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        errors[path or name] = f"The {name} field is not a valid guid."
        return None


def _date(payload, name, errors):
    value = payload.get(name)
    if value is None:
        return None
    if isinstance(value, str) and len(value) == 10 and _is_date(value):
        return value
    errors[name] = f"The {name} field must be a date in the format YYYY-MM-DD."
    return None


def _is_date(value: str) -> bool:
    try:
        date.fromisoformat(value)
        return True
    except ValueError:
        return False


def _integer(payload, name, *, required=False, errors=None, path=None):
    value = payload.get(name)
    key = path or name
    if value is None:
        if required:
            errors[key] = f"The {name} field is required."
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        errors[key] = f"The {name} field must be a whole number."
        return None
    return value


# --- auth, organisations, rate limit --------------------------------------------------------------------


def _auth_store() -> SandboxStore:
    return SandboxStore(SYSTEM, AUTH_TENANT)


def _unauthorized(description: str | None = None) -> Response:
    """ASP.NET Core's JwtBearer answer: 401, an empty body and the reason in WWW-Authenticate."""
    response = Response(status=401)
    header = "Bearer"
    if description:
        header += f' error="invalid_token", error_description="{description}"'
    response.headers["WWW-Authenticate"] = header
    return response


def _bearer_token() -> dict | Response:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return _unauthorized()
    token = _auth_store().get("access_tokens", header[len("Bearer ") :].strip())
    if token is None:
        return _unauthorized("The access token is not valid")
    grant = _auth_store().get("grants", token["GrantId"])
    if grant is None or grant["Revoked"]:
        return _unauthorized("The access token has been revoked")
    if token["ExpiresAt"] <= time.time():
        expired = datetime.fromtimestamp(token["ExpiresAt"], UTC).strftime("%m/%d/%Y %H:%M:%S")
        return _unauthorized(f"The token expired at '{expired}'")
    return token


def _rate_limited(org: int, client_id: str) -> Response | None:
    """100 requests a minute per organisation per client id (fixed windows), like the real API."""
    limit, window = current_app.config.get("SANDBOX_DINERO_RATE_LIMIT", (100, 60))
    now = time.time()
    slot = int(now // window)
    key = f"bogbro:sandbox:dinero:ratelimit:{org}:{client_id}:{slot}"
    redis = get_redis()
    count = redis.incr(key)
    if count == 1:
        redis.expire(key, int(window) + 1)
    if count <= limit:
        return None
    # AspNetCoreRateLimit's default answer (Dinero's 429 text is that library's message).
    period = f"{int(window // 60)}m" if window % 60 == 0 else f"{window:g}s"
    response = Response(f"API calls quota exceeded! maximum admitted {limit} per {period}.", status=429)
    response.mimetype = "text/plain"
    response.headers["Retry-After"] = str(max(1, int((slot + 1) * window - now + 0.999)))
    return response


def api(scope="read"):
    """Decorator of every organisation API view: bearer token, scope, access, Pro plan, rate limit."""

    def decorate(view):
        @wraps(view)
        def wrapper(*args, org=None, **kwargs):
            token = _bearer_token()
            if isinstance(token, Response):
                return token
            if f"dineropublicapi:{scope}" not in token["Scope"].split():
                return _error(403, 41, "Unauthorized: the access token lacks the scope for this request.")
            if org is not None:
                if org not in ORGANIZATIONS:
                    return _error(403, 41, "Unauthorized: the user has no access to this organization.")
                if not ORGANIZATIONS[org]["IsPro"]:
                    return _error(
                        403,
                        90,
                        "The organization does not have an active Dinero Pro subscription, "
                        "which is required to use the API.",
                    )
                limited = _rate_limited(org, token["ClientId"])
                if limited is not None:
                    return limited
                seed(org)  # lazily, on first use of a demo organisation
                kwargs["store"] = SandboxStore(SYSTEM, org)
            try:
                return view(*args, **kwargs)
            except ApiError as error:
                db.session.rollback()
                return error.response

        return wrapper

    return decorate


# --- list conventions: fields=, queryFilter=, changesSince, paging ---------------------------------------


def _select_fields(item: dict, fields_param: str | None, default: str) -> dict:
    """`fields=` is case-insensitive and answers in the casing asked for; without it, a minimal default
    set in the model's own casing (guess: the document gives the defaults in lower camel case)."""
    by_lower = {key.lower(): key for key in item}
    if not fields_param:
        return {
            by_lower[name.strip().lower()]: item[by_lower[name.strip().lower()]]
            for name in default.split(",")
        }
    wanted = [name.strip() for name in fields_param.split(",") if name.strip()]
    selected, unknown = {}, []
    for name in wanted:
        key = by_lower.get(name.lower())
        if key is None:
            unknown.append(name)
        else:
            selected[name] = item[key]
    if unknown:
        raise _invalid({"fields": f"Unknown field(s): {', '.join(unknown)}"})
    return selected


def parse_query_filter(text: str, filterable: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """`Field eq 'value';Field contains 'x'` -> [(field, op, value)]; quotes inside values are doubled."""
    conditions, i, n = [], 0, len(text)
    canonical = {name.lower(): name for name in filterable}
    while i < n:
        while i < n and text[i] in " ;":
            i += 1
        if i >= n:
            break
        start = i
        while i < n and text[i] != " ":
            i += 1
        field = text[start:i]
        while i < n and text[i] == " ":
            i += 1
        start = i
        while i < n and text[i] != " ":
            i += 1
        operator = text[start:i].lower()
        while i < n and text[i] == " ":
            i += 1
        if i >= n or text[i] != "'":
            raise _invalid({"queryFilter": f"Expected a value in single quotes after '{field} {operator}'."})
        i += 1
        value = []
        while True:
            if i >= n:
                raise _invalid({"queryFilter": "A quoted value is not closed."})
            if text[i] == "'":
                if i + 1 < n and text[i + 1] == "'":
                    value.append("'")
                    i += 2
                    continue
                i += 1
                break
            value.append(text[i])
            i += 1
        if field.lower() not in canonical:
            raise _invalid(
                {"queryFilter": f"Filtering on '{field}' is not supported. Use: {', '.join(filterable)}."}
            )
        if operator not in ("eq", "contains"):
            raise _invalid({"queryFilter": f"Unknown operator '{operator}'. Use eq or contains."})
        conditions.append((canonical[field.lower()], operator, "".join(value)))
        while i < n and text[i] == " ":
            i += 1
        if i < n and text[i] != ";":
            raise _invalid({"queryFilter": "Conditions must be separated by ';'."})
    return conditions


def _matches(item: dict, conditions) -> bool:
    for field, operator, value in conditions:
        actual = item.get(field)
        actual = (
            "" if actual is None else (str(actual).lower() if not isinstance(actual, bool) else str(actual))
        )
        wanted = value.lower()
        if operator == "eq" and actual.lower() != wanted:
            return False
        if operator == "contains" and wanted not in actual.lower():
            return False
    return True


def _changes_since():
    value = request.args.get("changesSince")
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise _invalid(
            {"changesSince": "Use the format YYYY-MM-DDTHH:mm:ssZ, e.g. 2015-08-18T06:36:22Z."}
        ) from None


def _page_args():
    try:
        page = int(request.args.get("page", 0))
        size = int(request.args.get("pageSize", 100))
    except ValueError:
        raise _invalid({"page": "page and pageSize must be whole numbers."}) from None
    if page < 0 or size < 1:
        raise _invalid({"pageSize": "page must be 0 or more and pageSize at least 1."})
    return page, min(size, 1000)


def _paged(items: list[dict], default_fields: str) -> Response:
    page, size = _page_args()
    chunk = items[page * size : (page + 1) * size]
    fields = request.args.get("fields")
    return _json(
        {
            "Collection": [_select_fields(item, fields, default_fields) for item in chunk],
            "Pagination": {
                "MaxPageSizeAllowed": 1000,
                "PageSize": size,
                "Result": len(chunk),
                "ResultWithoutFilter": len(items),
                "Page": page,
            },
        }
    )


def _deleted_filter(items: list[dict], *, v2=False) -> list[dict]:
    deleted_only = request.args.get("deletedOnly", "").lower() == "true"
    if deleted_only:
        return [item for item in items if item.get("DeletedAt")]
    if v2 and "deletedOnly" not in request.args:
        return items  # v2 contacts: deleted and not deleted unless asked
    return [item for item in items if not item.get("DeletedAt")]


def _filter_changed(items: list[dict]) -> list[dict]:
    since = _changes_since()
    if since is None:
        return items
    return [
        item for item in items if datetime.fromisoformat(item["UpdatedAt"].replace("Z", "+00:00")) >= since
    ]


def _new_timestamp(store: SandboxStore) -> str:
    """A SQL Server rowversion-like token, new on every change of a versioned entity."""
    return f"{store.next_number('rowversion', start=0x7D0000):016X}"


# --- OAuth: Visma Connect ---------------------------------------------------------------------------------


@bp.get("/connect/authorize")
def authorize():
    args = request.args
    return consent_page(
        "sandbox/dinero_consent.html",
        _authorize_problem(args),
        params={k: args.get(k, "") for k in AUTHORIZE_PARAMS},
        scopes=(args.get("scope") or "").split(),
        user=DEMO_USER,
        organizations=[ORGANIZATIONS[PRO_ORG], ORGANIZATIONS[FREE_ORG]],
    )


AUTHORIZE_PARAMS = (
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "response_type",
    "code_challenge",
    "code_challenge_method",
)


def _authorize_problem(args) -> str | None:
    if args.get("client_id") not in CLIENTS:
        return "unknown_client"
    if not redirect_allowed(args.get("redirect_uri"), host=request.host):  # only addresses on the app's host
        return "invalid_redirect_uri"
    if args.get("response_type") != "code":
        return "unsupported_response_type"
    if not set((args.get("scope") or "").split()) <= set(SCOPES) or not args.get("scope"):
        return "invalid_scope"
    # PKCE is optional for a web application with a secret (Visma Connect); S256 only (IdentityServer refuses
    # "plain" unless a client is set up for it).
    return pkce_challenge_problem(args.get("code_challenge"), args.get("code_challenge_method"))


@bp.post("/connect/authorize")
def authorize_answer():
    form = request.form
    if _authorize_problem(form):
        return authorize()
    redirect_uri = form["redirect_uri"]
    params = {"state": form.get("state", "")}
    if form.get("answer") == "accept":
        store = _auth_store()
        code = secrets.token_urlsafe(24)
        store.put(
            "codes",
            code,
            {
                "ClientId": form["client_id"],
                "RedirectUri": redirect_uri,
                "Scope": form["scope"],
                "ExpiresAt": time.time() + CODE_SECONDS,
                "Used": False,
                "CodeChallenge": form.get("code_challenge") or None,
                "CodeChallengeMethod": form.get("code_challenge_method") or None,
            },
        )
        db.session.commit()
        for org in ORGANIZATIONS:  # seed on connect
            seed(org)
        params = {"code": code, **params}
    else:
        params = {"error": "access_denied", **params}
    return redirect_back(redirect_uri, params)


def _oauth_error(error: str, status=400) -> Response:
    # IdentityServer (Visma Connect) answers token errors with just the RFC 6749 code.
    return _json({"error": error}, status)


def _client_credentials() -> tuple[str | None, str | None]:
    header = request.headers.get("Authorization", "")
    if header.startswith("Basic "):
        try:
            client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None, None
        return client_id, secret
    return request.form.get("client_id"), request.form.get("client_secret")


@bp.post("/connect/token")
def token():
    client_id, secret = _client_credentials()
    if client_id not in CLIENTS or not secrets.compare_digest(CLIENTS[client_id], secret or ""):
        return _oauth_error("invalid_client")
    store = _auth_store()
    grant_type = request.form.get("grant_type")
    if grant_type == "authorization_code":
        code = store.get("codes", request.form.get("code", ""))
        if (
            code is None
            or code["Used"]
            or code["ExpiresAt"] < time.time()
            or code["ClientId"] != client_id
            or code["RedirectUri"] != request.form.get("redirect_uri")
        ):
            return _oauth_error("invalid_grant")
        store.put("codes", request.form["code"], {**code, "Used": True})
        # RFC 7636 §4.6: a code issued for a challenge needs its verifier. The code is spent either way
        # (IdentityServer removes it from its store before it checks the verifier).
        challenge = code.get("CodeChallenge")
        if challenge and not pkce_verified(
            challenge, code.get("CodeChallengeMethod"), request.form.get("code_verifier")
        ):
            db.session.commit()
            return _oauth_error("invalid_grant")
        grant_id = str(uuid.uuid4())
        store.put(
            "grants",
            grant_id,
            {"Id": grant_id, "ClientId": client_id, "Scope": code["Scope"], "Revoked": False},
        )
        return _json(_issue_tokens(store, grant_id, client_id, code["Scope"]))
    if grant_type == "refresh_token":
        value = request.form.get("refresh_token", "")
        refresh = store.get("refresh_tokens", value)
        grant = refresh and store.get("grants", refresh["GrantId"])
        # One-time refresh tokens with no grace period: a used one is refused (Visma Connect can be set
        # up with a 5-60 s grace period; the strictest setting shows concurrency bugs).
        if refresh is None or refresh["Used"] or refresh["ClientId"] != client_id or grant["Revoked"]:
            return _oauth_error("invalid_grant")
        store.put("refresh_tokens", value, {**refresh, "Used": True})
        return _json(_issue_tokens(store, refresh["GrantId"], client_id, grant["Scope"]))
    return _oauth_error("unsupported_grant_type")


def _issue_tokens(store: SandboxStore, grant_id: str, client_id: str, scope: str) -> dict:
    access = secrets.token_urlsafe(32)
    store.put(
        "access_tokens",
        access,
        {
            "GrantId": grant_id,
            "ClientId": client_id,
            "Scope": scope,
            "ExpiresAt": time.time() + ACCESS_TOKEN_SECONDS,
        },
    )
    answer = {
        "access_token": access,
        "expires_in": ACCESS_TOKEN_SECONDS,
        "token_type": "Bearer",
        "scope": scope,
    }
    if "offline_access" in scope.split():
        refresh = secrets.token_urlsafe(32)
        store.put("refresh_tokens", refresh, {"GrantId": grant_id, "ClientId": client_id, "Used": False})
        answer["refresh_token"] = refresh
    db.session.commit()
    return answer


# Helpers for tests and demos: what the vendor's side can do to a grant.


def issue_demo_tokens(client_id: str = "isv_bogbro_sandbox", scope: str = " ".join(SCOPES)) -> dict:
    """A fresh grant for the demo user, as if they had accepted the consent page."""
    store = _auth_store()
    grant_id = str(uuid.uuid4())
    store.put("grants", grant_id, {"Id": grant_id, "ClientId": client_id, "Scope": scope, "Revoked": False})
    for org in ORGANIZATIONS:
        seed(org)
    return _issue_tokens(store, grant_id, client_id, scope)


def expire_access_tokens() -> None:
    """Let every issued access token run out (as an hour passing would)."""
    records = db.session.scalars(
        select(SandboxRecord).where(
            SandboxRecord.system == SYSTEM,
            SandboxRecord.tenant == AUTH_TENANT,
            SandboxRecord.collection == "access_tokens",
        )
    )
    for record in records:
        record.document = {**record.document, "ExpiresAt": time.time() - 1}
    db.session.commit()


def revoke_grants() -> None:
    """The user removed the app in Visma Connect: every token of every grant stops working."""
    store = _auth_store()
    for grant in store.all("grants"):
        store.put("grants", grant["Id"], {**grant, "Revoked": True})
    db.session.commit()


def refresh_token_state(value: str) -> str:
    """'valid', 'used' or 'unknown' (for tests of token rotation)."""
    record = _auth_store().get("refresh_tokens", value)
    if record is None:
        return "unknown"
    return "used" if record["Used"] else "valid"


# --- organisations and master data ----------------------------------------------------------------------

ORGANIZATION_FIELDS = [
    "Name",
    "Id",
    "Type",
    "IsPro",
    "IsPayingPro",
    "IsVatFree",
    "Email",
    "Phone",
    "Street",
    "City",
    "ZipCode",
    "AttPerson",
    "IsTaxFreeUnion",
    "VatNumber",
    "CountryKey",
    "Website",
]


@bp.get("/v1/organizations")
@api()
def organizations():
    fields = request.args.get("fields")
    items = [{key: org[key] for key in ORGANIZATION_FIELDS} for org in ORGANIZATIONS.values()]
    return _json([_select_fields(item, fields, "Id,Name,IsPro") for item in items])


@bp.get("/v1.1/organizations")
@api()
def organizations_v2():
    items = []
    for org in ORGANIZATIONS.values():
        items.append(
            {
                "Name": org["Name"],
                "Id": org["Id"],
                "CompanyTypeKey": "PrivateLimitedCompany" if org["IsPro"] else "Union",
                "IsVatFree": org["IsVatFree"],
                "Email": org["Email"],
                "Phone": org["Phone"],
                "Street": org["Street"],
                "City": org["City"],
                "ZipCode": org["ZipCode"],
                "AttPerson": org["AttPerson"],
                "IsTaxFreeUnion": org["IsTaxFreeUnion"],
                "VatNumber": org["VatNumber"],
                "CountryKey": org["CountryKey"],
                "Website": org["Website"],
                "RoleKey": "Owner",
                "Subscription": {
                    "HasPro": org["IsPro"],
                    "HasPayingPro": org["IsPayingPro"],
                    "HasStarterPlus": False,
                    "HasTotal": False,
                    "HasYfs": False,
                },
            }
        )
    return _json(items)


@bp.get("/v1/<int:org>/accountingyears")
@api()
def accounting_years(store):
    return _json(sorted(store.all("years"), key=lambda year: year["FromDate"]))


def _entry_account(account: dict) -> dict:
    return {
        "AccountNumber": account["AccountNumber"],
        "PublicStandardNumber": None,
        "Name": account["Name"],
        "VatCode": account["VatCode"],
        "Category": account["Category"],
        "CategoryName": None,
        "IsHidden": account["IsHidden"],
        "IsDefaultSalesAccount": account["IsDefaultSalesAccount"],
    }


@bp.get("/v1/<int:org>/accounts/entry")
@api()
def entry_accounts(store):
    category = request.args.get("categoryFilter", "")
    accounts = sorted(store.all("accounts"), key=lambda account: account["AccountNumber"])
    if category:
        accounts = [account for account in accounts if account["Category"].lower() == category.lower()]
    fields = request.args.get("fields")
    return _json([_select_fields(_entry_account(a), fields, "AccountNumber,Name,IsHidden") for a in accounts])


@bp.get("/v1/<int:org>/accounts/deposit")
@api()
def deposit_accounts(store):
    accounts = sorted(
        (account for account in store.all("accounts") if account["IsDeposit"]),
        key=lambda account: account["AccountNumber"],
    )
    items = [
        {
            "AccountNumber": account["AccountNumber"],
            "PublicStandardNumber": None,
            "Name": account["Name"],
            "IsDefault": account["IsDefaultDeposit"],
            "IsHidden": account["IsHidden"],
            "BankRegistrationNumber": "1234" if account["AccountNumber"] == 55000 else None,
            "BankAccountNumber": "0012345678" if account["AccountNumber"] == 55000 else None,
            "BankSwiftNumber": None,
            "BankIbanNumber": None,
        }
        for account in accounts
    ]
    fields = request.args.get("fields")
    return _json([_select_fields(item, fields, "AccountNumber,Name") for item in items])


@bp.get("/v1/<int:org>/vatTypes")
@api()
def vat_types(store):
    return _json(
        [
            {"VatCode": vat["VatCode"], "Name": vat["Name"], "VatRate": _money(vat["VatRate"])}
            for vat in store.all("vat_types")
        ]
    )


@bp.get("/v1/<int:org>/invoices/templates")
@api()
def invoice_templates(store):
    return _json(store.all("templates"))


@bp.get("/v1/<int:org>/sales/settings")
@api()
def sales_settings(store):
    settings = dict(store.get("settings", "sales"))
    settings["ReminderFee"] = _money(settings["ReminderFee"])
    settings["ReminderInterestRate"] = _money(settings["ReminderInterestRate"])
    return _json(settings)


# --- contacts -----------------------------------------------------------------------------------------------

CONTACT_TEXT_FIELDS = [
    "Street",
    "ZipCode",
    "City",
    "Phone",
    "Email",
    "Webpage",
    "AttPerson",
    "VatNumber",
    "EanNumber",
    "SENumber",
    "PNumber",
    "MemberNumber",
    "CompanyTypeKey",
    "InvoiceMailOutOptionKey",
    "PreferredInvoiceLanguageKey",
    "PreferredInvoiceCurrencyKey",
]
CONTACT_FILTERABLE = ("ExternalReference", "Name", "Email", "VatNumber", "EanNumber", "IsPerson", "Phone")
EU_COUNTRIES = set(
    [
        "AT",
        "BE",
        "BG",
        "CY",
        "CZ",
        "DE",
        "EE",
        "ES",
        "FI",
        "FR",
        "GR",
        "HR",
        "HU",
        "IE",
        "IT",
        "LT",
        "LU",
        "LV",
        "MT",
        "NL",
        "PL",
        "PT",
        "RO",
        "SE",
        "SI",
        "SK",
    ]
)


def _vat_region(country: str) -> str:
    if country == "DK":
        return "DK"
    return "EU" if country in EU_COUNTRIES else "World"


def _contact_fields(payload: dict) -> dict:
    errors = {}
    contact = {
        "ExternalReference": _string(payload, "ExternalReference", errors=errors, max_length=128),
        "Name": _string(payload, "Name", required=True, errors=errors),
        "CountryKey": _string(payload, "CountryKey", required=True, errors=errors),
        "IsPerson": _bool(payload, "IsPerson", required=True, errors=errors),
        "IsMember": _bool(payload, "IsMember", required=True, errors=errors),
        "UseCvr": _bool(payload, "UseCvr", required=True, errors=errors),
        "PaymentConditionType": _string(payload, "PaymentConditionType", errors=errors),
        "PaymentConditionNumberOfDays": _integer(payload, "PaymentConditionNumberOfDays", errors=errors),
    }
    for name in CONTACT_TEXT_FIELDS:
        contact[name] = _string(payload, name, errors=errors)
    country = contact["CountryKey"]
    if country and (len(country) != 2 or not country.isalpha()):
        errors["CountryKey"] = "CountryKey must be a two letter country code, e.g. DK."
    condition = contact["PaymentConditionType"]
    if condition and condition not in ("Netto", "NettoCash", "CurrentMonthOut"):
        errors["PaymentConditionType"] = "PaymentConditionType must be Netto, NettoCash or CurrentMonthOut."
    if errors:
        raise _invalid(errors)
    contact["CountryKey"] = country.upper()
    return contact


def _contact_read(contact: dict) -> dict:
    keys = [
        "ContactGuid",
        "CreatedAt",
        "UpdatedAt",
        "DeletedAt",
        "IsDebitor",
        "IsCreditor",
        "CompanyStatus",
        "VatRegionKey",
        "ExternalReference",
        "Name",
        "Street",
        "ZipCode",
        "City",
        "CountryKey",
        "Phone",
        "Email",
        "Webpage",
        "AttPerson",
        "VatNumber",
        "EanNumber",
        "SENumber",
        "PNumber",
        "PaymentConditionType",
        "PaymentConditionNumberOfDays",
        "IsPerson",
        "IsMember",
        "MemberNumber",
        "UseCvr",
        "CompanyTypeKey",
        "InvoiceMailOutOptionKey",
        "PreferredInvoiceLanguageKey",
        "PreferredInvoiceCurrencyKey",
    ]
    return {key: contact.get(key) for key in keys}


@bp.get("/v1/<int:org>/contacts")
@api()
def list_contacts(store):
    return _list_contacts(store, v2=False)


@bp.get("/v2/<int:org>/contacts")
@api()
def list_contacts_v2(store):
    return _list_contacts(store, v2=True)


def _list_contacts(store, v2):
    conditions = parse_query_filter(request.args.get("queryFilter", ""), CONTACT_FILTERABLE)
    contacts = [_contact_read(contact) for contact in store.all("contacts")]
    contacts = _filter_changed(_deleted_filter(contacts, v2=v2))
    contacts = [contact for contact in contacts if _matches(contact, conditions)]
    contacts.sort(key=lambda contact: contact["Name"].lower())
    return _paged(contacts, "name,contactGuid")


@bp.post("/v1/<int:org>/contacts")
@api("write")
def create_contact(store):
    payload = _body()
    errors = {}
    guid = _guid(payload, "ContactGuid", errors)
    if errors:
        raise _invalid(errors)
    contact = _contact_fields(payload)
    guid = guid or str(uuid.uuid4())
    if store.get("contacts", guid) is not None:
        raise _invalid(
            {"ContactGuid": f"A contact with the guid {guid} already exists."},
            {"ContactGuid": f"Der findes allerede en kontakt med guid {guid}."},
        )
    now = _iso(_now())
    contact.update(
        ContactGuid=guid,
        CreatedAt=now,
        UpdatedAt=now,
        DeletedAt=None,
        IsDebitor=True,
        IsCreditor=False,
        CompanyStatus=None if contact["IsPerson"] else "unknown",
        VatRegionKey=_vat_region(contact["CountryKey"]),
    )
    store.put("contacts", guid, contact)
    db.session.commit()
    return _json({"ContactGuid": guid})


def _existing(store, collection, guid, what):
    try:
        key = str(uuid.UUID(guid))
    except ValueError:
        raise _not_found(what) from None
    document = store.get(collection, key)
    if document is None or document.get("DeletedAt"):
        raise _not_found(what)
    return document


@bp.get("/v1/<int:org>/contacts/<guid>")
@api()
def get_contact(store, guid):
    return _json(_contact_read(_existing(store, "contacts", guid, "The contact")))


@bp.put("/v2/<int:org>/contacts/<guid>")
@api("write")
def update_contact(store, guid):
    contact = _existing(store, "contacts", guid, "The contact")
    changes = _contact_fields(_body())
    contact = {
        **contact,
        **changes,
        "UpdatedAt": _iso(_now()),
        "VatRegionKey": _vat_region(changes["CountryKey"]),
    }
    store.put("contacts", contact["ContactGuid"], contact)
    db.session.commit()
    return Response(status=200)


# --- products -----------------------------------------------------------------------------------------------

PRODUCT_FILTERABLE = ("Name", "ProductNumber", "ExternalReference")


def _product_fields(store, payload: dict) -> dict:
    errors = {}
    product = {
        "ProductNumber": _string(payload, "ProductNumber", errors=errors),
        "Name": _string(payload, "Name", errors=errors),
        "BaseAmountValue": _decimal(payload, "BaseAmountValue", required=True, errors=errors),
        "Quantity": _decimal(payload, "Quantity", required=True, errors=errors),
        "AccountNumber": _integer(payload, "AccountNumber", required=True, errors=errors),
        "Unit": _string(payload, "Unit", required=True, errors=errors),
        "ExternalReference": _string(payload, "ExternalReference", errors=errors, max_length=128),
        "Comment": _string(payload, "Comment", errors=errors, max_length=128),
    }
    if product["Unit"] and product["Unit"] not in UNITS:
        errors["Unit"] = f"Unknown unit '{product['Unit']}'. Available units: {', '.join(UNITS)}."
    if product["AccountNumber"] is not None and store.get("accounts", product["AccountNumber"]) is None:
        errors["AccountNumber"] = f"The account {product['AccountNumber']} does not exist."
    if errors:
        raise _invalid(errors)
    product["BaseAmountValue"] = str(product["BaseAmountValue"])
    product["Quantity"] = str(product["Quantity"])
    return product


def _product_read(store, product: dict) -> dict:
    rate = _account_rate(store, product["AccountNumber"])
    base = Decimal(product["BaseAmountValue"])
    quantity = Decimal(product["Quantity"])
    return {
        "CreatedAt": product["CreatedAt"],
        "UpdatedAt": product["UpdatedAt"],
        "DeletedAt": product["DeletedAt"],
        "ProductGuid": product["ProductGuid"],
        "BaseAmountValueInclVat": _money(_q2(base * (1 + rate))),
        "TotalAmount": _money(_q2(base * quantity)),
        "TotalAmountInclVat": _money(_q2(base * quantity * (1 + rate))),
        "ProductNumber": product["ProductNumber"],
        "Name": product["Name"],
        "BaseAmountValue": _money(base),
        "Quantity": _money(quantity),
        "AccountNumber": product["AccountNumber"],
        "Unit": product["Unit"],
        "ExternalReference": product["ExternalReference"],
        "Comment": product["Comment"],
    }


@bp.get("/v1/<int:org>/products")
@api()
def list_products(store):
    conditions = parse_query_filter(request.args.get("queryFilter", ""), PRODUCT_FILTERABLE)
    products = [_product_read(store, product) for product in store.all("products")]
    products = _filter_changed(_deleted_filter(products))
    products = [product for product in products if _matches(product, conditions)]
    search = (request.args.get("freeTextSearch") or "").lower()
    if search:
        products = [
            p
            for p in products
            if search in (p["Name"] or "").lower() or search in (p["ProductNumber"] or "").lower()
        ]
    products.sort(key=lambda product: product["UpdatedAt"])  # "order by UpdatedAt"
    return _paged(products, "Name,ProductGuid")


@bp.post("/v1/<int:org>/products")
@api("write")
def create_product(store):
    product = _product_fields(store, _body())
    guid = str(uuid.uuid4())
    now = _iso(_now())
    product.update(ProductGuid=guid, CreatedAt=now, UpdatedAt=now, DeletedAt=None)
    store.put("products", guid, product)
    db.session.commit()
    return _json({"ProductGuid": guid})


@bp.get("/v1/<int:org>/products/<guid>")
@api()
def get_product(store, guid):
    return _json(_product_read(store, _existing(store, "products", guid, "The product")))


@bp.put("/v1/<int:org>/products/<guid>")
@api("write")
def update_product(store, guid):
    product = _existing(store, "products", guid, "The product")
    product = {**product, **_product_fields(store, _body()), "UpdatedAt": _iso(_now())}
    store.put("products", product["ProductGuid"], product)
    db.session.commit()
    return Response(status=200)


# --- invoices and credit notes: calculation -----------------------------------------------------------


def _account_rate(store, number) -> Decimal:
    account = store.get("accounts", number)
    if account is None or not account["VatCode"]:
        return Decimal("0")
    vat = store.get("vat_types", account["VatCode"])
    return Decimal(vat["VatRate"]) if vat else Decimal("0")


def _read_lines(store, payload: dict, errors: dict) -> list[dict]:
    lines = payload.get("ProductLines")
    if not isinstance(lines, list) or not lines:
        errors["ProductLines"] = "At least one product line is required."
        return []
    result = []
    for index, raw in enumerate(lines):
        where = f"ProductLines[{index}]"
        if not isinstance(raw, dict):
            errors[where] = "A product line must be an object."
            continue
        line = {
            "ProductGuid": _guid(raw, "ProductGuid", errors, path=f"{where}.ProductGuid"),
            "Description": _string(raw, "Description", errors=errors, path=f"{where}.Description"),
            "Comments": _string(raw, "Comments", errors=errors, path=f"{where}.Comments"),
            "Quantity": _decimal(raw, "Quantity", required=True, errors=errors, path=f"{where}.Quantity"),
            "AccountNumber": _integer(
                raw, "AccountNumber", required=True, errors=errors, path=f"{where}.AccountNumber"
            ),
            "Unit": _string(raw, "Unit", errors=errors, path=f"{where}.Unit"),
            "Discount": _decimal(raw, "Discount", required=True, errors=errors, path=f"{where}.Discount"),
            "LineType": _string(raw, "LineType", errors=errors, path=f"{where}.LineType") or "Product",
            "BaseAmountValue": _decimal(
                raw, "BaseAmountValue", required=True, errors=errors, path=f"{where}.BaseAmountValue"
            ),
        }
        if line["LineType"] not in ("Product", "Text"):
            errors[f"{where}.LineType"] = "LineType must be Product or Text."
        product = None
        if line["ProductGuid"]:
            product = store.get("products", line["ProductGuid"])
            if product is None or product.get("DeletedAt"):
                errors[f"{where}.ProductGuid"] = "The product does not exist."
        if line["LineType"] == "Product":
            if not line["Description"] and product is None:
                errors[f"{where}.Description"] = "Description is required when no ProductGuid is given."
            if not line["Unit"]:
                errors[f"{where}.Unit"] = "Unit is required for product lines."
            elif line["Unit"] not in UNITS:
                errors[f"{where}.Unit"] = f"Unknown unit '{line['Unit']}'."
            number = line["AccountNumber"]
            if number is not None and store.get("accounts", number) is None:
                errors[f"{where}.AccountNumber"] = f"The account {number} does not exist."
            discount = line["Discount"]
            if discount is not None and not Decimal(0) <= discount <= Decimal(100):
                errors[f"{where}.Discount"] = "Discount must be a percentage from 0 to 100."
        if product is not None and not line["Description"]:
            line["Description"] = product["Name"]
        for key in ("Quantity", "Discount", "BaseAmountValue"):
            if line[key] is not None:
                line[key] = str(line[key])
        result.append(line)
    return result


def calculate(store, lines: list[dict], incl_vat: bool) -> dict:
    """Line sums and totals the way the sandbox believes Dinero computes them (see the docs):

    - a line's total is quantity x unit amount x (1 - discount %), rounded to øre, on the side it was
      entered (excl. VAT, or incl. VAT with ShowLinesInclVat);
    - VAT comes from the line account's VAT code and is computed once per VAT rate on the sum of the
      line totals of that rate (the read model's "TotalVatableAmount: total amount to calculate the VAT
      from"), rounded to øre, half away from zero; the other side follows by subtraction.
    """
    rendered, by_rate = [], {}
    for line in lines:
        if line["LineType"] == "Text":
            continue
        rate = _account_rate(store, line["AccountNumber"])
        quantity, amount = Decimal(line["Quantity"]), Decimal(line["BaseAmountValue"])
        factor = 1 - Decimal(line["Discount"]) / 100
        total = _q2(quantity * amount * factor)
        if incl_vat:
            base_excl, base_incl = _q2(amount / (1 + rate)), amount
            total_excl, total_incl = _q2(total / (1 + rate)), total
        else:
            base_excl, base_incl = amount, _q2(amount * (1 + rate))
            total_excl, total_incl = total, _q2(total * (1 + rate))
        by_rate[rate] = by_rate.get(rate, Decimal(0)) + total
        rendered.append(
            {
                "BaseAmountValue": str(base_excl),
                "BaseAmountValueInclVat": str(base_incl),
                "TotalAmount": str(total_excl),
                "TotalAmountInclVat": str(total_incl),
            }
        )
    vat = vatable = non_vatable = Decimal(0)
    for rate, subtotal in by_rate.items():
        if rate == 0:
            non_vatable += subtotal
            continue
        rate_vat = _q2(subtotal * rate / (1 + rate)) if incl_vat else _q2(subtotal * rate)
        vat += rate_vat
        vatable += subtotal - rate_vat if incl_vat else subtotal
    if incl_vat:
        gross = sum(by_rate.values(), Decimal(0))
        net = gross - vat
    else:
        net = sum(by_rate.values(), Decimal(0))
        gross = net + vat
    return {
        "Lines": rendered,
        "TotalExclVat": str(net),
        "TotalVat": str(vat),
        "TotalInclVat": str(gross),
        "TotalVatableAmount": str(vatable),
        "TotalNonVatableAmount": str(non_vatable),
    }


def _payment_date(issued: str, condition: str, days: int) -> str:
    day = date.fromisoformat(issued)
    if condition == "CurrentMonthOut":
        last = calendar.monthrange(day.year, day.month)[1]
        return (day.replace(day=last) + timedelta(days=days)).isoformat()
    if condition in ("NettoCash", "Paid"):
        return day.isoformat()
    return (day + timedelta(days=days)).isoformat()


def _voucher_fields(store, payload: dict, *, credit_note=False) -> dict:
    """Header and lines shared by InvoiceCreateModel, InvoiceUpdateModel and SalesCreditNoteCreateModel."""
    errors = {}
    voucher = {
        "ContactGuid": _guid(payload, "ContactGuid", errors),
        "ShowLinesInclVat": bool(_bool(payload, "ShowLinesInclVat", errors=errors)),
        "InvoiceTemplateId": _guid(payload, "InvoiceTemplateId", errors),
        "Currency": (_string(payload, "Currency", errors=errors) or "DKK").upper(),
        "Language": _string(payload, "Language", errors=errors) or "da-DK",
        "ExternalReference": _string(payload, "ExternalReference", errors=errors, max_length=128),
        "Description": _string(payload, "Description", errors=errors),
        "Comment": _string(payload, "Comment", errors=errors),
        "Date": _date(payload, "Date", errors) or date.today().isoformat(),
        "Address": _string(payload, "Address", errors=errors),
        "ProductLines": _read_lines(store, payload, errors),
    }
    if credit_note:
        voucher["CreditNoteFor"] = _guid(payload, "CreditNoteFor", errors)
    else:
        voucher.update(
            PaymentConditionType=_string(payload, "PaymentConditionType", errors=errors),
            PaymentConditionNumberOfDays=_integer(payload, "PaymentConditionNumberOfDays", errors=errors),
            ReminderFee=_decimal(payload, "ReminderFee", errors=errors),
            ReminderInterestRate=_decimal(payload, "ReminderInterestRate", errors=errors),
            IsMobilePayInvoiceEnabled=bool(_bool(payload, "IsMobilePayInvoiceEnabled", errors=errors)),
            IsPensoPayEnabled=bool(_bool(payload, "IsPensoPayEnabled", errors=errors)),
        )
        condition = voucher["PaymentConditionType"]
        if condition and condition not in PAYMENT_CONDITIONS:
            errors["PaymentConditionType"] = "Valid types are: Netto, NettoCash, CurrentMonthOut, or Paid."
        for name in ("ReminderFee", "ReminderInterestRate"):
            value = voucher[name]
            if value is not None and not Decimal(0) <= value <= Decimal(100):
                errors[name] = f"{name} should be nonnegative and at most 100."
            voucher[name] = None if value is None else str(value)
    if voucher["Currency"] not in EXCHANGE_RATES:
        errors["Currency"] = f"The currency {voucher['Currency']} is not supported."
    if voucher["Language"] not in ("da-DK", "en-GB"):
        errors["Language"] = "Available languages are 'da-DK' and 'en-GB'."
    contact = None
    if voucher["ContactGuid"]:
        contact = store.get("contacts", voucher["ContactGuid"])
        if contact is None or contact.get("DeletedAt"):
            errors["ContactGuid"] = "The contact does not exist."
    if voucher["InvoiceTemplateId"] and store.get("templates", voucher["InvoiceTemplateId"]) is None:
        errors["InvoiceTemplateId"] = "The template does not exist."
    if errors:
        raise _invalid(errors)
    settings = store.get("settings", "sales")
    voucher["InvoiceTemplateId"] = voucher["InvoiceTemplateId"] or settings["InvoiceTemplateId"]
    voucher["ContactName"] = contact["Name"] if contact else None
    if not credit_note:
        # Empty conditions default to the contact's, then to the sales settings.
        if not voucher["PaymentConditionType"] and voucher["PaymentConditionNumberOfDays"] is None:
            source = contact if contact and contact.get("PaymentConditionType") else settings
            voucher["PaymentConditionType"] = source["PaymentConditionType"]
            voucher["PaymentConditionNumberOfDays"] = source.get("PaymentConditionNumberOfDays")
        voucher["PaymentConditionType"] = voucher["PaymentConditionType"] or "Netto"
        if voucher["PaymentConditionType"] in ("NettoCash", "Paid"):
            voucher["PaymentConditionNumberOfDays"] = 0
        elif voucher["PaymentConditionNumberOfDays"] is None:
            voucher["PaymentConditionNumberOfDays"] = settings["PaymentConditionNumberOfDays"]
        voucher["ReminderFee"] = voucher["ReminderFee"] or settings["ReminderFee"]
        voucher["ReminderInterestRate"] = voucher["ReminderInterestRate"] or settings["ReminderInterestRate"]
    voucher["Calc"] = calculate(store, voucher["ProductLines"], voucher["ShowLinesInclVat"])
    return voucher


def _lines_read(store, voucher: dict) -> list[dict]:
    lines, calc_lines = [], iter(voucher["Calc"]["Lines"])
    for line in voucher["ProductLines"]:
        account = store.get("accounts", line["AccountNumber"])
        if line["LineType"] == "Text":
            sums = dict.fromkeys(
                ("BaseAmountValue", "BaseAmountValueInclVat", "TotalAmount", "TotalAmountInclVat"), "0"
            )
        else:
            sums = next(calc_lines)
        lines.append(
            {
                "AccountName": account["Name"] if account else None,
                "BaseAmountValue": _money(sums["BaseAmountValue"]),
                "BaseAmountValueInclVat": _money(sums["BaseAmountValueInclVat"]),
                "TotalAmount": _money(sums["TotalAmount"]),
                "TotalAmountInclVat": _money(sums["TotalAmountInclVat"]),
                "ProductGuid": line["ProductGuid"],
                "Description": line["Description"],
                "Comments": line["Comments"],
                "Quantity": _money(line["Quantity"]),
                "AccountNumber": line["AccountNumber"],
                "Unit": line["Unit"],
                "Discount": _money(line["Discount"]),
                "LineType": line["LineType"],
            }
        )
    return lines


def _total_lines(voucher: dict) -> list[dict]:
    calc, currency = voucher["Calc"], voucher["Currency"]
    english = voucher["Language"] == "en-GB"
    return [
        {"Type": "SubTotal", "TotalAmount": _money(calc["TotalExclVat"]), "Position": 0,
         "Label": "Subtotal"},
        {"Type": "Vat", "TotalAmount": _money(calc["TotalVat"]), "Position": 1,
         "Label": "VAT" if english else "Moms"},
        {"Type": "Total", "TotalAmount": _money(calc["TotalInclVat"]), "Position": 2,
         "Label": f"Total {currency}" if english else f"I alt {currency}"},
    ]  # fmt: skip


def _totals_read(voucher: dict) -> dict:
    calc = voucher["Calc"]
    return {
        "TotalExclVat": _money(calc["TotalExclVat"]),
        "TotalVatableAmount": _money(calc["TotalVatableAmount"]),
        "TotalInclVat": _money(calc["TotalInclVat"]),
        "TotalNonVatableAmount": _money(calc["TotalNonVatableAmount"]),
        "TotalVat": _money(calc["TotalVat"]),
    }


def _paid(voucher: dict) -> Decimal:
    return sum((Decimal(p["Amount"]) for p in voucher.get("Payments", [])), Decimal(0))


def _payment_status(voucher: dict) -> str:
    if voucher["Status"] == "Draft":
        return "Draft"
    total = Decimal(voucher["Calc"]["TotalInclVat"])
    settled = _paid(voucher) + Decimal(voucher.get("FeeAmount") or 0)
    if settled > total:
        return "OverPaid"
    if settled == total:
        return "Paid"
    if voucher.get("PaymentDate") and voucher["PaymentDate"] < date.today().isoformat():
        return "Overdue"
    return "Booked"


def _common_read(store, voucher: dict) -> dict:
    return {
        "Status": voucher["Status"],
        "ContactGuid": voucher["ContactGuid"],
        "Guid": voucher["Guid"],
        "TimeStamp": voucher["TimeStamp"],
        "CreatedAt": voucher["CreatedAt"],
        "UpdatedAt": voucher["UpdatedAt"],
        "DeletedAt": voucher["DeletedAt"],
        "Number": voucher["Number"],
        "ContactName": voucher["ContactName"],
        "ShowLinesInclVat": voucher["ShowLinesInclVat"],
        **_totals_read(voucher),
        "TotalLines": _total_lines(voucher),
        "InvoiceTemplateId": voucher["InvoiceTemplateId"],
        "Currency": voucher["Currency"],
        "Language": voucher["Language"],
        "ExternalReference": voucher["ExternalReference"],
        "Description": voucher["Description"] or _default_description(voucher),
        "Comment": voucher["Comment"],
        "Date": voucher["Date"],
        "ProductLines": _lines_read(store, voucher),
        "Address": voucher["Address"] if voucher["Address"] is not None else _contact_address(store, voucher),
    }


def _default_description(voucher: dict) -> str:
    english = voucher["Language"] == "en-GB"
    if voucher["Kind"] == "creditnote":
        return "Credit note" if english else "Kreditnota"
    return "Invoice" if english else "Faktura"


def _contact_address(store, voucher: dict) -> str | None:
    contact = voucher["ContactGuid"] and store.get("contacts", voucher["ContactGuid"])
    if not contact:
        return None
    city = " ".join(part for part in (contact.get("ZipCode"), contact.get("City")) if part)
    return "\n".join(part for part in (contact["Name"], contact.get("Street"), city) if part)


def invoice_read(store, voucher: dict) -> dict:
    """InvoiceReadModel (also what booking a credit note answers, per the document)."""
    return {
        "PaymentDate": voucher.get("PaymentDate"),
        "PaymentStatus": _payment_status(voucher),
        "PaymentConditionNumberOfDays": voucher.get("PaymentConditionNumberOfDays") or 0,
        "PaymentConditionType": voucher.get("PaymentConditionType"),
        "FikCode": None,
        "DepositAccountNumber": None,
        "MailOutStatus": voucher["MailOutStatus"],
        "LatestMailOutType": voucher["LatestMailOutType"],
        "IsSentToDebtCollection": False,
        "IsMobilePayInvoiceEnabled": voucher.get("IsMobilePayInvoiceEnabled", False),
        "IsPensoPayEnabled": voucher.get("IsPensoPayEnabled", False),
        **_common_read(store, voucher),
    }


def creditnote_read(store, voucher: dict) -> dict:
    return {
        "CreditNoteFor": voucher["CreditNoteFor"],
        "MailOutStatus": voucher["MailOutStatus"],
        "LatestMailOutType": voucher["LatestMailOutType"],
        "PaymentStatus": _payment_status(voucher),
        **_common_read(store, voucher),
    }


def _list_item(voucher: dict) -> dict:
    calc = voucher["Calc"]
    rate = EXCHANGE_RATES[voucher["Currency"]]
    return {
        "Number": voucher["Number"],
        "Guid": voucher["Guid"],
        "ExternalReference": voucher["ExternalReference"],
        "Date": voucher["Date"],
        "PaymentDate": voucher.get("PaymentDate") if voucher["Kind"] == "invoice" else None,
        "Description": voucher["Description"] or _default_description(voucher),
        "Status": _payment_status(voucher),
        "Type": "Invoice" if voucher["Kind"] == "invoice" else "CreditNote",
        "ContactName": voucher["ContactName"],
        "ContactGuid": voucher["ContactGuid"],
        "TotalInclVat": _money(calc["TotalInclVat"]),
        "TotalExclVat": _money(calc["TotalExclVat"]),
        "TotalInclVatInDkk": _money(_q2(Decimal(calc["TotalInclVat"]) * rate)),
        "TotalExclVatInDkk": _money(_q2(Decimal(calc["TotalExclVat"]) * rate)),
        "MailOutStatus": voucher["MailOutStatus"],
        "LatestMailOutType": voucher["LatestMailOutType"],
        "Currency": voucher["Currency"],
        "CreatedAt": voucher["CreatedAt"],
        "UpdatedAt": voucher["UpdatedAt"],
        "DeletedAt": voucher["DeletedAt"],
    }


SALES_FILTERABLE = ("ExternalReference", "ContactGuid", "Description")
SORT_KEYS = {"vouchernumber": "Number", "voucherdate": "Date", "status": "Status", "contact": "ContactName"}
STATUS_ORDER = {"Draft": 0, "Overdue": 1, "Booked": 2, "OverPaid": 3, "Paid": 4}


def _list_sales(store, collections, default_fields):
    conditions = parse_query_filter(request.args.get("queryFilter", ""), SALES_FILTERABLE)
    start, end = request.args.get("startDate"), request.args.get("endDate")
    if bool(start) != bool(end):
        raise _invalid({"startDate": "If you define a start date, you also need to define an end date."})
    statuses = {s.strip().lower() for s in (request.args.get("statusFilter") or "").split(",") if s.strip()}
    items = []
    for collection in collections:
        for voucher in store.all(collection):
            item = _list_item(voucher)
            dated = voucher["Status"] == "Draft" or not start or start <= voucher["Date"] <= end
            if dated and (not statuses or item["Status"].lower() in statuses) and _matches(item, conditions):
                items.append(item)
    items = _filter_changed(_deleted_filter(items))
    keys = [
        SORT_KEYS.get(k.strip().lower())
        for k in request.args.get("sort", "VoucherNumber,VoucherDate").split(",")
    ]
    if None in keys:
        raise _invalid({"sort": "Possible values are: VoucherNumber, VoucherDate, Status and Contact."})
    descending = request.args.get("sortOrder", "descending").lower() != "ascending"

    def sort_key(item):
        return tuple(
            STATUS_ORDER[item["Status"]]
            if key == "Status"
            else (item[key] or "")
            if key != "Number"
            else item[key]
            for key in keys
        )

    items.sort(key=sort_key, reverse=descending)
    return _paged(items, default_fields)


@bp.get("/v1/<int:org>/invoices")
@api()
def list_invoices(store):
    return _list_sales(store, ("invoices",), "Guid,ContactName,Date,Description")


@bp.get("/v1/<int:org>/sales/creditnotes")
@api()
def list_creditnotes(store):
    return _list_sales(store, ("creditnotes",), "Guid,ContactName,Date,Description,Type")


@bp.get("/v1/<int:org>/sales")
@api()
def list_sales(store):
    return _list_sales(store, ("invoices", "creditnotes"), "Guid,ContactName,Date,Description,Type")


def _store_new_voucher(store, collection, kind, payload, voucher):
    errors = {}
    guid = _guid(payload, "Guid", errors)
    if errors:
        raise _invalid(errors)
    guid = guid or str(uuid.uuid4())
    # A replayed Guid is refused rather than duplicated (guess; see the docs).
    if store.get("invoices", guid) is not None or store.get("creditnotes", guid) is not None:
        raise _invalid(
            {"Guid": f"A voucher with the guid {guid} already exists."},
            {"Guid": f"Der findes allerede et bilag med guid {guid}."},
        )
    now = _iso(_now())
    voucher.update(
        Guid=guid,
        Kind=kind,
        Status="Draft",
        Number=0,
        TimeStamp=_new_timestamp(store),
        CreatedAt=now,
        UpdatedAt=now,
        DeletedAt=None,
        MailOutStatus="NotSent",
        LatestMailOutType="None",
        Payments=[],
        Mailouts=[],
    )
    if kind == "invoice":
        voucher["PaymentDate"] = _payment_date(
            voucher["Date"], voucher["PaymentConditionType"], voucher["PaymentConditionNumberOfDays"]
        )
    store.put(collection, guid, voucher)
    db.session.commit()
    return _json({"Guid": guid, "TimeStamp": voucher["TimeStamp"]})


@bp.post("/v1/<int:org>/invoices")
@api("write")
def create_invoice(store):
    payload = _body()
    return _store_new_voucher(store, "invoices", "invoice", payload, _voucher_fields(store, payload))


@bp.post("/v1/<int:org>/invoices/fetch")
@api()
def fetch_invoice(store):
    payload = _body()
    voucher = _voucher_fields(store, payload)
    voucher.update(Kind="invoice", Number=0)
    common = _common_read(store, {**voucher, "Status": "Draft", "Guid": None, "TimeStamp": None,
                                  "CreatedAt": None, "UpdatedAt": None, "DeletedAt": None})  # fmt: skip
    return _json(
        {
            "PaymentDate": _payment_date(
                voucher["Date"], voucher["PaymentConditionType"], voucher["PaymentConditionNumberOfDays"]
            ),
            "PaymentConditionNumberOfDays": voucher["PaymentConditionNumberOfDays"],
            "PaymentConditionType": voucher["PaymentConditionType"],
            "CanEnableMobilePayInvoice": False,
            "CanEnablePensoPay": False,
            **{key: common[key] for key in _FETCH_KEYS},
        }
    )


_FETCH_KEYS = [
    "ContactGuid",
    "Number",
    "ContactName",
    "ShowLinesInclVat",
    "TotalExclVat",
    "TotalVatableAmount",
    "TotalInclVat",
    "TotalNonVatableAmount",
    "TotalVat",
    "TotalLines",
    "InvoiceTemplateId",
    "Currency",
    "Language",
    "ExternalReference",
    "Description",
    "Comment",
    "Date",
    "ProductLines",
    "Address",
]


@bp.post("/v1/<int:org>/sales/creditnotes/fetch")
@api()
def fetch_creditnote(store):
    payload = _body()
    voucher = _voucher_fields(store, payload, credit_note=True)
    voucher.update(Kind="creditnote", Number=0)
    common = _common_read(store, {**voucher, "Status": "Draft", "Guid": None, "TimeStamp": None,
                                  "CreatedAt": None, "UpdatedAt": None, "DeletedAt": None})  # fmt: skip
    return _json({"CreditNoteFor": voucher["CreditNoteFor"], **{key: common[key] for key in _FETCH_KEYS}})


def _invoice(store, guid) -> dict:
    return _existing(store, "invoices", guid, "The invoice")


def _creditnote(store, guid) -> dict:
    return _existing(store, "creditnotes", guid, "The credit note")


@bp.get("/v1/<int:org>/invoices/<guid>")
@api()
def get_invoice(store, guid):
    voucher = _invoice(store, guid)
    if request.accept_mimetypes.best == "application/octet-stream":
        return _pdf(voucher)
    return _json(invoice_read(store, voucher))


def _pdf(voucher: dict, mimetype: str = "application/octet-stream") -> Response:
    if voucher["Status"] == "Draft":
        raise _invalid({"Accept": "PDF's can only be generated from booked vouchers."})
    kind = "Kreditnota" if voucher["Kind"] == "creditnote" else "Faktura"
    total = voucher["Calc"]["TotalInclVat"]
    body = invoice_pdf(
        "Dinero", kind, voucher["Number"], total, voucher["Currency"], voucher["ContactName"] or ""
    )
    return Response(body, mimetype=mimetype)


def _check_timestamp(voucher: dict, payload: dict, *, required: bool):
    given = payload.get("Timestamp")
    if given in (None, ""):
        if required:
            raise _invalid({"Timestamp": "The Timestamp field is required."})
        return
    if given != voucher["TimeStamp"]:
        raise _outdated()


def _touch(store, collection, voucher: dict) -> dict:
    voucher["TimeStamp"] = _new_timestamp(store)
    voucher["UpdatedAt"] = _iso(_now())
    store.put(collection, voucher["Guid"], voucher)
    db.session.commit()
    return voucher


@bp.put("/v1.2/<int:org>/invoices/<guid>")
@api("write")
def update_invoice(store, guid):
    voucher = _invoice(store, guid)
    payload = _body()
    _check_timestamp(voucher, payload, required=True)
    if voucher["Status"] != "Draft":
        raise _invalid({"Status": "A booked invoice cannot be updated."})
    changes = _voucher_fields(store, payload)
    voucher.update(changes)
    voucher["PaymentDate"] = _payment_date(
        voucher["Date"], voucher["PaymentConditionType"], voucher["PaymentConditionNumberOfDays"]
    )
    voucher = _touch(store, "invoices", voucher)
    return _json({"Guid": voucher["Guid"], "TimeStamp": voucher["TimeStamp"]})


@bp.delete("/v1/<int:org>/invoices/<guid>")
@api("write")
def delete_invoice(store, guid):
    voucher = _invoice(store, guid)
    payload = json.loads(request.get_data() or b"{}") or {}
    _check_timestamp(voucher, payload, required=False)
    if voucher["Status"] != "Draft":
        raise _invalid({"Status": "A booked invoice cannot be deleted; credit it instead."})
    voucher["DeletedAt"] = _iso(_now())
    _touch(store, "invoices", voucher)
    return Response(status=200)


def _book(store, collection, voucher, counter):
    payload = _body()
    _check_timestamp(voucher, payload, required=True)
    if voucher["Status"] != "Draft":
        raise _invalid(
            {"Status": "The voucher is already booked."}, {"Status": "Bilaget er allerede bogført."}
        )
    if not voucher["ContactGuid"]:
        raise _invalid(
            {"ContactGuid": "A contact is required to book the voucher."},
            {"ContactGuid": "Der skal vælges en kontakt for at bogføre bilaget."},
        )
    years = sorted(year["FromDate"] for year in store.all("years"))
    if years and voucher["Date"] < years[0]:
        # a guess (docs/connectors/dinero.md): nothing is booked before the organisation's first year
        raise _invalid(
            {"Date": f"The date is before the first accounting year, which begins {years[0]}."},
            {"Date": f"Datoen ligger før det første regnskabsår, som begynder {years[0]}."},
        )
    number = payload.get("Number")
    taken = {v["Number"] for v in store.all(collection) if v["Status"] != "Draft"}
    if number is None:
        number = store.next_number(counter)
        while number in taken:
            number = store.next_number(counter)
    elif number in taken:
        raise _invalid({"Number": f"The number {number} is already taken."})
    voucher.update(Status="Booked", Number=number, BookedAt=_iso(_now()))
    return _touch(store, collection, voucher)


@bp.post("/v1/<int:org>/invoices/<guid>/book")
@api("write")
def book_invoice(store, guid):
    voucher = _book(store, "invoices", _invoice(store, guid), "invoice_number")
    return _json(invoice_read(store, voucher))


@bp.post("/v1/<int:org>/sales/creditnotes/<guid>/book")
@api("write")
def book_creditnote(store, guid):
    voucher = _book(store, "creditnotes", _creditnote(store, guid), "creditnote_number")
    return _json(invoice_read(store, voucher))


def _send_email(store, collection, voucher):
    payload = _body()
    errors = {}
    trustpilot = _bool(payload, "ShouldAddTrustPilotEmailAsBcc", required=True, errors=errors)
    receiver = _string(payload, "Receiver", errors=errors)
    message = _string(payload, "Message", errors=errors)
    subject = _string(payload, "Subject", errors=errors)
    sender = _string(payload, "Sender", errors=errors)
    if errors:
        raise _invalid(errors)
    _check_timestamp(voucher, payload, required=False)
    if voucher["Status"] == "Draft":
        raise _invalid({"Status": "The voucher must be booked before it can be sent."})
    if not receiver:
        contact = voucher["ContactGuid"] and store.get("contacts", voucher["ContactGuid"])
        receiver = contact and contact.get("Email")
        if not receiver:
            raise _invalid({"Receiver": "No receiver given and the contact has no e-mail address."})
    if message and "[link-to-pdf]" not in message:
        raise _invalid({"Message": "The message must contain the tag [link-to-pdf]."})
    recipients = [address.strip() for address in receiver.split(",") if address.strip()]
    if not all("@" in address for address in recipients):
        raise _invalid({"Receiver": "One or more receiver e-mail addresses are not valid."})
    voucher["Mailouts"].append(
        {
            "Receivers": recipients,
            "Sender": sender or ORGANIZATIONS[int(store.tenant)]["Email"],
            "Subject": subject or f"{_default_description(voucher)} {voucher['Number']}",
            "Message": message,
            "TrustPilotBcc": trustpilot,
            "SentAt": _iso(_now()),
        }
    )
    voucher.update(MailOutStatus="Sent", LatestMailOutType="Mailout")
    _touch(store, collection, voucher)
    return _json({"Recipients": [{"Email": address} for address in recipients]})


@bp.post("/v1/<int:org>/invoices/<guid>/email")
@api("write")
def email_invoice(store, guid):
    return _send_email(store, "invoices", _invoice(store, guid))


@bp.post("/v1/<int:org>/sales/creditnotes/<guid>/email")
@api("write")
def email_creditnote(store, guid):
    return _send_email(store, "creditnotes", _creditnote(store, guid))


# --- payments -----------------------------------------------------------------------------------------------


def _add_payment(store, collection, voucher, payment_class):
    payload = _body()
    errors = {}
    payment = {
        "DepositAccountNumber": _integer(payload, "DepositAccountNumber", required=True, errors=errors),
        "RemainderIsFee": _bool(payload, "RemainderIsFee", required=True, errors=errors),
        "AmountInForeignCurrency": _decimal(payload, "AmountInForeignCurrency", errors=errors),
        "ExternalReference": _string(payload, "ExternalReference", errors=errors, max_length=128),
        "PaymentDate": _date(payload, "PaymentDate", errors) or date.today().isoformat(),
        "Description": _string(payload, "Description", required=True, errors=errors),
        "Amount": _decimal(payload, "Amount", required=True, errors=errors),
    }
    if not payload.get("Timestamp"):
        errors["Timestamp"] = "The Timestamp field is required."
    if payment["Amount"] is not None and payment["Amount"] == 0:
        errors["Amount"] = "Amount has to be different from 0."
    number = payment["DepositAccountNumber"]
    account = number is not None and store.get("accounts", number)
    if number is not None and not (account and account["IsDeposit"]):
        errors["DepositAccountNumber"] = f"The account {number} is not a deposit account."
    if voucher["Currency"] != "DKK" and payment["AmountInForeignCurrency"] is None:
        errors["AmountInForeignCurrency"] = (
            "AmountInForeignCurrency is required for a voucher in foreign currency."
        )
    if errors:
        raise _invalid(errors)
    _check_timestamp(voucher, payload, required=True)
    if voucher["Status"] == "Draft":
        raise _invalid({"Status": "Payments can only be added to a booked voucher."})
    guid, related = str(uuid.uuid4()), str(uuid.uuid4())
    foreign = payment.pop("AmountInForeignCurrency")
    rate = Decimal(100)
    if foreign:
        rate = (payment["Amount"] / foreign * 100).quantize(Decimal("0.0001"))
    remainder_is_fee = payment.pop("RemainderIsFee")
    payment.update(
        Guid=guid,
        Currency=voucher["Currency"],
        ExchangeRate=str(rate),
        PaymentClass=payment_class,
        RelatedVoucherId=related,
        Amount=str(payment["Amount"]),
    )
    voucher["Payments"].append(payment)
    if remainder_is_fee:
        remaining = Decimal(voucher["Calc"]["TotalInclVat"]) - _paid(voucher)
        voucher["FeeAmount"] = str(max(remaining, Decimal(0)))
    voucher = _touch(store, collection, voucher)
    return _json({"Guid": guid, "TimeStamp": voucher["TimeStamp"], "RelatedVoucherGuid": related})


def _payments_read(voucher) -> dict:
    total = Decimal(voucher["Calc"]["TotalInclVat"])
    paid = _paid(voucher)
    fee = Decimal(voucher.get("FeeAmount") or 0)
    return {
        "Payments": [
            {
                "Guid": p["Guid"],
                "DepositAccountNumber": p["DepositAccountNumber"],
                "Currency": p["Currency"],
                "ExchangeRate": _money(p["ExchangeRate"]),
                "PaymentClass": p["PaymentClass"],
                "RelatedVoucherId": p["RelatedVoucherId"],
                "ExternalReference": p["ExternalReference"],
                "PaymentDate": p["PaymentDate"],
                "Description": p["Description"],
                "Amount": _money(p["Amount"]),
            }
            for p in voucher["Payments"]
        ],
        "RemainingAmount": _money(total - paid - fee),
        "PaidAmount": _money(paid),
        "InvoiceTotalIncludingReminderExpenses": _money(total),
        "RemainderAsFeeAvailable": voucher["Status"] != "Draft" and total - paid > 0,
    }


@bp.post("/v1/<int:org>/invoices/<guid>/payments")
@api("write")
def add_invoice_payment(store, guid):
    return _add_payment(store, "invoices", _invoice(store, guid), "InvoicePayment")


@bp.get("/v2/<int:org>/invoices/<guid>/payments")
@api()
def invoice_payments(store, guid):
    return _json(_payments_read(_invoice(store, guid)))


@bp.post("/v1/<int:org>/sales/creditnotes/<guid>/payments")
@api("write")
def add_creditnote_payment(store, guid):
    return _add_payment(store, "creditnotes", _creditnote(store, guid), "CreditNotePayment")


@bp.get("/v1/<int:org>/sales/creditnotes/<guid>/payments")
@api()
def creditnote_payments(store, guid):
    return _json(_payments_read(_creditnote(store, guid)))


# --- credit notes -------------------------------------------------------------------------------------------


@bp.post("/v1/<int:org>/sales/creditnotes")
@api("write")
def create_creditnote(store):
    payload = _body()
    voucher = _voucher_fields(store, payload, credit_note=True)
    if voucher["CreditNoteFor"]:
        invoice = store.get("invoices", voucher["CreditNoteFor"])
        if invoice is None or invoice.get("DeletedAt"):
            raise _invalid({"CreditNoteFor": "The invoice to credit does not exist."})
        if invoice["Status"] == "Draft":
            raise _invalid({"CreditNoteFor": "Only a booked invoice can be credited."})
    return _store_new_voucher(store, "creditnotes", "creditnote", payload, voucher)


@bp.get("/v1/<int:org>/sales/creditnotes/<guid>")
@api()
def get_creditnote(store, guid):
    voucher = _creditnote(store, guid)
    if request.accept_mimetypes.best == "application/octet-stream":
        return _pdf(voucher)
    return _json(creditnote_read(store, voucher))


@bp.get("/v1/<int:org>/sales/creditnotes/<guid>/pdf")
@api()
def get_creditnote_pdf(store, guid):
    """ "Get credit note as pdf" (booked credit notes only, like the invoice's octet-stream answer)."""
    return _pdf(_creditnote(store, guid), "application/pdf")


@bp.post("/v1/<int:org>/invoices/<guid>/generate-creditnote")
@api("write")
def generate_creditnote(store, guid):
    invoice = _invoice(store, guid)
    payload = json.loads(request.get_data() or b"{}") or {}
    _check_timestamp(invoice, payload, required=False)
    if invoice["Status"] == "Draft":
        raise _invalid({"Status": "Only a booked invoice can be credited."})
    copy = {
        key: invoice[key]
        for key in [
            "ContactGuid",
            "ShowLinesInclVat",
            "InvoiceTemplateId",
            "Currency",
            "Language",
            "Comment",
            "Address",
            "ProductLines",
            "Calc",
            "ContactName",
        ]
    }
    # The copy does not carry the invoice's ExternalReference (guess), so a lookup by reference stays unique.
    copy.update(
        CreditNoteFor=invoice["Guid"], ExternalReference=None, Description=None, Date=date.today().isoformat()
    )
    return _store_new_voucher(store, "creditnotes", "creditnote", {}, copy)


# --- manual vouchers ("finansbilag") ----------------------------------------------------------------------


def _vat_code(store, code):
    return None if code in (None, "none") else store.get("vat_types", code)


def _manual_lines(store, payload, errors) -> list[dict]:
    lines = payload.get("Lines")
    if not isinstance(lines, list) or not lines:
        errors["Lines"] = "At least one line is required."
        return []
    result = []
    for index, raw in enumerate(lines):
        where = f"Lines[{index}]"
        line = {
            "Description": _string(raw, "Description", errors=errors, path=f"{where}.Description"),
            "AccountNumber": _integer(raw, "AccountNumber", errors=errors, path=f"{where}.AccountNumber"),
            "BalancingAccountNumber": _integer(
                raw, "BalancingAccountNumber", errors=errors, path=f"{where}.BalancingAccountNumber"
            ),
            "Amount": _decimal(raw, "Amount", required=True, errors=errors, path=f"{where}.Amount"),
            "AccountVatCode": _string(raw, "AccountVatCode", errors=errors, path=f"{where}.AccountVatCode"),
            "BalancingAccountVatCode": _string(
                raw, "BalancingAccountVatCode", errors=errors, path=f"{where}.BalancingAccountVatCode"
            ),
        }
        for key in ("AccountNumber", "BalancingAccountNumber"):
            if line[key] is not None and store.get("accounts", line[key]) is None:
                errors[f"{where}.{key}"] = f"The account {line[key]} does not exist."
        if line["AccountNumber"] is None and line["BalancingAccountNumber"] is None:
            errors[f"{where}.AccountNumber"] = "An account or a balancing account is required."
        if line["AccountNumber"] is not None and line["AccountNumber"] == line["BalancingAccountNumber"]:
            errors[f"{where}.BalancingAccountNumber"] = "The account and the balancing account must differ."
        for key in ("AccountVatCode", "BalancingAccountVatCode"):
            code = line[key]
            if code not in (None, "none") and store.get("vat_types", code) is None:
                errors[f"{where}.{key}"] = f"The VAT code {code} does not exist."
        if line["Amount"] is not None and line["Amount"] == 0:
            errors[f"{where}.Amount"] = "Amount has to be different from 0."
        result.append(line)
    # Lines with only one side must balance each other (guess; see the docs).
    one_sided = [line for line in result if line["Amount"] is not None and
                 (line["AccountNumber"] is None or line["BalancingAccountNumber"] is None)]  # fmt: skip
    signed = sum(
        (line["Amount"] if line["AccountNumber"] is not None else -line["Amount"] for line in one_sided),
        Decimal(0),
    )
    if one_sided and signed != 0:
        errors["Lines"] = "The voucher does not balance: lines without a balancing account must sum to 0."
    for line in result:
        if line["Amount"] is not None:
            line["Amount"] = str(line["Amount"])
    return result


def _manual_line_read(store, line: dict) -> dict:
    code = line["AccountVatCode"]
    if code is None and line["AccountNumber"] is not None:
        code = store.get("accounts", line["AccountNumber"])["VatCode"]
    if code in (None, "none") and line["BalancingAccountNumber"] is not None:
        code = (
            line["BalancingAccountVatCode"]
            or store.get("accounts", line["BalancingAccountNumber"])["VatCode"]
        )
    vat = _vat_code(store, code)
    rate = Decimal(vat["VatRate"]) if vat else Decimal(0)
    amount = Decimal(line["Amount"])
    # Purchase codes: the amount includes VAT; sales and foreign codes: it excludes VAT.
    if vat and code.startswith("I"):
        vat_amount = _q2(amount * rate / (1 + rate))
        excl, incl = amount - vat_amount, amount
    else:
        vat_amount = _q2(amount * rate)
        excl, incl = amount, amount + vat_amount
    return {
        "Description": line["Description"],
        "AmountExclVatValue": _money(excl),
        "AmountInclVatValue": _money(incl),
        "VatAmountValue": _money(vat_amount),
        "AccountNumber": line["AccountNumber"],
        "BalancingAccountNumber": line["BalancingAccountNumber"],
        "AccountVatCode": line["AccountVatCode"],
        "BalancingAccountVatCode": line["BalancingAccountVatCode"],
        "CurrencyKey": "DKK",
        "AmountInForeignCurrency": None,
    }


def manual_voucher_read(store, voucher: dict) -> dict:
    lines = [_manual_line_read(store, line) for line in voucher["Lines"]]
    return {
        "VoucherNumber": voucher["VoucherNumber"],
        "VoucherDate": voucher["VoucherDate"],
        "TotalInclVat": _money(sum((Decimal(str(line["AmountInclVatValue"])) for line in lines), Decimal(0))),
        "TotalExclVat": _money(sum((Decimal(str(line["AmountExclVatValue"])) for line in lines), Decimal(0))),
        "FileGuid": voucher["FileGuid"],
        "Guid": voucher["Guid"],
        "CreditNoteFor": None,
        "Status": voucher["Status"],
        "Lines": lines,
        "Timestamp": voucher["Timestamp"],
        "ExternalReference": voucher["ExternalReference"],
        "BookedByType": voucher.get("BookedByType"),
        "BookedByUsername": voucher.get("BookedByUsername"),
        "BookingTime": voucher.get("BookingTime"),
    }


@bp.post("/v1/<int:org>/vouchers/manuel")
@api("write")
def create_manual_voucher(store):
    payload = _body()
    errors = {}
    voucher = {
        "VoucherDate": _date(payload, "VoucherDate", errors) or date.today().isoformat(),
        "FileGuid": _string(payload, "FileGuid", errors=errors),
        "ExternalReference": _string(payload, "ExternalReference", errors=errors, max_length=128),
        "Lines": _manual_lines(store, payload, errors),
    }
    if errors:
        raise _invalid(errors)
    voucher.update(
        Guid=str(uuid.uuid4()), VoucherNumber=None, Status="Draft", Timestamp=_new_timestamp(store)
    )
    store.put("vouchers", voucher["Guid"], voucher)
    db.session.commit()
    return _json(manual_voucher_read(store, voucher))


@bp.get("/v1/<int:org>/vouchers/manuel/<guid>")
@api()
def get_manual_voucher(store, guid):
    return _json(manual_voucher_read(store, _existing(store, "vouchers", guid, "The voucher")))


@bp.post("/v1/<int:org>/vouchers/manuel/<guid>/book")
@api("write")
def book_manual_voucher(store, guid):
    voucher = _existing(store, "vouchers", guid, "The voucher")
    payload = _body()
    if not payload.get("Timestamp"):
        raise _invalid({"Timestamp": "The Timestamp field is required."})
    if payload["Timestamp"] != voucher["Timestamp"]:
        raise _outdated()
    if voucher["Status"] == "Booked":
        raise _invalid({"Status": "The voucher is already booked."})
    token = _bearer_token()
    voucher.update(
        Status="Booked",
        VoucherNumber=store.next_number("voucher_number"),
        Timestamp=_new_timestamp(store),
        BookedByType=f"API ({token['ClientId']})",
        BookedByUsername=DEMO_USER["email"],
        BookingTime=_iso(_now()),
    )
    store.put("vouchers", guid, voucher)
    db.session.commit()
    return _json(manual_voucher_read(store, voucher))


def sent_mail(org: int, guid: str) -> list[dict]:
    """The e-mails the sandbox 'sent' for an invoice or credit note (for tests and demos)."""
    store = SandboxStore(SYSTEM, org)
    voucher = store.get("invoices", guid) or store.get("creditnotes", guid)
    return [] if voucher is None else voucher["Mailouts"]


@bp.get("/v1/<int:org>/state-of-account/<guid>")
@api()
def state_of_account(store, guid):
    """A contact's booked invoices (+) and credit notes (-) with their payments (which settle them), in date
    order, each entry with the running `Balance` (ContactStateOfAccount in openapi.json; the order of
    entries on one day and the entry `Type` texts are guesses)."""
    _existing(store, "contacts", guid, "The contact")
    moves = []
    for collection, sign, kind in (("invoices", 1, "invoice"), ("creditnotes", -1, "creditnote")):
        for voucher in store.all(collection):
            if voucher["ContactGuid"] != guid or voucher["Status"] == "Draft":
                continue
            total = Decimal(voucher["Calc"]["TotalInclVat"]) * sign
            moves.append((voucher.get("Date") or "", voucher, kind, "Voucher", total))
            for payment in voucher.get("Payments", []):
                moves.append(
                    (payment["PaymentDate"], voucher, kind, "Payment", -Decimal(payment["Amount"]) * sign)
                )
    balance, entries = Decimal(0), []
    for day, voucher, kind, what, amount in sorted(moves, key=lambda move: move[0]):
        balance += amount
        entries.append(
            {
                "RelatedVoucherGuid": voucher["Guid"],
                "RelatedVoucherNumber": str(voucher["Number"]),
                "Date": f"{day}T00:00:00",
                "Type": what,
                "Amount": float(amount),
                "Balance": float(balance),
                "RelatedVoucherCategory": "sales",
                "RelatedVoucherClass": kind,
                "Currency": voucher["Currency"],
            }
        )
    income = sum((Decimal(str(e["Amount"])) for e in entries if e["Amount"] > 0), Decimal(0))
    expenses = sum((-Decimal(str(e["Amount"])) for e in entries if e["Amount"] < 0), Decimal(0))
    return _json(
        {"ContactGuid": guid, "Income": float(income), "Expenses": float(expenses), "Entries": entries}
    )
