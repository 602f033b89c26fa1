"""The sandboxes' "drop" fault is a dropped connection in every mode: over a real socket (the tests'
live_server, as `make run` and gunicorn serve it) and in-process, with or without Flask's testing flags —
never an HTTP 500 with our error page."""

import httpx
import pytest

from portal.sandbox.faults import clear_faults, set_faults
from portal.sandbox.transport import IN_PROCESS_ORIGIN, SandboxTransport

DEMO = {"X-AppSecretToken": "demo", "X-AgreementGrantToken": "demo"}


@pytest.fixture
def dropping(app, db, redis):
    set_faults("e-conomic", {"next": ["drop"]})
    yield
    clear_faults("e-conomic")


@pytest.fixture
def production_flags(app):
    """Flask as `make run` and gunicorn run it: exceptions become error pages instead of propagating."""
    saved = {key: app.config[key] for key in ("TESTING", "PROPAGATE_EXCEPTIONS")}
    app.config.update(TESTING=False, PROPAGATE_EXCEPTIONS=False)
    yield
    app.config.update(saved)


def _get(base_url, transport=None):
    with httpx.Client(base_url=base_url, transport=transport, timeout=10) as client:
        return client.get("/sandbox/e-conomic/self", headers=DEMO)


@pytest.mark.parametrize("flags", ["testing", "production"])
def test_a_drop_over_a_real_socket_closes_the_connection_without_an_answer(
    request, live_server, dropping, flags
):
    if flags == "production":
        request.getfixturevalue("production_flags")
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError, httpx.ConnectError)):
        _get(live_server)
    assert _get(live_server).status_code == 200  # only the one request was dropped


@pytest.mark.parametrize("flags", ["testing", "production"])
def test_a_drop_in_process_is_the_error_a_socket_gives(request, app, dropping, flags):
    if flags == "production":
        request.getfixturevalue("production_flags")
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        _get(IN_PROCESS_ORIGIN, SandboxTransport(app))
    assert _get(IN_PROCESS_ORIGIN, SandboxTransport(app)).status_code == 200
