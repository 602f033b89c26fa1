"""The document "order" (e-conomic's, reserving stock): made once, and turned into the invoice draft when a
later state asks for an invoice (e-conomic's upgrade)."""

from functools import partial

from portal.connectors.base import AccountingConnector, RemoteCustomer, RemoteInvoice
from portal.engine.invoice import DraftPlan
from portal.extensions import db
from portal.models import Transfer, utcnow
from portal.models.transfers import ORDER_PREFIX
from portal.pipeline.messages import N_, message
from portal.pipeline.steps import (
    TransferFailed,
    answer_lost,
    before_remote_call,
    first_create_needs_lookup,
    found_by_reference,
    log_step,
    sent_or_found,
    totals_differ,
)

# --- orders (e-conomic's, reserving stock): the document "order", invoiced when a later state asks ---------


def finish_order(
    transfer: Transfer, connector: AccountingConnector, plan: DraftPlan, customer: RemoteCustomer
) -> None:
    number = _ensure_order(transfer, connector, plan, customer)
    if not plan.can_book:
        raise TransferFailed("totals_differ", totals_differ(plan, order=number))
    transfer.status, transfer.finished_at, transfer.started_at = "done", utcnow(), None
    transfer.error_kind = transfer.error_message = transfer.reason = None
    log_step(transfer, "done", "ok", message(N_("Order %(number)s."), number=number), {"order": number})
    db.session.commit()


def _ensure_order(
    transfer: Transfer, connector: AccountingConnector, plan: DraftPlan, customer: RemoteCustomer
) -> str:
    """The order's number in the accounting system, made once. Checkpoints: draft_id "order:" and
    draft_requested are committed before the create is sent; "order:<number>" once it is known."""
    if transfer.remote_order:
        return transfer.remote_order
    reference = plan.invoice.reference
    remote = None
    if transfer.remote_order == "" or first_create_needs_lookup(transfer):
        before_remote_call()
        remote = connector.find_order(reference)  # a create was sent (its answer lost), or may have been
        if remote is not None:
            log_step(
                transfer,
                "order",
                "reused",
                message(
                    N_("Found order %(id)s by reference %(reference)s."), id=remote.id, reference=reference
                ),
            )
    if remote is None:
        order = plan.for_customer(customer)
        transfer.draft_requested, transfer.draft_id = True, ORDER_PREFIX
        db.session.commit()
        remote, lost = sent_or_found(
            partial(connector.create_order, order, lookup=False), connector.find_order, reference
        )
        if lost:
            log_step(transfer, "order", "reused", answer_lost(remote.id))
        else:
            log_step(
                transfer,
                "order",
                "ok",
                message(N_("Order %(id)s created."), id=remote.id),
                {"reference": reference, "lines": len(order.lines), "gross": str(remote.totals.gross)},
            )
    transfer.draft_id = ORDER_PREFIX + remote.id
    db.session.commit()
    return remote.id


def invoice_from_order(
    transfer: Transfer, connector: AccountingConnector, plan: DraftPlan, customer: RemoteCustomer
) -> RemoteInvoice:
    """The order's invoice draft, made from the order (e-conomic's upgrade), after which the order no
    longer reserves stock. Resuming (draft_requested: the create was sent) looks the invoice up first, and
    removes the order if the earlier attempt stopped before it was gone."""
    reference = plan.invoice.reference
    number = transfer.remote_order or "?"
    before_remote_call()
    remote = connector.find_invoice(reference) if transfer.draft_requested else None
    if remote is not None:
        log_step(transfer, "draft", "reused", found_by_reference(remote.number or remote.id, reference))
        _close_order(transfer, connector, reference)
    else:
        order = connector.find_order(reference)
        if order is not None and not order.open:
            # Archived: turned into an invoice in the accounting system already (by hand?).
            remote = connector.find_invoice(reference)
            if remote is None:
                raise TransferFailed(
                    "configuration",
                    message(
                        N_(
                            "The order %(order)s was already turned into an invoice in the accounting "
                            "system, but no invoice carries the reference %(reference)s. Check the invoice "
                            "there; Bogbro makes no second one."
                        ),
                        order=order.id,
                        reference=reference,
                    ),
                )
            log_step(
                transfer,
                "draft",
                "reused",
                message(N_("Order %(order)s was invoiced already: %(id)s."), order=order.id, id=remote.id),
            )
        else:
            invoice = plan.for_customer(customer)
            transfer.draft_requested = True
            db.session.commit()
            if order is not None:
                create = partial(connector.invoice_order, order, invoice)
            else:
                create = partial(connector.create_draft_invoice, invoice, lookup=False)
            remote, lost = sent_or_found(create, connector.find_invoice, reference)
            if lost:
                log_step(transfer, "draft", "reused", answer_lost(remote.id))
                _close_order(transfer, connector, reference)
            elif order is not None:
                log_step(
                    transfer,
                    "draft",
                    "ok",
                    message(N_("Draft %(id)s made from order %(order)s."), id=remote.id, order=order.id),
                    {"reference": reference, "order": order.id, "gross": str(remote.totals.gross)},
                )
            else:
                log_step(
                    transfer,
                    "draft",
                    "ok",
                    message(
                        N_(
                            "Draft %(id)s created: the order %(order)s is no longer in the accounting system "
                            "(deleted there?), so the invoice was made from the sales source's order."
                        ),
                        id=remote.id,
                        order=number,
                    ),
                    {"reference": reference, "gross": str(remote.totals.gross)},
                )
    transfer.draft_id = remote.id  # the order is behind us
    if remote.booked:
        transfer.booked_number = remote.number
    db.session.commit()
    return remote


def _close_order(transfer: Transfer, connector: AccountingConnector, reference: str) -> None:
    """The invoice exists: an order still open (an attempt stopped between the two) must not keep
    reserving stock or be invoiced again by hand."""
    order = connector.find_order(reference)
    if order is not None and order.open:
        connector.delete_order(order)
        log_step(
            transfer, "order", "ok", message(N_("Order %(id)s removed: its invoice exists."), id=order.id)
        )
