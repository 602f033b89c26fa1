"""A webhook body above MAX_CONTENT_LENGTH is refused with 413 before it is read: over a real socket, the
answer comes while most of the announced body was never sent."""

import socket
from urllib.parse import urlsplit

from sqlalchemy import func, select

from portal.models import SourceEvent
from tests.pipeline.conftest import make_setup, make_source_link


def test_an_oversized_webhook_is_answered_413_before_its_body_is_read(app, db, account, live_server):
    source_link = make_source_link(db, account, make_setup(account, "e-conomic", auto_book=True))
    limit = app.config["MAX_CONTENT_LENGTH"]
    assert 1024 * 1024 <= limit <= 10 * 1024 * 1024  # room for a big order, not for a flood
    address = urlsplit(live_server)
    head = (
        f"POST /webhooks/woocommerce/{source_link.webhook_token} HTTP/1.1\r\n"
        f"Host: {address.netloc}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {limit + 1}\r\nX-WC-Webhook-Topic: order.updated\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection((address.hostname, address.port), timeout=10) as connection:
        connection.sendall(head.encode() + b"{" + b" " * 4096)  # a sliver of the announced body
        status_line = connection.makefile("rb").readline()
    assert status_line.split()[1] == b"413", status_line
    assert db.session.scalar(select(func.count(SourceEvent.id))) == 0


def test_a_webhook_within_the_limit_is_still_read(app, db, account, client):
    source_link = make_source_link(db, account, make_setup(account, "e-conomic", auto_book=True))
    response = client.post(
        f"/webhooks/woocommerce/{source_link.webhook_token}",
        data=b"webhook_id=12",  # WooCommerce's unsigned creation ping
        content_type="application/x-www-form-urlencoded",
        csrf=False,
    )
    assert response.status_code == 200
