"""Shop addresses: what httpx cannot use is a Danish field error (never a 500), and in production an
address inside our own network is refused when connecting and before every later call (blind SSRF)."""

import socket
import threading

import pytest
from sqlalchemy import func, select

from portal.connectors.errors import ConfigurationError
from portal.models import Connection
from portal.setups.connections import connector_for
from tests.conftest import login

UNUSABLE = [
    "javascript:alert(1)",
    "https://☃.net",
    "https://shop\x00.dk",
    "https://[",
    "https://exa mple.dk",
    "https://bad_host!.dk",
]
INTERNAL = [
    "https://127.0.0.1",
    "https://localhost:8443",
    "https://10.1.2.3",
    "https://192.168.0.10",
    "https://169.254.169.254",
    "https://[::1]",
    "https://[::ffff:127.0.0.1]",
    "https://0.0.0.0",
]


def _connect(client, url):
    return client.post(
        "/shops/connect/woocommerce",
        data={"url": url, "consumer_key": "ck_abc", "consumer_secret": "cs_abc"},
    )


def _connections(db):
    return db.session.scalar(select(func.count(Connection.id)))


@pytest.mark.parametrize("url", UNUSABLE)
def test_an_unusable_shop_address_is_a_danish_field_error(owner_client, db, url):
    response = _connect(owner_client, url)
    assert response.status_code == 400
    assert "Indtast din butiks adresse" in response.get_data(as_text=True)
    assert _connections(db) == 0


def test_production_refuses_shop_addresses_inside_our_network(production_client, owner, db):
    login(production_client, owner.email)
    for url in INTERNAL:
        response = _connect(production_client, url)
        assert response.status_code == 400, url
        assert "privat eller internt netværk" in response.get_data(as_text=True), url
    assert _connections(db) == 0


@pytest.fixture
def listener():
    """A local TCP port that counts the connections made to it."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    accepted = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            accepted.append(1)
            connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join(5)
    server.close()


def test_production_checks_the_address_again_before_every_call(production_app, account, listener):
    """A shop whose name resolved publicly when it was connected and points inside later (DNS rebinding)."""
    port, accepted = listener
    with production_app.app_context():
        from portal.extensions import db

        connection = Connection(
            account_id=account.id,
            system="woocommerce",
            role="webshop",
            label="Rebound",
            sandbox=False,
            credentials={
                "url": f"https://127.0.0.1:{port}",
                "consumer_key": "ck_a",
                "consumer_secret": "cs_a",
            },
        )
        db.session.add(connection)
        db.session.commit()
        connector = connector_for(connection)
        try:
            with pytest.raises(ConfigurationError) as refused:
                connector.verify()
        finally:
            connector.close()
    assert "private or internal network" in refused.value.message
    assert accepted == []  # not even a TCP connection was made
