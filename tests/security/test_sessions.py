"""Login sessions end on the server: a copied session cookie is worthless after logout."""

from tests.conftest import PASSWORD, login


def _copy_cookie(app, source):
    """A second client holding a copy of `source`'s session cookie (as a thief would)."""
    thief = app.test_client()
    cookie = source.get_cookie(app.config["SESSION_COOKIE_NAME"])
    thief.set_cookie(cookie.key, cookie.value, domain=cookie.domain)
    return thief


def test_a_copied_cookie_gets_the_login_page_after_logout(app, client, owner):
    login(client, owner.email)
    thief = _copy_cookie(app, client)
    assert thief.get("/dashboard").status_code == 200  # the copy works while the session lives
    assert client.post("/logout").status_code == 302
    response = thief.get("/dashboard")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")
    assert thief.get("/settings").status_code == 302


def test_logout_ends_only_that_session(app, owner):
    laptop, phone = app.test_client(), app.test_client()
    login(laptop, owner.email)
    login(phone, owner.email)
    laptop.post("/logout")
    assert laptop.get("/dashboard").status_code == 302
    assert phone.get("/dashboard").status_code == 200


def test_a_password_change_ends_the_other_sessions_and_their_copies(app, owner):
    mine, other = app.test_client(), app.test_client()
    login(mine, owner.email)
    login(other, owner.email)
    copy_of_mine = _copy_cookie(app, mine)
    new = {"current_password": PASSWORD, "password": "fresh and new!", "confirm": "fresh and new!"}
    response = mine.post("/password", data=new)
    assert response.status_code == 302
    assert mine.get("/dashboard").status_code == 200
    assert other.get("/dashboard").status_code == 302
    # The copy carries the old password's fingerprint: out as well.
    assert copy_of_mine.get("/dashboard").status_code == 302


def test_a_removed_member_is_out_at_once(app, owner_client, member):
    member_client = app.test_client()
    login(member_client, member.email)
    assert owner_client.post(f"/settings/members/{member.id}/remove").status_code == 302
    assert member_client.get("/dashboard").status_code == 302
