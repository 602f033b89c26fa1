"""Flask CLI commands: `seed-demo`, `create-staff`, and `dev` (what `make run` starts)."""

import click
from flask import current_app
from sqlalchemy import select

from portal.auth.passwords import hash_password
from portal.calculator.seed import seed_catalogue
from portal.extensions import db
from portal.models import Account, User

DEMO_STAFF = ("support@example.com", "support-demo", "Sara Support")
DEMO_OWNER = ("demo@example.com", "demo-demo", "Dorthe Demo")
DEMO_ACCOUNT = ("Demo Webshop ApS", "35000003")
# The demo customer's plan (Settings → Subscription): e-conomic + WooCommerce in the smallest tier, so a
# handful of sandbox orders shows the pace heading past it.
DEMO_PLAN = {"systems": ["e-conomic", "woocommerce"], "orders": 100, "addons": {}, "billing": "monthly"}


def _ensure_user(email, password, name, **fields) -> User:
    user = db.session.scalar(select(User).where(User.email == email))
    if user is None:
        user = User(email=email, name=name, password_hash=hash_password(password), **fields)
        db.session.add(user)
    return user


def seed_demo() -> None:
    """Idempotent: creates what is missing, leaves what exists (and its passwords) alone."""
    _ensure_user(*DEMO_STAFF, is_staff=True)
    name, cvr = DEMO_ACCOUNT
    account = db.session.scalar(select(Account).where(Account.cvr == cvr))
    if account is None:
        account = Account(name=name, cvr=cvr, plan={**DEMO_PLAN, "setup": False})
        db.session.add(account)
        db.session.flush()
    _ensure_user(*DEMO_OWNER, account_id=account.id, role="owner")
    db.session.commit()
    seed_catalogue()
    if current_app.config["SANDBOX_ENABLED"]:
        from portal.setups.demo import (
            seed_economic_demo,
            seed_frisbii_demo,
            seed_stripe_demo,
            seed_woocommerce_demo,
        )

        seed_economic_demo(account)
        seed_woocommerce_demo(account)
        seed_stripe_demo(account)
        seed_frisbii_demo(account)


def register_commands(app):
    @app.cli.command("seed-demo")
    def seed_demo_command():
        """Create the demo staff user, account, owner, price catalogue and (with the sandboxes on) a
        finished e-conomic sandbox source_link. Idempotent; needs Redis (`make run` starts it first)."""
        seed_demo()
        staff, owner = f"{DEMO_STAFF[0]} / {DEMO_STAFF[1]}", f"{DEMO_OWNER[0]} / {DEMO_OWNER[1]}"
        click.echo(f"Demo data ready: staff {staff}, owner {owner}")

    @app.cli.command("create-staff")
    @click.argument("email")
    @click.option("--name", prompt=True)
    @click.password_option()
    def create_staff(email, name, password):
        """Create a support agent (staff user, belongs to no account)."""
        if db.session.scalar(select(User).where(User.email == email.lower())) is not None:
            raise click.ClickException(f"{email} already exists")
        db.session.add(
            User(email=email.lower(), name=name, password_hash=hash_password(password), is_staff=True)
        )
        db.session.commit()
        click.echo(f"Staff user {email} created")

    @app.cli.command("dev")
    @click.option("--port", envvar="PORT", default=5000, show_default=True)
    def dev(port):
        """Run the portal, an RQ worker with its scheduler and (unless REDIS_URL is set) an embedded Redis."""
        from portal.devserver import run

        run(current_app.instance_path, port)
