"""Self-service sign-up, the owner's e-mail confirmation, support's "create an account and invite its
owner" (also from a quote request), and the onboarding checklist on the dashboard — over HTTP, with the
real mail server, RQ worker and sandboxes."""

from urllib.parse import urlsplit

from sqlalchemy import func, select

from portal.calculator.seed import seed_catalogue
from portal.i18n import format_amount
from portal.models import Account, AuditEvent, Invitation, QuoteRequest, User
from tests.conftest import PASSWORD, connect_sandbox, login, make_account, make_user
from tests.pipeline.conftest import feed, make_setup, make_source_link, order

PIA = "pia@potteriet.dk"
SIGNUP = {
    "company": "Keramikværkstedet ApS",
    "cvr": "35 00 00 38",
    "name": "Karen Keramik",
    "email": "Karen@Keramik.dk ",
    "password": PASSWORD,
    "confirm": PASSWORD,
}


def counts(db):
    return (
        db.session.scalar(select(func.count()).select_from(Account)),
        db.session.scalar(select(func.count()).select_from(User)),
        db.session.scalar(select(func.count()).select_from(Invitation)),
    )


def test_a_company_signs_up_in_danish_and_confirms_its_owner_by_mail(app, client, db, mailbox, run_jobs):
    page = client.get("/login").get_data(as_text=True)
    assert "Opret en konto" in page
    form = client.get("/signup").get_data(as_text=True)
    assert "Opret jeres Bogbro-konto" in form and "CVR-nummer" in form

    response = client.post("/signup", data=SIGNUP)
    assert response.status_code == 302 and response.headers["Location"] == "/dashboard"
    user = db.session.scalar(select(User))
    assert (user.email, user.role, user.account.name, user.account.cvr) == (
        "karen@keramik.dk",
        "owner",
        "Keramikværkstedet ApS",
        "35000038",  # compacted
    )
    assert user.email_confirmed_at is None and user.account.awaiting_confirmation
    assert db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all() == [
        "account.signed_up"
    ]

    # Logged in at once, on the dashboard: the checklist and what is still missing.
    dashboard = client.get("/dashboard").get_data(as_text=True)
    assert "Kom i gang" in dashboard and "Næste:" in dashboard
    assert "Bekræft din e-mailadresse karen@keramik.dk" in dashboard

    run_jobs()
    message = mailbox.last("karen@keramik.dk")
    assert message["Subject"] == "Bekræft din e-mailadresse til Bogbro"
    link = mailbox.link(message, "/signup/confirm/")
    assert link.startswith(app.config["PUBLIC_URL"].rstrip("/") + "/signup/confirm/")  # never the Host header
    path = urlsplit(link).path

    confirmed = client.get(path, follow_redirects=True).get_data(as_text=True)
    assert "Din e-mailadresse er bekræftet." in confirmed
    db.session.expire_all()
    assert user.email_confirmed_at is not None and not user.account.awaiting_confirmation
    assert "Bekræft din e-mailadresse karen" not in confirmed
    again = client.get(path, follow_redirects=True).get_data(as_text=True)
    assert "Din e-mailadresse var allerede bekræftet." in again
    assert db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all() == [
        "account.signed_up",
        "user.email_confirmed",
    ]


def test_a_cvr_failing_its_check_digit_is_a_field_error_and_nothing_is_created(client, db, mailbox, run_jobs):
    response = client.post("/signup", data={**SIGNUP, "cvr": "35000039"})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Dette er ikke et gyldigt CVR-nummer" in page
    assert 'value="Keramikværkstedet ApS"' in page  # what was typed stays
    assert counts(db) == (0, 0, 0)
    run_jobs()
    assert mailbox.messages == []


def test_an_address_or_cvr_already_in_use_is_a_field_error_and_nothing_is_created(client, db, owner):
    before = counts(db)
    taken_email = client.post("/signup", data={**SIGNUP, "email": " OWNER@kunde.dk"})
    assert taken_email.status_code == 400
    assert "Denne e-mailadresse er allerede i brug." in taken_email.get_data(as_text=True)
    taken_cvr = client.post("/signup", data={**SIGNUP, "cvr": owner.account.cvr})
    assert taken_cvr.status_code == 400
    assert "Der findes allerede en konto med dette CVR-nummer." in taken_cvr.get_data(as_text=True)
    assert counts(db) == before
    assert db.session.scalars(select(AuditEvent)).all() == []


def test_an_address_with_an_open_invitation_cannot_sign_up(owner_client, client, db):
    owner_client.post(
        "/settings/members/invite", data={"email": "ny@kunde.dk", "role": "member", "language": "da"}
    )
    assert db.session.scalar(select(Invitation)) is not None
    owner_client.post("/logout")
    response = client.post("/signup", data={**SIGNUP, "email": "ny@kunde.dk"})
    assert response.status_code == 400
    assert "Der er en åben invitation til denne e-mailadresse." in response.get_data(as_text=True)


def test_signup_needs_csrf_and_is_rate_limited_per_client(app, client, db, redis):
    assert client.post("/signup", data=SIGNUP, csrf=False).status_code == 400
    assert counts(db) == (0, 0, 0)
    app.config["SIGNUPS_PER_IP_PER_HOUR"] = 2
    try:
        for cvr in ("35000046", "35000054"):  # two attempts (the second a duplicate address) count
            client.post("/signup", data={**SIGNUP, "cvr": cvr})
            client.post("/logout")
        refused = client.post("/signup", data={**SIGNUP, "cvr": "35000062", "email": "third@keramik.dk"})
        assert refused.status_code == 429
        assert "For mange tilmeldinger herfra." in refused.get_data(as_text=True)
        assert counts(db) == (1, 1, 0)
        other_client = client.post(
            "/signup",
            data={**SIGNUP, "cvr": "35000062", "email": "third@keramik.dk"},
            environ_base={"REMOTE_ADDR": "10.0.0.9"},
        )
        assert other_client.status_code == 302
    finally:
        app.config["SIGNUPS_PER_IP_PER_HOUR"] = 5


def test_an_unconfirmed_owner_sets_up_but_cannot_activate(client, db, mailbox, run_jobs):
    client.post("/signup", data=SIGNUP)
    account = db.session.scalar(select(Account))
    setup = make_setup_without_activating(account)
    refused = client.post(f"/setup/{setup.id}/activate", follow_redirects=True).get_data(as_text=True)
    assert "Kontoens ejer skal først bekræfte sin e-mailadresse" in refused
    db.session.expire_all()
    assert not setup.active

    # A new link, at most one a minute; the old one still works until it is used.
    run_jobs()
    first = mailbox.link(mailbox.last("karen@keramik.dk"), "/signup/confirm/")
    resent = client.post("/signup/confirm/resend", follow_redirects=True).get_data(as_text=True)
    assert "Et nyt link er på vej til karen@keramik.dk." in resent
    again = client.post("/signup/confirm/resend", follow_redirects=True).get_data(as_text=True)
    assert "mindre end et minut siden" in again
    run_jobs()
    assert len([m for m in mailbox.messages if m["To"] == "karen@keramik.dk"]) == 2

    client.get(urlsplit(first).path)
    activated = client.post(f"/setup/{setup.id}/activate", follow_redirects=True).get_data(as_text=True)
    assert "Bogføringsopsætningen er aktiv." in activated


def make_setup_without_activating(account):
    from portal.setups import operations
    from tests.pipeline.conftest import _pick

    setup = connect_sandbox(account, "e-conomic").setups[0]
    operations.select_setup(setup, True)
    for template in setup.templates:
        spec = operations.spec_of(setup, template)
        available = {f.name: operations.choices(setup, f.choices) for f in spec.fields}
        assert not operations.save_template(
            template, {f.name: _pick(template, f, available[f.name]) for f in spec.fields}, available
        )
    return setup


def test_a_confirmation_link_is_bound_to_the_address(app, client, db, mailbox, run_jobs):
    client.post("/signup", data=SIGNUP)
    run_jobs()
    path = urlsplit(mailbox.link(mailbox.last("karen@keramik.dk"), "/signup/confirm/")).path
    user = db.session.scalar(select(User))
    user.email = "karen@andet.dk"  # changed since the link was mailed
    db.session.commit()
    assert client.get(path).status_code == 400
    assert client.get("/signup/confirm/garbage").status_code == 400
    db.session.expire_all()
    assert user.email_confirmed_at is None


def test_the_checklist_follows_the_data_until_the_first_transfer(db, account, owner, owner_client, run_jobs):
    def checklist():
        page = owner_client.get("/dashboard").get_data(as_text=True)
        if 'id="onboarding"' not in page:
            return None
        section = page.split('id="onboarding"', 1)[1].split("</section>", 1)[0]
        done = section.count('class="done"')
        following = section.split("Næste:", 1)[1].split("</a>", 1)[0]
        return done, following.rsplit(">", 1)[1].strip(), section

    done, following, section = checklist()
    assert (done, following) == (0, "Forbind dit regnskabsprogram")
    assert 'href="/setup"' in section
    connection = connect_sandbox(account, "e-conomic")
    done, following, section = checklist()
    assert (done, following) == (1, "Udfyld skabelonerne")
    assert f'href="/setup/connections/{connection.id}"' in section  # where "Use this organisation" is ticked
    connection.setups[0].selected = True
    db.session.commit()
    done, following, section = checklist()
    assert following == "Udfyld skabelonerne" and f'href="/setup/{connection.setups[0].id}"' in section

    other = make_account("Anden ApS", "35000070")  # another account's progress counts for nothing
    make_setup(other, "dynaccount")
    setup = make_setup(account, "dynaccount")
    assert checklist()[:2] == (3, "Forbind en salgskilde")
    source_link = make_source_link(db, account, setup, states={"processing": "draft"})
    assert checklist()[:2] == (4, "Din første overførsel")
    feed(source_link, order())
    run_jobs()
    assert checklist() is None  # all done: the checklist steps aside


def test_support_creates_an_account_from_a_quote_and_invites_its_owner(
    app, staff_client, staff, db, mailbox, run_jobs, client
):
    # The prospect asks for a quote on /priser (in another browser), as the public calculator takes it.
    seed_catalogue()
    prospect = app.test_client()
    selection = "systems=e-conomic&systems=woocommerce&orders=300&billing=monthly"
    sent = prospect.post(
        "/priser/tilbud?" + selection,
        data={
            "name": "Pia Potte",
            "company": "Potteriet ApS",
            "cvr": "35000089",
            "email": "pia@potteriet.dk",
        },
    )
    assert sent.status_code == 302
    quote = db.session.scalar(select(QuoteRequest))
    monthly = format_amount(quote.breakdown["monthly_total"], locale="da")
    page = staff_client.get(f"/support/quotes/{quote.id}").get_data(as_text=True)
    assert "Opret en konto ud fra forespørgslen" in page
    form = staff_client.get(f"/support/new-account?quote={quote.id}").get_data(as_text=True)
    assert 'value="Potteriet ApS"' in form and 'value="pia@potteriet.dk"' in form

    bad = staff_client.post(
        "/support/new-account",
        data={"company": "Potteriet ApS", "cvr": "35000088", "email": "pia@potteriet.dk", "language": "da",
              "quote_id": quote.id},
    )  # fmt: skip
    assert bad.status_code == 400 and "ikke et gyldigt CVR-nummer" in bad.get_data(as_text=True)
    assert counts(db) == (0, 1, 0)  # the staff user only

    made = staff_client.post(
        "/support/new-account",
        data={"company": "Potteriet ApS", "cvr": "35000089", "email": "pia@potteriet.dk", "language": "da",
              "quote_id": quote.id},
    )  # fmt: skip
    assert made.status_code == 302
    account = db.session.scalar(select(Account))
    assert account.quote_request_id == quote.id and account.quote_request.selection["orders"] == 300
    db.session.expire_all()
    assert quote.status == "won"
    assert "Blev til kontoen" in staff_client.get(f"/support/quotes/{quote.id}").get_data(as_text=True)
    assert "Potteriet ApS" in staff_client.get(made.headers["Location"]).get_data(as_text=True)
    actions = db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions == ["account.created_by_support", "invitation.created"]

    run_jobs()
    message = mailbox.last("pia@potteriet.dk")
    assert message["Subject"] == "Du er inviteret til Potteriet ApS på Bogbro"
    staff_client.post("/logout")
    path = urlsplit(mailbox.link(message, "/invitation/")).path
    joined = client.post(path, data={"name": "Pia Potte", "password": PASSWORD, "confirm": PASSWORD})
    assert joined.status_code == 302
    owner = db.session.scalar(select(User).where(User.email == "pia@potteriet.dk"))
    assert owner.role == "owner" and owner.email_confirmed_at is not None  # the link proved the address
    assert not owner.account.awaiting_confirmation
    # The customer sees the selection and price the account was made from.
    quote_card = client.get("/settings").get_data(as_text=True).split('id="quote"', 1)[1]
    assert "Dit tilbud" in quote_card and "300" in quote_card and monthly in quote_card


def test_support_cannot_create_an_account_twice_and_customers_cannot_at_all(staff_client, owner, db, client):
    taken = staff_client.post(
        "/support/new-account",
        data={"company": "Ny ApS", "cvr": "35000097", "email": owner.email, "language": "da"},
    )
    assert taken.status_code == 400 and "allerede i brug" in taken.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Account)) == 1
    staff_client.post("/logout")
    login(client, owner.email)
    form = {"company": "Ny ApS", "cvr": "35000097", "email": "x@ny.dk", "language": "da"}
    assert client.post("/support/new-account", data=form).status_code == 403


def test_staff_and_invited_users_are_confirmed(db, account):
    assert make_user("agent@bogbro.dk", staff=True).email_confirmed_at is not None
    assert make_user("ejer@kunde.dk", account).email_confirmed_at is not None


def test_the_dashboard_leaves_out_unusable_organisations_never_set_up(owner_client, account, db):
    from portal.models import AccountingSetup, Connection

    connection = Connection(account_id=account.id, system="dinero", label="", credentials={}, sandbox=True)
    reason = "Only organisations with Dinero Pro can be used through the API."
    unused, cancelled = (
        AccountingSetup(account_id=account.id, connection=connection, external_id=str(n), name=name)
        for n, name in enumerate(("Hobbyklubben", "Gammel Pro ApS"))
    )
    unused.unusable_reason = cancelled.unusable_reason = reason
    cancelled.selected = True
    db.session.add_all([unused, cancelled])
    db.session.commit()
    page = owner_client.get("/dashboard").get_data(as_text=True)
    assert "Hobbyklubben" not in page  # made before connect refused such organisations
    assert "Gammel Pro ApS" in page and "Kan ikke bruges" in page  # set up, then Pro was cancelled
    assert 'class="done"' not in page.split('id="onboarding"', 1)[1].split("</section>", 1)[0]
