"""The shared HTTP layer: which failures are retried, which are final, and that POSTs are never
blind-retried. The remote side is an httpx.MockTransport standing in for an arbitrary vendor."""

import httpx
import pytest

from portal.connectors.errors import (
    AmbiguousWriteError,
    AuthenticationError,
    NotFound,
    TransientError,
    ValidationError,
)
from portal.connectors.http import ApiClient, parse_retry_after


class Remote:
    """Answers requests from a script of responses (or exceptions), recording what it received."""

    def __init__(self, *script):
        self.script = list(script)
        self.requests = []

    def __call__(self, request):
        self.requests.append(request)
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        status, body, headers = step if len(step) == 3 else (*step, {})
        return httpx.Response(status, json=body, headers=headers)


def client(remote, **kwargs):
    sleeps = []
    api = ApiClient(
        system="vendor",
        base_url="https://api.vendor.test",
        transport=httpx.MockTransport(remote),
        sleep=sleeps.append,
        error_message=lambda response: (response.json().get("message", ""), response.json()),
        **kwargs,
    )
    return api, sleeps


def test_429_is_retried_after_retry_after():
    remote = Remote((429, {"message": "slow down"}, {"Retry-After": "7"}), (200, {"ok": True}))
    api, sleeps = client(remote)
    assert api.post("/things", json={}).json() == {"ok": True}
    assert sleeps == [7.0]
    assert len(remote.requests) == 2


def test_5xx_on_get_is_retried_with_backoff_then_gives_up():
    remote = Remote(*[(503, {"message": "down"})] * 4)
    api, sleeps = client(remote, retries=3, backoff=0.5)
    with pytest.raises(TransientError) as error:
        api.get("/things")
    assert error.value.status == 503
    assert sleeps == [0.5, 1.0, 2.0]
    assert len(remote.requests) == 4


def test_5xx_on_post_is_ambiguous_and_not_retried():
    remote = Remote((500, {"message": "oops"}), (201, {"id": 2}))
    api, _ = client(remote)
    with pytest.raises(AmbiguousWriteError):
        api.post("/invoices", json={"reference": "WC-1"})
    assert len(remote.requests) == 1


def test_read_timeout_on_post_is_ambiguous_but_on_get_is_retried():
    remote = Remote(httpx.ReadTimeout("slow"))
    api, _ = client(remote)
    with pytest.raises(AmbiguousWriteError):
        api.post("/invoices", json={})
    remote = Remote(httpx.RemoteProtocolError("Server disconnected"), (200, {"ok": 1}))
    api, _ = client(remote)
    assert api.get("/invoices").json() == {"ok": 1}


def test_connect_error_is_retried_even_for_post_because_nothing_was_sent():
    remote = Remote(httpx.ConnectError("refused"), (201, {"id": 1}))
    api, sleeps = client(remote)
    assert api.post("/invoices", json={}).json() == {"id": 1}
    assert sleeps == [0.5]


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, AuthenticationError), (403, AuthenticationError), (400, ValidationError), (404, NotFound)],
)
def test_final_errors_carry_the_systems_message(status, error):
    remote = Remote((status, {"message": "Kontoen findes ikke"}))
    api, sleeps = client(remote)
    with pytest.raises(error) as raised:
        api.get("/accounts/1")
    assert raised.value.message == "Kontoen findes ikke"
    assert raised.value.status == status
    assert sleeps == []


def test_a_retry_after_beyond_a_minute_is_handed_back_to_the_job():
    remote = Remote((429, {"message": "quota"}, {"Retry-After": "3600"}))
    api, sleeps = client(remote)
    with pytest.raises(TransientError) as error:
        api.get("/things")
    assert error.value.retry_after == 3600 and sleeps == []


def test_parse_retry_after():
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert 0 <= parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


def test_connectors_share_the_process_connection_pool_and_closing_one_keeps_it(live_server):
    """A connector lives for one job; its keep-alive connections (and TLS sessions) outlive it for the next
    transfer to the same system."""
    from portal.connectors.http import ApiClient, shared_transport

    first = ApiClient(system="x", base_url=live_server)
    second = ApiClient(system="x", base_url=live_server)
    assert first.http._transport is second.http._transport is shared_transport()
    assert first.request("GET", "/healthz").status_code == 200
    first.close()
    assert second.request("GET", "/healthz").status_code == 200  # the pool is still open
    second.close()
