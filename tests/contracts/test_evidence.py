"""Every connector operation names its public source (portal/connectors/evidence/), the docs show the same
table, cited spec files exist and say what we claim, and unverified calls are off by default."""

import importlib
import inspect
import json
import re
from functools import cache
from pathlib import Path

import pytest

from portal.connectors import evidence

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT.parent / "shared" / "specs"
needs_specs = pytest.mark.skipif(not SPECS.is_dir(), reason=f"the vendors' specs are not at {SPECS}")

# Module-level functions a connector module may offer besides its connector class.
MODULE_OPERATIONS = ("start_connect", "finish_connect", "verify_webhook")
# Connector methods that call nothing remote (helpers, lifecycle).
# graphql: the transport every query uses; use_accounting_years: hands the connector cached years;
# limiter: its own rate limiter
NOT_REMOTE = {"close", "apis", "page_size", "graphql", "use_accounting_years", "limiter"}


def operations(system: str) -> set[str]:
    """The public operations a system's connector implements: its class's own methods (the base class's
    abstract ones included when overridden) and the module's connect/webhook functions."""
    module = importlib.import_module(f"portal.connectors.{evidence.SYSTEMS[system]}")
    names = {
        name
        for name, member in vars(module.CONNECTOR).items()
        if not name.startswith("_") and callable(member) and name not in NOT_REMOTE
    }
    names |= {name for name in MODULE_OPERATIONS if inspect.isfunction(getattr(module, name, None))}
    return names


def unsupported(system: str, name: str) -> bool:
    """The method only refuses: its body raises UnsupportedOperation (no call to cite)."""
    module = importlib.import_module(f"portal.connectors.{evidence.SYSTEMS[system]}")
    member = getattr(module.CONNECTOR, name, None) or getattr(module, name)
    body = inspect.getsource(member)
    return "raise UnsupportedOperation" in body and not re.search(
        r"self\.(_json|_get|_post|_request|_all)\(", body
    )


@pytest.mark.parametrize("system", list(evidence.SYSTEMS))
def test_every_operation_names_its_evidence(system):
    listed = {call.operation for call in evidence.evidence(system)}
    missing = sorted(name for name in operations(system) - listed if not unsupported(system, name))
    assert not missing, f"{system}: no evidence for {missing} (portal/connectors/evidence/)"
    unknown = sorted(listed - operations(system))
    assert not unknown, f"{system}: evidence for operations the connector does not have: {unknown}"


@pytest.mark.parametrize("system", list(evidence.SYSTEMS))
def test_docs_carry_the_evidence_table(system):
    text = (ROOT / evidence.docs_path(system)).read_text()
    assert evidence.section(text) == evidence.table(evidence.evidence(system)), (
        f"{evidence.docs_path(system)} is out of date: run `python -m portal.connectors.evidence {system}`"
    )


@pytest.mark.parametrize("system", list(evidence.SYSTEMS))
def test_every_call_has_a_source_and_a_level(system):
    for call in evidence.evidence(system):
        assert call.level in evidence.LEVELS, call
        assert re.match(r"^(spec|doc|lib|code): ", call.source), f"{call}: a source starts with its kind"
        if call.level == "verified":
            # verified = the vendor's own word: a spec file, its documentation or its official library
            assert re.search(r"(^| · )(spec|doc|lib): ", call.source), (
                f"{call}: verified needs spec, doc or lib"
            )


@pytest.mark.parametrize("system", list(evidence.SYSTEMS))
def test_unverified_calls_are_off_by_default(system):
    for call in evidence.unverified(system):
        assert call.label and call.setting, f"{call}: an unverified call needs a label and the setting"
        assert not evidence.allowed(system, call.operation, {}), f"{call} is on by default"
        assert evidence.allowed(system, call.operation, {call.setting: True})


@cache
def openapi(path: str) -> dict:
    return json.loads((SPECS / path).read_text())


def _openapi_has(document: dict, method: str, path: str) -> bool:
    return method.lower() in document.get("paths", {}).get(path, {})


@needs_specs
@pytest.mark.parametrize("system", list(evidence.SYSTEMS))
def test_cited_spec_files_exist_and_hold_the_operation(system):
    for call in evidence.evidence(system):
        for cited in call.spec_files():
            path, _, operation = cited.partition("#")
            assert (SPECS / path).is_file(), f"{call.operation}: {path} is not in ../shared/specs"
            if operation:  # "<file>#METHOD /path": the OpenAPI document has that operation
                method, _, route = operation.partition(" ")
                assert _openapi_has(openapi(path), method, route), (
                    f"{call.operation}: {operation} not in {path}"
                )


@needs_specs
def test_every_dinero_request_is_in_dineros_openapi():
    document = openapi("dinero/openapi.json")
    for call in evidence.evidence("dinero"):
        if "dinero/openapi.json" not in call.source:
            continue
        for part in call.request.split(" + "):
            method, _, route = part.partition(" ")
            assert _openapi_has(document, method, route), (
                f"{call.operation}: {part} is not in Dinero's OpenAPI"
            )


def test_a_guess_runs_only_when_turned_on():
    """The one switch: e-conomic's refund payout is unverified, Dinero's is documented."""
    assert not evidence.allowed("e-conomic", "register_refund_payment", {})
    assert evidence.allowed("e-conomic", "register_refund_payment", {"refund_payouts_guessed": True})
    assert evidence.allowed("dinero", "register_refund_payment", {})
    assert evidence.allowed("e-conomic", "create_draft_invoice", {})


def test_shopifys_evidence_names_exactly_the_documents_the_contract_test_validates():
    """Each GraphQL operation the evidence names is one of the connector's DOCUMENTS, which
    tests/contracts/test_shopify_graphql_contract.py validates against the 2026-04 schema; none left out."""
    from portal.connectors.shopify_graphql import DOCUMENTS

    named = {
        name
        for call in evidence.evidence("shopify")
        for name in re.findall(r"\b(?:query|mutation) (\w+)", call.request)
    }
    assert named == set(DOCUMENTS)


def test_dynaccounts_contract_test_calls_only_what_the_evidence_names():
    """The Dynaccount contract test's list of calls (what the connector was seen to send) all appear in the
    evidence's requests, as `<method>/<table>/`."""
    from tests.contracts.test_dynaccount_contract import EVIDENCE as SEEN

    requests = " ".join(call.request for call in evidence.evidence("dynaccount"))
    missing = [key for key in SEEN if "{}/{}/".format(*key.split()) not in requests]
    assert not missing, (
        f"called by the connector but not in portal/connectors/evidence/dynaccount.py: {missing}"
    )
