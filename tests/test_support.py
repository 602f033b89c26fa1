from datetime import timedelta

from sqlalchemy import select

from portal.models import AuditEvent, SupportAccessLog, SupportSession
from tests.conftest import login, make_account, make_user


def start(client, account, reason="Kunden ringede: fakturaer mangler i e-conomic"):
    return client.post(f"/support/accounts/{account.id}/impersonate", data={"reason": reason})


def test_customers_cannot_open_the_support_console(owner_client, account):
    assert owner_client.get("/support").status_code == 403
    assert owner_client.get(f"/support/accounts/{account.id}").status_code == 403
    assert start(owner_client, account).status_code == 403


def test_search_by_name_cvr_and_user_email(staff_client, account, owner, other_account):
    def found(query):
        return staff_client.get("/support", query_string={"q": query}).get_data(as_text=True)

    assert "Kunde ApS" in found("kunde") and "Anden Butik" not in found("kunde")
    assert "Anden Butik" in found("35 00 00 38")
    assert "Kunde ApS" in found("OWNER@kunde") and "Anden Butik" not in found("owner@kunde")
    assert "Ingen konto matcher" in found("%")  # LIKE wildcards are searched for literally


def test_live_search_answers_htmx_with_the_results_only(staff_client, account):
    response = staff_client.get("/support?q=kunde", headers={"HX-Request": "true", "HX-Target": "results"})
    body = response.get_data(as_text=True)
    assert "Kunde ApS" in body and "<html" not in body


def test_staff_without_an_account_lands_in_the_console(staff_client):
    assert staff_client.get("/").headers["Location"] == "/support"
    assert staff_client.get("/dashboard").headers["Location"] == "/support"


def test_impersonation_needs_a_reason(staff_client, account, db):
    response = start(staff_client, account, reason="  ")
    assert response.status_code == 400
    assert "Angiv hvorfor du har brug for adgang." in response.get_data(as_text=True)
    assert start(staff_client, account, reason="fordi").status_code == 400
    assert db.session.scalars(select(SupportSession)).all() == []


def test_impersonation_banner_log_and_stop(staff_client, staff, account, owner, db):
    assert start(staff_client, account).headers["Location"] == "/dashboard"
    page = staff_client.get("/dashboard").get_data(as_text=True)
    assert 'id="impersonation-banner"' in page
    assert "agent@bogbro.dk" in page and "Kunde ApS" in page
    assert "Kunden ringede: fakturaer mangler i e-conomic" in page
    assert "Stop supportadgang" in page
    staff_client.get("/settings?tab=1")
    staff_client.get("/settings/members")

    log = db.session.scalars(select(SupportAccessLog).order_by(SupportAccessLog.id)).all()
    assert [(row.method, row.path) for row in log] == [
        ("GET", "/dashboard"),
        ("GET", "/settings?tab=1"),
        ("GET", "/settings/members"),
    ]
    assert {row.staff_user_id for row in log} == {staff.id}
    assert {row.account_id for row in log} == {account.id}

    response = staff_client.post("/support/impersonation/stop")
    assert response.headers["Location"] == f"/support/accounts/{account.id}"
    assert 'id="impersonation-banner"' not in staff_client.get("/support").get_data(as_text=True)
    assert staff_client.get("/dashboard").headers["Location"] == "/support"
    session = db.session.scalar(select(SupportSession))
    assert session.ended_at is not None
    actions = db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions == ["support.access_started", "support.access_ended"]


def test_customer_sees_the_support_access_log(app, staff_client, account, owner, db):
    start(staff_client, account)
    staff_client.get("/settings/members")
    staff_client.post("/support/impersonation/stop")

    customer = app.test_client()
    login(customer, owner.email)
    overview = customer.get("/settings/support-access").get_data(as_text=True)
    assert "Agnes Agent" in overview and "Kunden ringede" in overview
    session = db.session.scalar(select(SupportSession))
    detail = customer.get(f"/settings/support-access/{session.id}").get_data(as_text=True)
    assert "/settings/members" in detail and "/dashboard" in detail
    change_log = customer.get("/settings/audit").get_data(as_text=True)
    assert "Support-adgang startet" in change_log and "Agnes Agent: Kunden ringede" in change_log
    assert "support.access_started" not in change_log
    # the dashboard says support was here (ended sessions stay visible for a week)
    dashboard = customer.get("/dashboard").get_data(as_text=True)
    assert "Bogbros support (Agnes Agent) arbejdede i jeres konto" in dashboard
    assert "Kunden ringede" in dashboard


def test_support_cannot_touch_passwords_or_members(staff_client, account, owner, member):
    start(staff_client, account)
    assert staff_client.get("/password").status_code == 403
    assert (
        staff_client.post(
            "/settings/members/invite", data={"email": "mole@evil.dk", "role": "owner", "language": "da"}
        ).status_code
        == 403
    )
    assert staff_client.post(f"/settings/members/{member.id}/remove").status_code == 403


def test_support_changes_are_audited_as_support(staff_client, account, owner, db):
    start(staff_client, account)
    response = staff_client.post("/settings", data={"name": "Kunde Ny ApS", "cvr": account.cvr})
    assert response.status_code == 302
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "account.updated"))
    assert event.changes == {"name": {"before": "Kunde ApS", "after": "Kunde Ny ApS"}}
    assert event.support_session_id is not None
    assert event.actor.email == "agent@bogbro.dk"


def test_switching_accounts_ends_the_previous_session(staff_client, account, other_account, db):
    start(staff_client, account)
    start(staff_client, other_account)
    sessions = db.session.scalars(select(SupportSession).order_by(SupportSession.id)).all()
    assert sessions[0].ended_at is not None and sessions[1].ended_at is None
    assert "Anden Butik ApS" in staff_client.get("/dashboard").get_data(as_text=True)


def test_impersonation_expires(staff_client, account, db):
    start(staff_client, account)
    session = db.session.scalar(select(SupportSession))
    session.started_at -= timedelta(hours=3)
    db.session.commit()
    assert staff_client.get("/dashboard").headers["Location"] == "/support"
    db.session.expire_all()
    assert db.session.get(SupportSession, session.id).ended_at is not None


def test_a_support_session_is_bound_to_its_staff_user(app, staff_client, account, db):
    start(staff_client, account)
    session_id = db.session.scalar(select(SupportSession.id))
    colleague = make_user("colleague@bogbro.dk", staff=True)
    other = app.test_client()
    login(other, colleague.email)
    with other.session_transaction() as flask_session:
        flask_session["support_session_id"] = session_id
    assert other.get("/dashboard").headers["Location"] == "/support"


def test_logging_out_ends_support_access(staff_client, account, db):
    start(staff_client, account)
    staff_client.post("/logout")
    assert db.session.scalar(select(SupportSession.ended_at)) is not None


def test_search_lists_every_match(staff_client, db):
    for n in range(3):
        make_account(f"Butik {n} ApS", ["35000046", "35000054", "35000062"][n])
    db.session.commit()
    page = staff_client.get("/support?q=butik").get_data(as_text=True)
    assert page.count("/support/accounts/") == 3
