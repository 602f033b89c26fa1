"""The refund's payout on a booked credit note, where the order's invoice was registered as paid: the money
that went back leaves the bank and the customer's balance in the ledger returns to zero.

A connector offers it as `register_refund_payment(PaymentData)`. Where no public source shows the system's
way of doing so, its evidence (portal/connectors/evidence/<system>.py) marks the call unverified, and it is
used only when the source link turns `refund_payouts_guessed` on (guesses are never on by default).
"""

from decimal import Decimal

from sqlalchemy import select

from portal.connectors import evidence
from portal.connectors.base import N_, AccountingConnector, RemoteInvoice
from portal.engine.invoice import DraftPlan
from portal.engine.ledger_documents import PaymentData
from portal.engine.settings import EngineConfigError
from portal.extensions import db
from portal.models import Transfer
from portal.pipeline import settings as pipeline_settings
from portal.pipeline.messages import message


def _invoice_paid(transfer: Transfer) -> bool:
    invoice = db.session.scalar(
        select(Transfer).where(
            Transfer.source_link_id == transfer.source_link_id,
            Transfer.kind == "invoice",
            Transfer.source_ref == transfer.order_ref,
        )
    )
    # a payment waiting for its setup's batch (payment_batches) counts: it is registered in a moment
    return invoice is not None and bool(invoice.payment_id or invoice.pending_payment)


def payments_template(transfer: Transfer, connector: AccountingConnector, remote: RemoteInvoice) -> dict:
    """The values of the setup's payments template (journal, bank/clearing or deposit account) that a payment
    or payout is registered with. Where the system has such a template and a value it names is not chosen
    (Dinero's is optional: only shops with paid methods need it), stop before asking the system, saying
    which value to choose: the document is booked, so a retry registers only the payment."""
    values = pipeline_settings.setup_values(transfer.source_link.setup).get("payments") or {}
    spec = next((spec for spec in connector.system.templates if spec.kind == "payments"), None)
    missing = next((field for field in spec.fields if not values.get(field.name)), None) if spec else None
    if missing is not None:
        msgid = (
            N_(
                "The credit note %(number)s is booked, but the refund's payout could not be registered: "
                "choose “%(field)s” in the template “%(template)s”, then retry."
            )
            if transfer.kind == "credit_note"
            else N_(
                "The invoice %(number)s is booked, but its payment could not be registered: choose "
                "“%(field)s” in the template “%(template)s”, then retry."
            )
        )
        raise EngineConfigError.translatable(
            msgid,
            labels=("field", "template"),
            number=str(remote.number or remote.id),
            field=missing.label,
            template=spec.label,
        )
    return values


def enabled(transfer: Transfer, connector: AccountingConnector) -> bool:
    if not hasattr(connector, "register_refund_payment"):
        return False
    settings = transfer.source_link.settings or {}
    return evidence.allowed(connector.system.key, "register_refund_payment", settings)


def register_refund_payment(
    transfer: Transfer,
    connector: AccountingConnector,
    plan: DraftPlan,
    remote: RemoteInvoice,
    log,
    before_call,
) -> None:
    """Checkpointed like the invoice's payment: `payment_id` is set once the payout is registered (the
    connector looks its reference up first, so a resume never registers it twice)."""
    if transfer.kind != "credit_note" or transfer.payment_id or not enabled(transfer, connector):
        return
    if not _invoice_paid(transfer):
        return  # the invoice is still open in the ledger: the credit note settles it, no money moved there
    payments = payments_template(transfer, connector, remote)
    before_call()
    payout = PaymentData(
        invoice=remote,
        amount=abs(Decimal(remote.totals.gross)),
        date=plan.invoice.date,
        reference=f"{remote.reference or plan.invoice.reference}-P",
        account=payments.get("account"),
        journal=payments.get("journal"),
    )
    transfer.payment_id = connector.register_refund_payment(payout)
    log(
        transfer,
        "payment",
        "ok",
        message(N_("Refund payout %(id)s registered."), id=transfer.payment_id),
    )
    db.session.commit()
