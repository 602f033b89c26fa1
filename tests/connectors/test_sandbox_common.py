"""What the vendor sandboxes share (portal.sandbox.common and SandboxStore): the consent pages' rule for the
return address, and reading a collection narrowed by its documents' fields in the database."""

import pytest

from portal.connectors.sources import hmac_base64
from portal.sandbox.common import redirect_allowed, signature
from portal.sandbox.store import SandboxStore


@pytest.mark.parametrize(
    ("uri", "host", "allowed"),
    [
        ("/setup/callback", None, True),  # a path on this app
        ("//evil.example/cb", None, False),  # a scheme-relative address is another host
        ("", None, False),
        (None, None, False),
        ("setup/callback", None, False),
        ("https://shop.example/cb?x=1", None, True),
        ("http://localhost:5000/cb", None, True),
        ("ftp://shop.example/cb", None, False),
        ("javascript:alert(1)", None, False),
        ("https://", None, False),
        ("https://localhost/cb", "localhost", True),  # Visma Connect: only the registered host
        ("https://evil.example/cb", "localhost", False),
        ("/cb", "localhost", True),
    ],
)
def test_return_addresses_a_consent_page_may_send_the_browser_to(uri, host, allowed):
    assert redirect_allowed(uri, host=host) is allowed


def test_the_sandbox_signs_webhooks_as_the_connectors_check_them():
    body = b'{"id":727,"status":"processing"}'
    assert signature(body, "hemmelig") == hmac_base64(body, "hemmelig")


def test_items_are_narrowed_by_the_database(app, db):
    store = SandboxStore("shopify", "_oauth")
    store.put("tokens", "a", {"shop": "a.myshopify.com", "client_id": "app-1", "revoked": False})
    store.put("tokens", "b", {"shop": "b.myshopify.com", "client_id": "app-1", "revoked": False})
    store.put("tokens", "c", {"shop": "a.myshopify.com", "client_id": "app-2", "revoked": False})
    store.put("tokens", "d", {"shop": "a.myshopify.com", "client_id": "app-1", "revoked": True})
    SandboxStore("shopify", "other-tenant").put(
        "tokens", "e", {"shop": "a.myshopify.com", "client_id": "app-1"}
    )
    db.session.commit()

    assert [key for key, _ in store.items("tokens")] == ["a", "b", "c", "d"]
    assert store.items("tokens", shop="a.myshopify.com", client_id="app-1") == [
        ("a", {"shop": "a.myshopify.com", "client_id": "app-1", "revoked": False}),
        ("d", {"shop": "a.myshopify.com", "client_id": "app-1", "revoked": True}),
    ]
    assert store.items("tokens", shop="nowhere.myshopify.com") == []
