"""Stripe's request parameters: form decoding, shapes, and the typed getters the endpoints read them with —
each refusal in Stripe's error shape (StripeError)."""

import operator
import re


class StripeError(Exception):
    """An answer in Stripe's error shape: {"error": {"type", "message", "code"?, "param"?, …}}.
    `saved` is False for parameter errors: Stripe keeps no idempotent result when validation fails."""

    def __init__(
        self, status, message, type_="invalid_request_error", code=None, param=None, saved=True, **extra
    ):
        super().__init__(message)
        self.status, self.saved = status, saved
        self.error = {"message": message, "type": type_}
        if code:
            self.error["code"] = code
            self.error["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
        if param:
            self.error["param"] = param
        self.error.update(extra)


def missing(kind: str, object_id: str, param: str = "id") -> StripeError:
    return StripeError(404, f"No such {kind}: '{object_id}'", code="resource_missing", param=param)


def invalid(param: str, message: str) -> StripeError:
    return StripeError(400, message, code="parameter_invalid", param=param, saved=False)


# --- parameters -----------------------------------------------------------------------------------------

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


MAX_INDEX = 1000  # list positions beyond this are refused, not allocated


def decode_form(pairs) -> dict:
    """`a[b][0][c]=v` pairs (stripe-python's encoding; `a[]=v` too) into nested dicts and lists. Keys that
    contradict each other (`a=1` and `a[b]=2`; `a[0]` and `a[x]`) are a 400, as is a position past 1000."""
    root: dict = {}
    for raw_key, value in pairs:
        match = _KEY.match(raw_key)
        if not match:
            raise StripeError(
                400, f"Invalid parameter name: {raw_key}", code="parameter_unknown", saved=False
            )
        parts = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        node = root
        for index, part in enumerate(parts):
            if isinstance(node, list):
                if part == "":
                    part = len(node)
                elif part.isdigit() and int(part) <= MAX_INDEX:
                    part = int(part)
                else:
                    raise _contradiction(raw_key)
                node.extend([None] * (part + 1 - len(node)))
            existing = node[part] if isinstance(node, list) else node.get(part)
            if index == len(parts) - 1:
                if existing is not None and not isinstance(existing, str):
                    raise _contradiction(raw_key)
                node[part] = value
                continue
            following = parts[index + 1]
            wanted = list if part != "metadata" and (following == "" or following.isdigit()) else dict
            if existing is None:
                existing = node[part] = wanted()
            elif not isinstance(existing, wanted):
                raise _contradiction(raw_key)
            node = existing
    return root


def _contradiction(raw_key: str) -> StripeError:
    return StripeError(
        400,
        f"Invalid parameter: {raw_key} contradicts another parameter of the request",
        code="parameter_invalid",
        saved=False,
    )


# The shape of each parameter the sandbox takes, wherever it is nested (the names mean one thing across
# Stripe's API); every other parameter is a string. "" is allowed for any of them: Stripe's "unset".
HASHES = {
    "address",
    "metadata",
    "invoice_settings",
    "recurring",
    "product_data",
    "default_price_data",
    "pricing",
    "period",
    "cancellation_details",
    "pause_collection",
    "shipping",
    "payment",  # invoice_payments?payment[type]=…&payment[payment_intent]=…
}
LISTS_OF_HASHES = {"tax_id_data", "items", "discounts", "lines", "refunds"}
LISTS_OF_STRINGS = {
    "default_tax_rates",
    "tax_rates",
    "enabled_events",
    "types",
    "preferred_locales",
    "expand",
}
HASH_OR_STRING = {"created"}  # created=… or created[gte]=…


def check_shapes(params: dict, where: str = "") -> None:
    """400 for a hash where a string belongs, a string where a list belongs …, before any handler runs."""
    for name, value in params.items():
        param = f"{where}[{name}]" if where else name
        if value == "" or (name in HASH_OR_STRING and isinstance(value, (str, dict))):
            kind = None
        elif name in HASHES:
            kind = dict
        elif name in LISTS_OF_HASHES or name in LISTS_OF_STRINGS:
            kind = list
        else:
            kind = str
        if kind is not None and not isinstance(value, kind):
            noun = {dict: "object", list: "array", str: "string"}[kind]
            raise StripeError(
                400, f"Invalid {noun}: {param}", code="parameter_invalid", param=param, saved=False
            )
        if isinstance(value, list):
            element = dict if name in LISTS_OF_HASHES else str
            for index, item in enumerate(value):
                if not isinstance(item, element) and item != "":
                    noun = "object" if element is dict else "string"
                    raise StripeError(
                        400,
                        f"Invalid {noun}: {param}[{index}]",
                        code="parameter_invalid",
                        param=f"{param}[{index}]",
                        saved=False,
                    )
                if isinstance(item, dict):
                    check_shapes(item, f"{param}[{index}]")
        elif isinstance(value, dict) and name == "metadata":  # free keys, string values
            for key, item in value.items():
                if not isinstance(item, str):
                    raise StripeError(
                        400,
                        f"Invalid string: {param}[{key}]",
                        code="parameter_invalid",
                        param=f"{param}[{key}]",
                        saved=False,
                    )
        elif isinstance(value, dict):
            check_shapes(value, param)


def integer(params: dict, name: str, required=False, minimum=None) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise parameter_missing(name)
        return None
    if not re.fullmatch(r"-?\d+", str(value)):
        raise StripeError(
            400, f"Invalid integer: {value}", code="parameter_invalid_integer", param=name, saved=False
        )
    number = int(value)
    if minimum is not None and number < minimum:
        raise StripeError(
            400,
            f"This value must be greater than or equal to {minimum}.",
            code="parameter_invalid_integer",
            param=name,
            saved=False,
        )
    return number


def boolean(params: dict, name: str, default=None) -> bool | None:
    value = params.get(name)
    if value is None or value == "":
        return default
    if value not in ("true", "false"):
        raise StripeError(400, f"Invalid boolean: {value}", code="parameter_invalid", param=name, saved=False)
    return value == "true"


def choice(params: dict, name: str, allowed, default=None, required=False):
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise parameter_missing(name)
        return default
    if value not in allowed:
        raise StripeError(
            400,
            f"Invalid {name}: must be one of {', '.join(allowed)}",
            code="parameter_invalid",
            param=name,
            saved=False,
        )
    return value


def required(params: dict, name: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        raise parameter_missing(name)
    return value


def parameter_missing(name: str) -> StripeError:
    return StripeError(
        400, f"Missing required param: {name}.", code="parameter_missing", param=name, saved=False
    )


def metadata(params: dict, current: dict | None = None) -> dict:
    """Stripe merges metadata keys; an empty value removes a key, `metadata=""` removes them all."""
    given = params.get("metadata")
    if given is None:
        return dict(current or {})
    if given == "":
        return {}
    if not isinstance(given, dict):
        raise invalid("metadata", "Invalid object")
    merged = {**(current or {}), **given}
    return {key: value for key, value in merged.items() if value != ""}


def created_filter(params: dict, documents: list[dict]) -> list[dict]:
    """`created=<unix>` or `created[gt|gte|lt|lte]=<unix>`, as Stripe's list endpoints take it."""
    created = params.get("created")
    if created in (None, ""):
        return documents
    if not isinstance(created, dict):
        exact = integer(params, "created")
        return [d for d in documents if d["created"] == exact]
    tests = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}
    for name in created:
        if name not in tests:
            raise StripeError(
                400,
                f"Received unknown parameter: created[{name}]",
                code="parameter_unknown",
                param=f"created[{name}]",
                saved=False,
            )
        bound = integer(created, name)
        if bound is not None:
            documents = [d for d in documents if tests[name](d["created"], bound)]
    return documents
