"""The onboarding checklist on the dashboard, computed from what the account has (no flags that drift):
connect the accounting system → templates → book automatically or not (and activate) → connect a shop →
the first transfer."""

from dataclasses import dataclass

from flask import url_for
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from portal.extensions import db
from portal.models import Account, SourceLink, Transfer
from portal.setups.operations import account_setups, missing_values


@dataclass
class Step:
    title: str
    hint: str
    url: str
    done: bool


def onboarding(account: Account) -> list[Step]:
    setups = [setup for setup in account_setups(account) if not setup.unusable_reason]
    selected = [setup for setup in setups if setup.selected]
    complete = [setup for setup in selected if not missing_values(setup)]
    active = [setup for setup in complete if setup.active]
    # The wizard page of the setup furthest along, so "continue" lands where the work is.
    furthest = (active or complete or selected or [None])[0]
    if furthest is not None:
        wizard = url_for("setups.setup", setup_id=furthest.id)
    elif setups:  # connected, none ticked yet: the page with "Use this organisation"
        wizard = url_for("setups.connection", connection_id=setups[0].connection_id)
    else:
        wizard = url_for("setups.index")
    shops = db.session.scalars(
        select(SourceLink).where(SourceLink.account_id == account.id, SourceLink.active)
    ).all()
    transferred = db.session.scalar(
        select(Transfer.id).where(Transfer.account_id == account.id, Transfer.status == "done").limit(1)
    )
    return [
        Step(
            _l("Connect your accounting system"),
            _l("e-conomic, Dinero or Dynaccount: Bogbro lists the organisations you can use."),
            url_for("setups.index"),
            bool(setups),
        ),
        Step(
            _l("Fill in the templates"),
            _l("Tick “Use this organisation” and choose layout, accounts and payment terms."),
            wizard,
            bool(complete),
        ),
        Step(
            _l("Book automatically or not, and activate"),
            _l(
                "Choose whether invoices are booked at once or left as drafts, "
                "then activate the accounting setup."
            ),
            wizard + "#auto-book" if furthest else wizard,
            bool(active),
        ),
        Step(
            _l("Connect a sales source"),
            _l(
                "A webshop (WooCommerce, Shopify) or a subscription system (Stripe, Frisbii), linked to the "
                "accounting setup and switched on."
            ),
            url_for("shops.index"),
            bool(shops),
        ),
        Step(
            _l("Your first transfer"),
            _l("Place or update an order in the shop (or preview one) and see it arrive in your accounting."),
            url_for("transfers.index"),
            transferred is not None,
        ),
    ]


def next_step(steps: list[Step]) -> Step | None:
    return next((step for step in steps if not step.done), None)
