"""Why a transfer stopped, in words a customer can act on: one place that turns any exception raised while
deciding, planning or posting into an error kind and a Message (pipeline.messages).

Transient failures (timeouts, 429, 5xx) are retried by the pipeline before they get here as "gave up";
everything else stops at once: the setup (configuration), the order (order), or an error nobody expected
(unexpected) — the last is logged with its traceback, and still ends visible as "needs attention", never
a job that crashes and is retried in silence.
"""

import logging

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, OperationalError

from portal.connectors.errors import AuthenticationError, ConnectorError, ValidationError
from portal.engine.settings import EngineConfigError, OrderError
from portal.engine.vat import UnknownRate
from portal.i18n import system_name
from portal.pipeline.messages import N_, Message, from_engine_error, message

log = logging.getLogger(__name__)

CONFIGURATION, ORDER, UNEXPECTED = "configuration", "order", "unexpected"


def ours_unavailable(exc: BaseException) -> bool:
    """Our own database or Redis went away (a restart, a failover): nothing can be recorded now, and nothing
    is wrong with the order. The job fails; the transfer stays `running` until its lease runs out and the
    watchdog (scheduling.recover) queues it again from its checkpoint — an event stays unprocessed."""
    if isinstance(exc, OperationalError | RedisConnectionError | RedisTimeoutError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def explain(exc: Exception, system: str, currency: str | None = None) -> tuple[str, Message]:
    """(error kind, what to do) for a failure that a retry alone will not mend. `system`: the accounting
    system's key, named as the system spells itself in the message; `currency`: the sale's, where known."""
    system = system_name(system)
    if isinstance(exc, ValidationError) and currency and refuses_currency(exc.details):
        return CONFIGURATION, message(
            N_(
                "%(system)s does not have the currency %(currency)s, which this sale is in, so nothing was "
                "booked. Add %(currency)s to the currencies in %(system)s, then retry."
            ),
            system=system,
            currency=currency,
        )
    if isinstance(exc, OrderError):
        return ORDER, from_engine_error(exc)
    if isinstance(exc, EngineConfigError):
        return CONFIGURATION, message(
            N_("%(detail)s Complete the accounting setup's templates under Setup."),
            detail=from_engine_error(exc),
        )
    if isinstance(exc, UnknownRate):
        return CONFIGURATION, message(
            N_(
                "Bogbro knows no VAT rate for this order's country (%(detail)s), so it cannot compute the "
                "invoice. Nothing was posted: contact Bogbro's support, who update the VAT rate table; then "
                "retry."
            ),
            detail=str(exc),
        )
    if isinstance(exc, AuthenticationError):
        return CONFIGURATION, message(
            N_("%(system)s refused Bogbro's access: %(detail)s. Reconnect %(system)s under Setup."),
            system=system,
            detail=detail(exc),
        )
    if isinstance(exc, ConnectorError):  # validation and other refusals: a person must look
        return CONFIGURATION, message(
            N_(
                "%(system)s refused the document: %(detail)s. Check the accounting setup's templates "
                "under Setup (an account, product group or layout may have been deleted there), then retry."
            ),
            system=system,
            detail=detail(exc),
        )
    if isinstance(exc, KeyError | ValueError | TypeError):  # a payload the engine cannot read
        return ORDER, message(
            N_("The order could not be read (%(error)s). Check the order in the shop."),
            error=f"{type(exc).__name__}: {exc}",
        )
    return UNEXPECTED, message(
        N_(
            "An unexpected error stopped the transfer (%(error)s). Nothing more was posted; Bogbro has "
            "logged it. Retry; if it happens again, contact Bogbro's support."
        ),
        error=type(exc).__name__,
    )


def refuses_currency(details: object) -> bool:
    """Whether a refusal's per-field errors name the currency: e-conomic's `errors.currency`, Dinero's
    `fields.Currency` (the only field a sale's currency goes into)."""
    if isinstance(details, dict):
        return any(
            (str(key).lower() == "currency" and bool(value)) or refuses_currency(value)
            for key, value in details.items()
        )
    if isinstance(details, list):
        return any(refuses_currency(item) for item in details)
    return False


def detail(exc: Exception) -> str:
    return getattr(exc, "message", None) or str(exc)  # the accounting system's own words: as they are


# What a notification names (its sale, or a sale's refunds) could not be read from the sales source
# (intake._fetch_failed): per failure, what to do.
SALE_NOT_READ = {
    "refused": N_(
        "Bogbro could not fetch invoice %(reference)s from %(system)s: %(detail)s. The API key may have been "
        "revoked: connect %(system)s again under Sales sources, then retry."
    ),
    # Needing attention, not skipped: Bogbro cannot tell a deleted test invoice from a key of another
    # account (a real sale then): a person decides — "Leave out" for the first, reconnecting for the second.
    "not_found": N_(
        "Bogbro could not fetch invoice %(reference)s from %(system)s: it was not found (%(detail)s). If it "
        "was deleted (a test invoice, say), leave it out; otherwise check that the sales source is connected "
        "to the right %(system)s account, then retry."
    ),
    "failed": N_(
        "Bogbro could not fetch invoice %(reference)s from %(system)s: %(detail)s. Check the sales source "
        "under Sales sources, then retry."
    ),
    "gave_up": N_(
        "Bogbro could not fetch invoice %(reference)s from %(system)s: %(detail)s. Gave up after "
        "%(attempts)s attempts; retry later."
    ),
}
# A refund's sale not found is no failure (_sale_and_refunds): a payment that paid no invoice of ours.
REFUNDS_NOT_READ = {
    "refused": N_(
        "Bogbro could not fetch the refunds of %(reference)s from %(system)s: %(detail)s. The API key may "
        "have been revoked: connect %(system)s again under Sales sources, then retry."
    ),
    "not_found": N_(
        "Bogbro could not fetch the refunds of %(reference)s from %(system)s: %(detail)s. Check the sales "
        "source under Sales sources, then retry."
    ),
    "gave_up": N_(
        "Bogbro could not fetch the refunds of %(reference)s from %(system)s: %(detail)s. Gave up after "
        "%(attempts)s attempts; retry later."
    ),
}
REFUNDS_NOT_READ["failed"] = REFUNDS_NOT_READ["not_found"]
