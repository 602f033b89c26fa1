"""The reconciliation poll: what changed in the source since the last poll is recorded as events, so a
missed webhook is found; which integrations are due."""

import hashlib
import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from portal.engine.documents import COPENHAGEN
from portal.extensions import db
from portal.integrations.connections import connector_for
from portal.models import OrderIntegration, utcnow
from portal.pipeline import settings as pipeline_settings
from portal.pipeline.intake import record_event
from portal.queue import enqueue_after_commit
from portal.sources import Source, get_source

# --- the reconciliation poll -------------------------------------------------------------------------

POLL_OVERLAP = timedelta(minutes=2)  # re-read a little of the last window: clocks and commits are not exact
FIRST_POLL_WINDOW = timedelta(days=1)


def poll_orders(integration_id: int) -> int:
    """Read the orders changed since the last poll from the shop and record each version as an event; the
    unique delivery id per version (poll_delivery_id) makes repeated polls and a poll racing a webhook
    harmless. Returns the number of new events."""
    integration = db.session.get(OrderIntegration, integration_id)
    if integration is None or not integration.active:
        return 0
    started = utcnow()
    since = integration.last_polled_at - POLL_OVERLAP if integration.last_polled_at else None
    if since is None:
        start = pipeline_settings.activation_date(integration)
        since = (
            datetime.combine(start, datetime.min.time(), COPENHAGEN).astimezone(UTC)
            if start
            else started - FIRST_POLL_WINDOW
        )
    shop = connector_for(integration.connection)
    source = get_source(integration.source_system)
    recorded, page = 0, 1
    while page:
        result = shop.list_orders(modified_after=since, page=page)
        for order in result.items:
            delivery_id = poll_delivery_id(order, source)
            if record_event(
                integration, "poll", delivery_id, "order.poll", str(order.get("id")), json.dumps(order)
            ):
                recorded += 1
        page = result.next_page
    integration = db.session.get(OrderIntegration, integration_id)
    integration.last_polled_at = started
    db.session.commit()
    return recorded


def poll_delivery_id(order: dict, source: Source) -> str:
    """One id per version of an order: its modification time (whole seconds in both shops, so two changes
    within a second share it) and a hash of the document (the same version reads the same every poll)."""
    modified = source.sale_modified(order)
    digest = hashlib.sha256(json.dumps(order, sort_keys=True).encode()).hexdigest()[:16]
    return f"poll:{order.get('id')}:{modified or ''}:{digest}"


def due_polls() -> list[int]:
    """Active integrations whose poll interval (settings "poll_minutes", default 5; 0 = never) has passed;
    each is queued as its own job."""
    now = utcnow()
    due = []
    for integration in db.session.scalars(select(OrderIntegration).where(OrderIntegration.active)):
        minutes = int(
            (integration.settings or {}).get("poll_minutes", pipeline_settings.DEFAULT_POLL_MINUTES)
        )
        if minutes <= 0:
            continue
        if integration.last_polled_at is None or now - integration.last_polled_at >= timedelta(
            minutes=minutes
        ):
            due.append(integration.id)
            enqueue_after_commit("workers.jobs.poll_orders", integration.id)
    db.session.commit()
    return due
