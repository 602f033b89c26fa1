"""RQ jobs: each takes ids and plain data, opens an app context, and calls an operation.

The worker imports this module; the app is created once per worker process from the same environment
variables as the web app. Inside an existing app context (the tests' burst worker) that app is used.
"""

from functools import cache, wraps

from flask import has_app_context


@cache
def _app():
    from portal import create_app

    return create_app()


def job(func):
    @wraps(func)
    def wrapper(*args, **kwargs):
        from portal.connectors.metrics import batched

        # A job's API counts ride on its rate-limiter round trips (portal.connectors.metrics).
        with batched():
            if has_app_context():
                return func(*args, **kwargs)
            with _app().app_context():
                return func(*args, **kwargs)

    return wrapper


# The mail jobs build their links on PUBLIC_URL; `base_url` is only accepted (and ignored) so jobs queued
# by an earlier release still run.


@job
def send_password_reset_mail(user_id: int, base_url: str | None = None) -> None:
    from portal.auth.operations import deliver_password_reset_mail

    deliver_password_reset_mail(user_id)


@job
def send_invitation_mail(invitation_id: int, base_url: str | None = None) -> None:
    from portal.auth.operations import deliver_invitation_mail

    deliver_invitation_mail(invitation_id)


@job
def send_email_confirmation(user_id: int) -> None:
    from portal.auth.signup import deliver_confirmation_mail

    deliver_confirmation_mail(user_id)


@job
def send_quote_confirmation(quote_id: int, base_url: str | None = None) -> None:
    from portal.calculator.operations import deliver_quote_confirmation

    deliver_quote_confirmation(quote_id)


@job
def send_quote_notification(quote_id: int, base_url: str | None = None) -> None:
    from portal.calculator.operations import deliver_quote_notification

    deliver_quote_notification(quote_id)


@job
def deliver_sandbox_webhook(system: str, tenant: str, action_id: int | str) -> None:
    """A sandbox shop's webhook delivery (portal.sandbox.<system>.deliver), queued after its commit."""
    import importlib

    from portal.sandbox import SANDBOXES

    importlib.import_module(SANDBOXES[system]).deliver(tenant, action_id)


@job
def process_event(event_id: int) -> None:
    from portal.pipeline.intake import process_event as process

    process(event_id)


@job
def fetch_again(event_id: int) -> None:
    from portal.pipeline.intake import fetch_again as fetch

    fetch(event_id)


@job
def drain_events(source_link_id: int) -> int:
    from portal.pipeline.scheduling import drain

    return drain(source_link_id)


@job
def run_transfer(transfer_id: int) -> None:
    from portal.pipeline.posting import run_transfer as run

    run(transfer_id)


@job
def register_payment_batch(setup_id: int) -> int:
    from portal.pipeline.payment_batches import run

    return run(setup_id)


@job
def undo_transfer(undo_id: int) -> None:
    from portal.pipeline.undo import run

    run(undo_id)


@job
def requeue_stuck_transfers() -> list[int]:
    from datetime import timedelta

    from flask import current_app

    from portal.pipeline.scheduling import requeue_stuck

    return requeue_stuck(timedelta(seconds=current_app.config["PIPELINE_STUCK_SECONDS"]))


@job
def recover_lost_work() -> dict[str, list[int]]:
    from datetime import timedelta

    from flask import current_app

    from portal.pipeline import payment_batches, undo
    from portal.pipeline.scheduling import recover

    recovered = recover(timedelta(seconds=current_app.config["PIPELINE_STUCK_SECONDS"]))
    return {**recovered, "undos": undo.recover(), "payment_batches": payment_batches.requeue_lost()}


@job
def fetch_refunds(source_link_id: int, order_id: str) -> int:
    from portal.pipeline.intake import fetch_refunds as fetch

    return fetch(source_link_id, order_id)


@job
def poll_orders(source_link_id: int) -> int:
    from portal.pipeline.polls import poll_orders as poll
    from portal.pipeline.posting import check_waiting_credit_notes

    # The ledger first: a shop that does not answer must not keep a booked invoice's credit notes waiting.
    check_waiting_credit_notes(source_link_id)
    return poll(source_link_id)


@job
def queue_due_polls() -> list[int]:
    from portal.pipeline.polls import due_polls

    return due_polls()


@job
def send_error_digests() -> list[int]:
    from portal.pipeline.notifications import send_error_digests as send

    return send()


@job
def send_daily_reports() -> list[int]:
    from portal.pipeline.notifications import send_daily_reports as send

    return send()


@job
def queue_drift_checks() -> list[int]:
    from portal.setups.drift import queue_due_checks

    return queue_due_checks()


@job
def check_setup_drift(setup_id: int) -> None:
    from portal.setups.drift import check_setup

    check_setup(setup_id)


@job
def queue_completeness_reports() -> list[int]:
    from portal.pipeline.completeness import queue_daily

    return queue_daily()


@job
def run_completeness_report(report_id: int) -> None:
    from portal.pipeline.completeness import run

    run(report_id)
