"""A stranger guessing the owner's password is stopped without locking the owner out."""

from tests.conftest import PASSWORD

STRANGER, OWNER_IP, OTHER_STRANGER = "203.0.113.7", "198.51.100.20", "203.0.113.99"


def _try(client, email, password, ip):
    return client.post(
        "/login", data={"email": email, "password": password}, environ_base={"REMOTE_ADDR": ip}
    )


def test_a_strangers_failures_do_not_lock_the_owner_out(app, owner, redis):
    stranger, owner_browser = app.test_client(), app.test_client()
    limit = app.config["LOGIN_MAX_FAILURES_PER_EMAIL"]
    for _ in range(limit + 2):
        assert _try(stranger, owner.email, "a wrong guess", STRANGER).status_code in (401, 429)
    # The stranger is stopped, even with the right password …
    assert _try(stranger, owner.email, PASSWORD, STRANGER).status_code == 429
    # … while the owner, from their own connection, logs in at once.
    response = _try(owner_browser, owner.email, PASSWORD, OWNER_IP)
    assert response.status_code == 302
    assert owner_browser.get("/dashboard").status_code == 200


def test_failures_from_many_clients_slow_the_failing_ones_down(app, owner, redis):
    limit = app.config["LOGIN_MAX_FAILURES_PER_EMAIL"]
    for n in range(limit):  # a distributed guess: one try per address
        assert _try(app.test_client(), owner.email, "a wrong guess", f"203.0.113.{n + 10}").status_code == 401
    other = app.test_client()
    assert _try(other, owner.email, "another guess", OTHER_STRANGER).status_code == 401
    assert _try(other, owner.email, "and another", OTHER_STRANGER).status_code == 429  # must pause now
    assert _try(app.test_client(), owner.email, PASSWORD, OWNER_IP).status_code == 302
