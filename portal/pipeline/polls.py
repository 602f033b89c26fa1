"""The reconciliation poll: what changed in the source since the last poll is recorded as events, so a
missed webhook is found; which source links are due."""

import hashlib
import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from portal.engine.documents import COPENHAGEN
from portal.extensions import db
from portal.models import SourceLink, utcnow
from portal.pipeline import settings as pipeline_settings
from portal.pipeline.intake import record_event
from portal.queue import enqueue_after_commit
from portal.setups.connections import connector_for
from portal.sources import Source, get_source

# --- the reconciliation poll -------------------------------------------------------------------------

POLL_OVERLAP = timedelta(minutes=2)  # re-read a little of the last window: clocks and commits are not exact
FIRST_POLL_WINDOW = timedelta(days=1)


def poll_orders(source_link_id: int) -> int:
    """Read the orders changed since the last poll from the shop and record each version as an event; the
    unique delivery id per version (poll_delivery_id) makes repeated polls and a poll racing a webhook
    harmless. Returns the number of new events."""
    source_link = db.session.get(SourceLink, source_link_id)
    if source_link is None or not source_link.active:
        return 0
    started = utcnow()
    since = source_link.last_polled_at - POLL_OVERLAP if source_link.last_polled_at else None
    if since is None:
        start = pipeline_settings.activation_date(source_link)
        since = (
            datetime.combine(start, datetime.min.time(), COPENHAGEN).astimezone(UTC)
            if start
            else started - FIRST_POLL_WINDOW
        )
    shop = connector_for(source_link.connection)
    source = get_source(source_link.source_system)
    recorded, page = 0, 1
    while page:
        result = shop.list_orders(modified_after=since, page=page)
        for order in result.items:
            delivery_id = poll_delivery_id(order, source)
            if record_event(
                source_link, "poll", delivery_id, "order.poll", str(order.get("id")), json.dumps(order)
            ):
                recorded += 1
        page = result.next_page
    source_link = db.session.get(SourceLink, source_link_id)
    source_link.last_polled_at = started
    db.session.commit()
    return recorded


def poll_delivery_id(order: dict, source: Source) -> str:
    """One id per version of an order: its modification time (whole seconds in both shops, so two changes
    within a second share it) and a hash of the document (the same version reads the same every poll)."""
    modified = source.sale_modified(order)
    digest = hashlib.sha256(json.dumps(order, sort_keys=True).encode()).hexdigest()[:16]
    return f"poll:{order.get('id')}:{modified or ''}:{digest}"


def due_polls() -> list[int]:
    """Active source links whose poll interval (settings "poll_minutes", default 5; 0 = never) has passed;
    each is queued as its own job."""
    now = utcnow()
    due = []
    for source_link in db.session.scalars(select(SourceLink).where(SourceLink.active)):
        minutes = int(
            (source_link.settings or {}).get("poll_minutes", pipeline_settings.DEFAULT_POLL_MINUTES)
        )
        if minutes <= 0:
            continue
        if source_link.last_polled_at is None or now - source_link.last_polled_at >= timedelta(
            minutes=minutes
        ):
            due.append(source_link.id)
            enqueue_after_commit("workers.jobs.poll_orders", source_link.id)
    db.session.commit()
    return due
