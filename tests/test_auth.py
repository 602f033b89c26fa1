import re
from urllib.parse import urlsplit

from sqlalchemy import select

from portal.models import AuditEvent, Invitation, User
from tests.conftest import PASSWORD, login


def test_login_page_is_danish_by_default(client):
    page = client.get("/login").get_data(as_text=True)
    assert "Log ind på Bogbro" in page
    assert 'lang="da"' in page


def test_login_logout_round_trip(client, owner):
    assert client.get("/dashboard").status_code == 302
    response = login(client, "OWNER@kunde.dk ")  # case and spaces do not matter
    assert response.headers["Location"] == "/"
    page = client.get("/dashboard").get_data(as_text=True)
    assert "Kunde ApS" in page
    response = client.post("/logout")
    assert response.status_code == 302
    assert client.get("/dashboard").status_code == 302


def test_wrong_password_is_refused_without_saying_which_part_was_wrong(client, owner):
    wrong_password = client.post("/login", data={"email": owner.email, "password": "nope nope nope"})
    unknown_user = client.post("/login", data={"email": "nobody@kunde.dk", "password": PASSWORD})
    assert wrong_password.status_code == unknown_user.status_code == 401
    assert "Forkert e-mail eller adgangskode." in wrong_password.get_data(as_text=True)
    assert "Forkert e-mail eller adgangskode." in unknown_user.get_data(as_text=True)


def test_logout_needs_post_with_csrf(owner_client):
    assert owner_client.get("/logout").status_code == 405
    response = owner_client.post("/logout", csrf=False)
    assert response.status_code == 400
    assert owner_client.get("/dashboard").status_code == 200  # still logged in


def test_login_is_rate_limited_per_address(app, client, owner, redis):
    for _ in range(app.config["LOGIN_MAX_FAILURES_PER_EMAIL"]):
        assert (
            client.post("/login", data={"email": owner.email, "password": "wrong password"}).status_code
            == 401
        )
    # Even the right password is refused now, and the limit lives in Redis.
    response = client.post("/login", data={"email": owner.email, "password": PASSWORD})
    assert response.status_code == 429
    assert "For mange mislykkede forsøg" in response.get_data(as_text=True)
    assert list(redis.scan_iter("bogbro:login-failures:email:*"))
    redis.flushdb()
    login(client, owner.email)


def test_login_is_rate_limited_per_ip(app, client, owner, member):
    app.config["LOGIN_MAX_FAILURES_PER_IP"] = 3
    try:
        for address in ("a@x.dk", "b@x.dk", "c@x.dk"):
            client.post("/login", data={"email": address, "password": "whatever pass"})
        # A different, valid address from the same IP is now refused too.
        response = client.post("/login", data={"email": member.email, "password": PASSWORD})
        assert response.status_code == 429
        other_ip = client.post(
            "/login",
            data={"email": member.email, "password": PASSWORD},
            environ_base={"REMOTE_ADDR": "10.0.0.9"},
        )
        assert other_ip.status_code == 302
    finally:
        app.config["LOGIN_MAX_FAILURES_PER_IP"] = 30


def test_next_parameter_cannot_redirect_off_site(client, owner):
    response = client.post("/login?next=//evil.example/x", data={"email": owner.email, "password": PASSWORD})
    assert response.headers["Location"] == "/"
    client.post("/logout")
    response = client.post("/login?next=/settings", data={"email": owner.email, "password": PASSWORD})
    assert response.headers["Location"] == "/settings"


def test_change_password_ends_other_sessions(app, db, owner):
    first, second = app.test_client(), app.test_client()
    login(first, owner.email)
    login(second, owner.email)
    response = first.post(
        "/password",
        data={
            "current_password": PASSWORD,
            "password": "a brand new secret",
            "confirm": "a brand new secret",
        },
    )
    assert response.status_code == 302
    assert first.get("/dashboard").status_code == 200  # the session that changed it stays in
    assert second.get("/dashboard").status_code == 302  # every other session is out
    login(second, owner.email, "a brand new secret")
    actions = db.session.scalars(select(AuditEvent.action)).all()
    assert "user.password_changed" in actions


def test_change_password_validates(owner_client):
    response = owner_client.post(
        "/password", data={"current_password": "wrong", "password": "short", "confirm": "different"}
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "mindst 10 tegn" in page
    assert "De to adgangskoder er ikke ens." in page


def test_password_reset_by_mail_link(client, owner, mailbox, run_jobs):
    response = client.post("/password/forgot", data={"email": owner.email})
    assert response.status_code == 302
    run_jobs()  # the mail goes out from the RQ worker, after the commit
    message = mailbox.last(owner.email)
    assert message["Subject"] == "Nulstil din adgangskode til Bogbro"
    link = mailbox.link(message, "/password/reset/")
    path = urlsplit(link).path
    assert client.get(path).status_code == 200
    response = client.post(path, data={"password": "reset and renewed", "confirm": "reset and renewed"})
    assert response.status_code == 302
    login(client, owner.email, "reset and renewed")
    client.post("/logout")
    # The link is single-use: the password it was made for is gone.
    assert client.get(path).status_code == 400


def test_password_reset_for_unknown_address_says_the_same_and_sends_nothing(client, db, mailbox, run_jobs):
    response = client.post("/password/forgot", data={"email": "ghost@nowhere.dk"}, follow_redirects=True)
    assert "Hvis adressen tilhører en bruger" in response.get_data(as_text=True)
    run_jobs()
    assert mailbox.messages == []


def test_tampered_reset_link_is_refused(client, owner):
    assert client.get("/password/reset/not-a-token").status_code == 400


def test_owner_invites_a_member_who_accepts(app, owner_client, owner, db, mailbox, run_jobs):
    response = owner_client.post(
        "/settings/members/invite", data={"email": "New.Person@Kunde.dk", "role": "member", "language": "en"}
    )
    assert response.status_code == 302
    run_jobs()
    message = mailbox.last("new.person@kunde.dk")
    assert message["Subject"] == "You are invited to Kunde ApS on Bogbro"  # the invitation's language
    path = urlsplit(mailbox.link(message, "/invitation/")).path

    owner_client.post("/logout")
    assert "Olga Owner" in owner_client.get(path).get_data(as_text=True)
    response = owner_client.post(
        path, data={"name": "Nina New", "password": "welcome aboard", "confirm": "welcome aboard"}
    )
    assert response.status_code == 302
    user = db.session.scalar(select(User).where(User.email == "new.person@kunde.dk"))
    assert (user.account_id, user.role, user.language) == (owner.account_id, "member", "en")
    assert owner_client.get("/dashboard").status_code == 200
    owner_client.post("/logout")
    assert owner_client.get(path).status_code == 400  # used once, then dead
    events = db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert events == ["invitation.created", "user.joined"]


def test_invitation_for_an_existing_user_is_refused(owner_client, member, db):
    response = owner_client.post(
        "/settings/members/invite", data={"email": member.email, "role": "member", "language": "da"}
    )
    assert response.status_code == 400
    assert "findes allerede en bruger" in response.get_data(as_text=True)
    assert db.session.scalars(select(Invitation)).all() == []


def test_members_cannot_invite(member_client, db):
    response = member_client.post(
        "/settings/members/invite", data={"email": "x@kunde.dk", "role": "owner", "language": "da"}
    )
    assert response.status_code == 403
    assert db.session.scalars(select(Invitation)).all() == []


def test_revoked_invitation_link_stops_working(owner_client, db, mailbox, run_jobs):
    owner_client.post(
        "/settings/members/invite", data={"email": "late@kunde.dk", "role": "member", "language": "da"}
    )
    run_jobs()
    path = urlsplit(mailbox.link(mailbox.last("late@kunde.dk"), "/invitation/")).path
    invitation = db.session.scalar(select(Invitation))
    owner_client.post(f"/settings/invitations/{invitation.id}/revoke")
    owner_client.post("/logout")
    assert owner_client.get(path).status_code == 400


def test_owner_removes_a_member_but_not_the_last_owner(owner_client, owner, member, db):
    assert owner_client.post(f"/settings/members/{member.id}/remove").status_code == 302
    db.session.expire_all()
    assert db.session.get(User, member.id).active is False
    page = owner_client.post(f"/settings/members/{owner.id}/remove", follow_redirects=True).get_data(
        as_text=True
    )
    assert "Du kan ikke fjerne dig selv." in page


def test_removed_member_is_logged_out(app, owner_client, member, db):
    member_client = app.test_client()
    login(member_client, member.email)
    owner_client.post(f"/settings/members/{member.id}/remove")
    assert member_client.get("/dashboard").status_code == 302
    response = member_client.post("/login", data={"email": member.email, "password": PASSWORD})
    assert response.status_code == 401


def test_passwords_are_argon2(owner):
    assert re.match(r"^\$argon2id\$", owner.password_hash)


def test_a_second_invitation_to_the_same_address_says_so(owner_client, db, mailbox, run_jobs):
    data = {"email": "Ny@Kunde.dk", "role": "member", "language": "da"}
    assert owner_client.post("/settings/members/invite", data=data).status_code == 302
    again = owner_client.post("/settings/members/invite", data={**data, "email": "ny@kunde.dk"})
    assert again.status_code == 400
    assert "En invitation til ny@kunde.dk venter allerede" in again.get_data(as_text=True)
    assert len(db.session.scalars(select(Invitation)).all()) == 1
    # withdrawn, a new one may be sent
    invitation = db.session.scalar(select(Invitation))
    assert owner_client.post(f"/settings/invitations/{invitation.id}/revoke").status_code == 302
    assert owner_client.post("/settings/members/invite", data=data).status_code == 302
    assert len(db.session.scalars(select(Invitation)).all()) == 2
