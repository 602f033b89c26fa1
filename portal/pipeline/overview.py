"""The dashboard's transfer figures for one account, gathered in a handful of queries.

today        today's transfers (Danish calendar day, by created_at) per status: one grouped count
attention    transfers that need a person: the count (capped: "over 1.000"), and the newest few with their
             message
queue        jobs waiting on the default RQ queue and jobs scheduled for later (retries); None when
             Redis does not answer, so the dashboard still shows everything else
polls        each sales source's last poll of its shop (None: never)
"""

import logging
from dataclasses import dataclass, field
from datetime import date, timedelta

from redis.exceptions import RedisError
from rq.registry import ScheduledJobRegistry
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from portal.extensions import db
from portal.models import SourceLink, Transfer
from portal.pipeline.counts import capped_count
from portal.pipeline.filters import day_start, today
from portal.queue import get_queue

log = logging.getLogger(__name__)

ATTENTION_SHOWN = 5


@dataclass(frozen=True)
class QueueDepth:
    queued: int
    scheduled: int


@dataclass
class Overview:
    day: date
    today: dict[str, int] = field(default_factory=dict)  # status -> count (only statuses present)
    attention_count: int = 0  # a counts.Count: capped at COUNT_CAP
    attention: list[Transfer] = field(default_factory=list)  # the newest first
    queue: QueueDepth | None = None
    source_links: list[SourceLink] = field(default_factory=list)

    @property
    def today_total(self) -> int:
        return sum(self.today.values())


def queue_depth() -> QueueDepth | None:
    """The default queue's length and its scheduled jobs; None when Redis cannot be reached."""
    try:
        queue = get_queue()
        return QueueDepth(queued=queue.count, scheduled=ScheduledJobRegistry(queue=queue).count)
    except (RedisError, OSError) as exc:
        log.warning("queue depth unknown: %s", exc)
        return None


def account_overview(account, day: date | None = None) -> Overview:
    day = day or today()
    overview = Overview(day=day)
    start, end = day_start(day), day_start(day + timedelta(days=1))
    rows = db.session.execute(
        select(Transfer.status, func.count())
        .where(Transfer.account_id == account.id, Transfer.created_at >= start, Transfer.created_at < end)
        .group_by(Transfer.status)
    )
    overview.today = {status: count for status, count in rows}
    attention = select(Transfer).where(
        Transfer.account_id == account.id, Transfer.status == "needs_attention"
    )
    overview.attention_count = capped_count(attention)
    if overview.attention_count:
        newest = attention.order_by(Transfer.updated_at.desc(), Transfer.id.desc()).limit(ATTENTION_SHOWN)
        overview.attention = list(db.session.scalars(newest))
    overview.source_links = account_source_links(account.id)
    overview.queue = queue_depth()
    return overview


def account_source_links(account_id: int) -> list[SourceLink]:
    """The account's sales sources by name, with their shop connections (one query)."""
    return list(
        db.session.scalars(
            select(SourceLink)
            .options(joinedload(SourceLink.connection))
            .where(SourceLink.account_id == account_id)
            .order_by(SourceLink.name, SourceLink.id)
        )
    )
