import pytest
from sqlalchemy import delete, select, update

from portal.models import AuditEvent, AuditLogIsAppendOnly


def test_account_change_records_before_and_after(owner_client, owner, account, db):
    response = owner_client.post("/settings", data={"name": "Kunde Omdøbt ApS", "cvr": "35 00 00 46"})
    assert response.status_code == 302
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "account.updated"))
    assert event.changes == {
        "name": {"before": "Kunde ApS", "after": "Kunde Omdøbt ApS"},
        "cvr": {"before": "35000011", "after": "35000046"},
    }
    assert (event.actor_id, event.account_id, event.support_session_id) == (owner.id, account.id, None)
    page = owner_client.get("/settings/audit").get_data(as_text=True)
    assert "Kunde Omdøbt ApS" in page and "Olga Owner" in page


def test_saving_unchanged_settings_logs_nothing(owner_client, account, db):
    owner_client.post("/settings", data={"name": account.name, "cvr": account.cvr})
    assert db.session.scalars(select(AuditEvent)).all() == []


def test_invalid_cvr_is_refused_and_changes_nothing(owner_client, account, db):
    response = owner_client.post("/settings", data={"name": "Nyt Navn ApS", "cvr": "12345678"})
    assert response.status_code == 200
    assert "ikke et gyldigt CVR-nummer" in response.get_data(as_text=True)
    db.session.expire_all()
    assert account.name == "Kunde ApS"
    assert db.session.scalars(select(AuditEvent)).all() == []


def test_cvr_of_another_account_is_refused(owner_client, account, other_account, db):
    response = owner_client.post("/settings", data={"name": "Kunde ApS", "cvr": other_account.cvr})
    assert "allerede en anden konto" in response.get_data(as_text=True)


def test_members_see_but_cannot_change_company_details(member_client, account):
    assert "Kun ejere kan ændre" in member_client.get("/settings").get_data(as_text=True)
    assert member_client.post("/settings", data={"name": "Hacked", "cvr": account.cvr}).status_code == 403


def test_audit_events_cannot_be_deleted_or_changed(owner_client, db):
    owner_client.post("/settings/profile", data={"name": "Olga O.", "language": "da"})
    event = db.session.scalar(select(AuditEvent))
    assert event.changes == {"name": {"before": "Olga Owner", "after": "Olga O."}}

    db.session.delete(event)
    with pytest.raises(AuditLogIsAppendOnly):
        db.session.flush()
    db.session.rollback()

    event = db.session.scalar(select(AuditEvent))
    event.action = "something.else"
    with pytest.raises(AuditLogIsAppendOnly):
        db.session.flush()
    db.session.rollback()

    with pytest.raises(AuditLogIsAppendOnly):
        db.session.execute(delete(AuditEvent))
    with pytest.raises(AuditLogIsAppendOnly):
        db.session.execute(update(AuditEvent).values(action="x"))
    db.session.rollback()
    assert db.session.scalar(select(AuditEvent.action)) == "user.profile_updated"


def test_rows_from_before_the_rename_are_named_as_the_new_ones(app, db, account):
    """Audit rows are never rewritten: a link made before "order integration" became "source link" (December
    2026) still reads as what it is, with its name."""
    from portal.account import changelog
    from tests.pipeline.conftest import make_setup, make_source_link

    link = make_source_link(db, account, make_setup(account, "e-conomic"))
    old = AuditEvent(
        account_id=account.id,
        action="order_integration.created",
        object_type="OrderIntegration",
        object_id=str(link.id),
        changes={},
    )
    db.session.add(old)
    db.session.commit()
    with app.test_request_context(headers={"Accept-Language": "da"}):
        (entry,) = changelog.entries([old])
        assert entry.what == "Salgskilde koblet til bogføringsopsætningen"
        assert entry.subject == link.display_name
