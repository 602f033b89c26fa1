from sqlalchemy import func, select

from portal.cli import seed_demo
from portal.models import Account, AccountingSetup, User
from tests.conftest import login


def test_seed_demo_is_idempotent_and_its_logins_work(app, client, db):
    runner = app.test_cli_runner()
    for _ in range(2):
        result = runner.invoke(args=["seed-demo"])
        assert result.exit_code == 0, result.output
    assert db.session.scalar(select(func.count()).select_from(Account)) == 1
    assert db.session.scalar(select(func.count()).select_from(User)) == 2
    account = db.session.scalar(select(Account))
    assert (account.name, account.cvr) == ("Demo Webshop ApS", "35000003")

    login(client, "demo@example.com", "demo-demo")
    assert "Demo Webshop ApS" in client.get("/dashboard").get_data(as_text=True)
    client.post("/logout")
    login(client, "support@example.com", "support-demo")
    assert client.get("/").headers["Location"] == "/support"


def test_seed_keeps_changed_passwords(app, db):
    seed_demo()
    user = db.session.scalar(select(User).where(User.email == "demo@example.com"))
    user.password_hash = "changed"
    db.session.commit()
    seed_demo()
    db.session.expire_all()
    assert user.password_hash == "changed"


def test_create_staff_command(app, db):
    result = app.test_cli_runner().invoke(
        args=["create-staff", "Agent@Bogbro.dk", "--name", "Ny Agent", "--password", "long enough pw"]
    )
    assert result.exit_code == 0, result.output
    user = db.session.scalar(select(User).where(User.email == "agent@bogbro.dk"))
    assert user.is_staff and user.account_id is None


def test_seed_connects_a_finished_economic_sandbox_integration(app, db, redis):
    seed_demo()
    seed_demo()
    setups = db.session.scalars(select(AccountingSetup)).all()
    assert len(setups) == 1
    setup = setups[0]
    assert (setup.connection.system, setup.connection.sandbox) == ("e-conomic", True)
    assert setup.selected and setup.active and not setup.auto_book
    assert {(t.kind, tuple(sorted(t.values))) for t in setup.templates} == {
        ("invoice", ("layout", "payment_terms")),
        ("goods", ("product_group",)),
        ("freight", ("product_group",)),
        ("payments", ("account", "journal")),
    }
    assert setup.template("goods").labels == {"product_group": "Varer"}
