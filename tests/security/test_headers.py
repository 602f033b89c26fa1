"""Pages shown to a logged-in user are never stored by a browser or proxy cache."""

import pytest


@pytest.mark.parametrize(
    "path", ["/dashboard", "/settings", "/settings/members", "/transfers", "/shops", "/nope"]
)
def test_authenticated_pages_are_no_store(owner_client, path):
    response = owner_client.get(path)
    assert response.headers["Cache-Control"] == "no-store", path


def test_htmx_partials_and_redirects_for_a_user_are_no_store(owner_client):
    response = owner_client.get("/transfers", headers={"HX-Request": "true", "HX-Target": "transfer-table"})
    assert response.headers["Cache-Control"] == "no-store"
    assert owner_client.post("/language", data={"language": "en"}).headers["Cache-Control"] == "no-store"


def test_public_pages_are_left_alone(client):
    assert "no-store" not in client.get("/priser").headers.get("Cache-Control", "")
