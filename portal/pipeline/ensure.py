"""The customer and product steps of a run: found in the cache, or found or created in the accounting system
by one worker at a time (a find-or-create lock per customer/product)."""

import json
import logging
from contextlib import contextmanager

from portal.connectors.base import AccountingConnector, RemoteCustomer
from portal.connectors.errors import TransientError
from portal.connectors.ratelimit import RateLimiter
from portal.engine.invoice import DraftPlan
from portal.extensions import db
from portal.i18n import system_name
from portal.models import Transfer
from portal.pipeline import ride_along
from portal.pipeline import settings as pipeline_settings
from portal.pipeline.locks import Lease, _held_lock
from portal.pipeline.messages import N_, Message, message
from portal.pipeline.steps import TransferFailed, before_remote_call, log_step
from portal.redis_client import get_redis

log = logging.getLogger(__name__)

CREATOR_WAIT_SECONDS = 30  # how long a transfer waits for another creating the same customer or product
PRODUCT_CACHE_SECONDS = 24 * 3600
CUSTOMER_CACHE_SECONDS = 24 * 3600


CUSTOMER_OUTCOMES = {
    "found": N_("found"),
    "created": N_("created"),
    "cached": N_("known from an earlier order"),
    "collective": N_("the collective customer"),
}


@contextmanager
def _one_creator(key: str):
    """Only one worker at a time finds-or-creates a given customer or product: two orders from the same
    new customer (or with the same new product) on two workers would both find nothing and both create
    it — a second customer, or a product e-conomic refuses as a duplicate. The caller looks at the cache
    again once it holds the lock: the worker it waited for may have made it."""
    lock = Lease(get_redis(), f"bogbro:lock:{key}")
    if not lock.acquire(wait_seconds=CREATOR_WAIT_SECONDS):
        raise TransientError("another transfer is creating the same customer or product")
    try:
        yield
    finally:
        if not lock.release():
            log.warning("%s: the find-or-create lock was lost before it was released", key)


def _customer_key(transfer: Transfer, plan: DraftPlan) -> str | None:
    """The cache entry of the customer the order matches (by e-mail, CVR …); None when it matches none."""
    match = plan.match
    if match.kind != "lookup":
        return None
    return f"customer:{transfer.source_link.setup_id}:{match.field}:{match.value}"


def _product_key(transfer: Transfer, product) -> str:
    return f"product:{transfer.source_link.setup_id}:{product.number}"


def cache_entries(
    transfer: Transfer, plan: DraftPlan, also: str, limiter: RateLimiter | None = None, turns: int = 0
) -> dict[str, bytes | None]:
    """What the cache knows of this order's customer and products, and the Redis key `also` (under its own
    name: the run's other cache entry, the open periods), in one Redis round trip (steady state: everything,
    so the accounting system is not asked) — with the transfer's deferred lease, if it has one, and the
    `turns` of the requests the run will send next (its create and booking) taken from `limiter`."""
    keys = []
    customer_key = _customer_key(transfer, plan)
    if not transfer.remote_customer_id and customer_key:
        keys.append(customer_key)
    if not transfer.products_ensured:
        keys.extend(_product_key(transfer, product) for product in plan.products)
    lease = _held_lock.get()
    deferred = lease is not None and lease.deferred
    redis = get_redis()
    taking = turns > 0 and limiter is not None and limiter.client is redis  # the same Redis: one round trip
    ride = ride_along.current()
    with redis.pipeline(transaction=False) as pipe:
        riding = ride.queue(pipe) if ride is not None else 0  # what the batch's last run let go of
        if deferred:
            lease.queue_acquire(pipe)  # the transfer's own lease rides along (locks.Lease.defer)
        pipe.mget([also, *(f"bogbro:{key}" for key in keys)])
        ours = len(pipe)
        if taking:
            limiter.queue_turns(pipe, turns)  # last: the API counts waiting in this job go before it
        answers = pipe.execute(raise_on_error=False)
    if ride is not None:
        ride.answered(answers[:riding])
    for answer in answers[riding:ours]:  # a failed count fails nothing (metrics); a failed take, the run
        if isinstance(answer, Exception):
            raise answer
    if deferred:
        lease.acquired(answers[riding])
    if taking:
        limiter.turns_taken(answers[-1])
    values = answers[ours - 1]
    return {also: values[0], **dict(zip(keys, values[1:], strict=True))}


def ensure_customer(
    transfer: Transfer, connector: AccountingConnector, plan: DraftPlan, cached: dict
) -> RemoteCustomer:
    if transfer.remote_customer_id:
        return RemoteCustomer(
            id=transfer.remote_customer_id, number=transfer.remote_customer_number, name=plan.customer.name
        )
    match = plan.match
    if match.kind == "collective":
        remote, outcome = (
            RemoteCustomer(id=match.customer_number, number=match.customer_number, name=plan.customer.name),
            "collective",
        )
    elif match.kind == "lookup":
        cache_key = _customer_key(transfer, plan)
        remote = _cached_customer(cached.get(cache_key), plan)
        outcome = "cached"
        if remote is None:
            before_remote_call()  # nothing uncommitted while waiting for another worker
            with _one_creator(cache_key):
                remote = _cached_customer(get_redis().get(f"bogbro:{cache_key}"), plan)
                if remote is None:
                    remote, outcome = _find_or_create_customer(transfer, connector, plan)
                    get_redis().set(
                        f"bogbro:{cache_key}",
                        json.dumps({"id": remote.id, "number": remote.number}),
                        ex=CUSTOMER_CACHE_SECONDS,
                    )
    else:  # nothing to match on: a customer of its own
        before_remote_call()
        remote, outcome = _find_or_create_customer(transfer, connector, plan)
    transfer.remote_customer_id, transfer.remote_customer_number = remote.id, remote.number
    log_step(
        transfer,
        "customer",
        "ok",
        message(
            N_("Customer %(number)s (%(outcome)s)."),
            ("outcome",),
            number=remote.number or remote.id,
            outcome=CUSTOMER_OUTCOMES.get(outcome, outcome),
        ),
        {"match": match.reason},
    )
    if outcome != "cached" and outcome != "collective":
        db.session.commit()  # a checkpoint once the accounting system was asked (a retry must not redo it)
    return remote


def _cached_customer(cached: bytes | None, plan: DraftPlan) -> RemoteCustomer | None:
    if not cached:
        return None
    found = json.loads(cached)
    return RemoteCustomer(found["id"], found["number"], plan.customer.name)


def _find_or_create_customer(
    transfer: Transfer, connector: AccountingConnector, plan: DraftPlan
) -> tuple[RemoteCustomer, str]:
    match = plan.match
    rules = pipeline_settings.rules(transfer.source_link, "customers")
    if match.kind == "lookup":
        remote = connector.find_customer(match.field, match.value)
        if remote is not None:
            if rules.update:
                return connector.update_customer(remote, plan.customer), "found, updated"
            return remote, "found"
    if not rules.create:
        raise TransferFailed(
            "configuration",
            message(
                N_(
                    "No customer in %(system)s has the %(field)s %(value)s, and the sales source's settings "
                    "do not let Bogbro create customers: create the customer there (or allow "
                    "creating customers), then retry."
                ),
                system=system_name(transfer.source_link.setup.connection.system),
                field=match.field,
                value=match.value or "–",
            ),
        )
    return connector.create_customer(plan.customer), "created"


def ensure_products(
    transfer: Transfer, connector: AccountingConnector, plan: DraftPlan, cached: dict
) -> None:
    if transfer.products_ensured:
        return
    redis = get_redis()
    done = []
    for product in plan.products:
        key = _product_key(transfer, product)
        if cached.get(key):
            continue
        before_remote_call()  # nothing uncommitted while waiting for another worker
        with _one_creator(key):
            if redis.get(f"bogbro:{key}"):
                continue  # made by the worker we waited for
            done.append(_find_or_create_product(transfer, connector, product))
            redis.set(f"bogbro:{key}", "1", ex=PRODUCT_CACHE_SECONDS)
    transfer.products_ensured = True
    if done:  # a checkpoint only when the accounting system was asked (all cached: nothing to keep)
        log_step(transfer, "products", "ok", message(N_("Products: %(products)s."), products=done))
        db.session.commit()


def _find_or_create_product(transfer: Transfer, connector: AccountingConnector, product) -> Message:
    rules = pipeline_settings.rules(transfer.source_link, "products")
    found = connector.find_product(product.number)
    if found is None:
        if not rules.create:
            raise TransferFailed(
                "configuration",
                message(
                    N_(
                        "The product %(number)s (%(name)s) does not exist in %(system)s, and the sales "
                        "source's settings do not let Bogbro create products: create it there (or allow "
                        "creating products), then retry."
                    ),
                    number=product.number,
                    name=product.name,
                    system=system_name(transfer.source_link.setup.connection.system),
                ),
            )
        connector.create_product(product)
        return message(N_("%(number)s created"), number=product.number)
    if rules.update:
        connector.update_product(found, product)
        return message(N_("%(number)s updated"), number=product.number)
    return message(N_("%(number)s found"), number=product.number)
