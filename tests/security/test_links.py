"""Mailed links are built on PUBLIC_URL, never on the request's Host header; production answers only to
its own host names."""

import re

from portal.config import load_config
from tests.conftest import PASSWORD
from tests.conftest import login as log_in
from tests.security.conftest import PUBLIC_URL


def _post_as_evil_example(client, path, data, form_page=None):
    """A client speaking to the app under Host: evil.example (form, token and all)."""
    page = client.get(form_page or path, base_url="http://evil.example").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    return client.post(path, data={**data, "csrf_token": token}, base_url="http://evil.example", csrf=False)


def test_reset_requested_with_a_forged_host_mails_a_link_on_public_url(app, client, owner, mailbox, run_jobs):
    response = _post_as_evil_example(client, "/password/forgot", {"email": owner.email})
    assert response.status_code == 302
    assert response.request.host == "evil.example"
    run_jobs()
    link = mailbox.link(mailbox.last(owner.email), "/password/reset/")
    assert link.startswith(app.config["PUBLIC_URL"].rstrip("/") + "/password/reset/")
    assert "evil.example" not in mailbox.last(owner.email).get_content()


def test_invitation_sent_with_a_forged_host_mails_a_link_on_public_url(app, client, owner, mailbox, run_jobs):
    login = _post_as_evil_example(client, "/login", {"email": owner.email, "password": PASSWORD})
    assert login.status_code == 302
    response = _post_as_evil_example(
        client,
        "/settings/members/invite",
        {"email": "new@kunde.dk", "role": "member", "language": "da"},
        form_page="/settings/members",
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    run_jobs()
    link = mailbox.link(mailbox.last("new@kunde.dk"), "/invitation/")
    assert link.startswith(app.config["PUBLIC_URL"].rstrip("/") + "/invitation/")


def test_production_trusts_only_the_public_host(production_app, production_client, owner):
    assert production_app.config["TRUSTED_HOSTS"] == ["app.bogbro.test"]
    forged = production_client.post(
        "/password/forgot", data={"email": owner.email}, headers={"Host": "evil.example"}
    )
    assert forged.status_code == 400
    log_in(production_client, owner.email)
    assert production_client.get("/dashboard").status_code == 200


def test_trusted_hosts_come_from_public_url_or_the_environment(tmp_path):
    from cryptography.fernet import Fernet

    environ = {
        "PRODUCTION": "1",
        "SECRET_KEY": "k",
        "ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "DATABASE_URL": "postgresql://bogbro@db/bogbro",
        "REDIS_URL": "redis://cache:6379/0",
        "MAIL_SERVER": "smtp.example.com",
        "PUBLIC_URL": PUBLIC_URL,
    }
    assert load_config(str(tmp_path), environ=environ)["TRUSTED_HOSTS"] == ["app.bogbro.test"]
    both = {**environ, "TRUSTED_HOSTS": "app.bogbro.dk, .bogbro.dk"}
    assert load_config(str(tmp_path), environ=both)["TRUSTED_HOSTS"] == ["app.bogbro.dk", ".bogbro.dk"]
    assert load_config(str(tmp_path), environ={})["TRUSTED_HOSTS"] is None  # development: any host
