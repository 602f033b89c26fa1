"""The figures behind /metrics, computed at scrape from the database and Redis, so that every gunicorn worker
(and every web machine) answers the same, and the RQ workers, which serve no HTTP, are counted too.

bogbro_transfers{status}                 transfers still open per status (pending, running, waiting,
                                         needs_attention), every account: exact, from the status index
bogbro_transfers_estimated{status}       every status incl. done and skipped, as PostgreSQL's statistics
                                         estimate them (exact on SQLite): counting a year's done transfers
                                         at every scrape would read them all
bogbro_queue_jobs{queue,state}           RQ jobs queued, scheduled (retries), started, failed
bogbro_oldest_waiting_event_seconds      age of the oldest stored event not yet processed (0: none)
bogbro_api_request_seconds{system}       outbound API requests' latency (histogram; every attempt)
bogbro_api_errors_total{system,kind}     those that failed: rate_limited, server_error, client_error,
                                         timeout, unreachable
bogbro_ratelimit_waits_total{system}     requests held back for our own per-organisation pace, and the
bogbro_ratelimit_wait_seconds_total      seconds they waited
bogbro_scrape_error{source}              1 when the database or Redis did not answer this scrape (the
                                         figures from it are then missing, not zero)
"""

import logging
from datetime import UTC, datetime

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from redis.exceptions import RedisError
from rq import Queue
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from portal.connectors import metrics as api_metrics
from portal.extensions import db
from portal.models import TRANSFER_STATUSES, SourceEvent, Transfer
from portal.redis_client import get_redis

log = logging.getLogger(__name__)

OPEN_STATUSES = ("pending", "running", "waiting", "needs_attention")
_STATISTICS = text(
    "SELECT s.most_common_vals::text::text[], s.most_common_freqs, c.reltuples"
    " FROM pg_stats s JOIN pg_class c ON c.relname = s.tablename AND c.relkind = 'r'"
    " JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = s.schemaname"
    " WHERE s.schemaname = current_schema() AND s.tablename = 'transfers' AND s.attname = 'status'"
)


def _estimated_statuses() -> dict[str, int]:
    """Transfers per status as the planner's statistics (ANALYZE, autovacuum) have them on PostgreSQL; an
    exact count elsewhere. A status too rare to be among the most common values is left out (0)."""
    if db.engine.dialect.name != "postgresql":
        return dict(db.session.execute(select(Transfer.status, func.count()).group_by(Transfer.status)).all())
    row = db.session.execute(_STATISTICS).first()
    if row is None or row[0] is None:
        return {}
    values, freqs, total = row
    return {value: round(freq * max(total, 0)) for value, freq in zip(values, freqs, strict=True)}


class PortalCollector:
    """A prometheus_client collector; call within an app context."""

    def collect(self):
        errors = GaugeMetricFamily(
            "bogbro_scrape_error", "1 when a source did not answer this scrape", labels=["source"]
        )
        for source, families in (("database", self._database), ("redis", self._redis)):
            try:
                yield from families()
                errors.add_metric([source], 0)
            except (SQLAlchemyError, RedisError, OSError) as exc:
                log.warning("metrics: %s did not answer: %s", source, exc)
                if source == "database":
                    db.session.rollback()
                errors.add_metric([source], 1)
        yield errors

    def _database(self):
        counts = dict(
            db.session.execute(
                select(Transfer.status, func.count())
                .where(Transfer.status.in_(OPEN_STATUSES))
                .group_by(Transfer.status)
            ).all()
        )
        transfers = GaugeMetricFamily("bogbro_transfers", "Open transfers per status", labels=["status"])
        for status in OPEN_STATUSES:
            transfers.add_metric([status], counts.get(status, 0))
        estimated = GaugeMetricFamily(
            "bogbro_transfers_estimated", "Transfers per status, estimated", labels=["status"]
        )
        estimates = _estimated_statuses()
        for status in TRANSFER_STATUSES:
            estimated.add_metric([status], estimates.get(status, 0))
        oldest = db.session.scalar(
            select(func.min(SourceEvent.received_at)).where(SourceEvent.processed_at.is_(None))
        )
        age = 0.0
        if oldest is not None:
            oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)  # SQLite forgets the zone
            age = max(0.0, (datetime.now(UTC) - oldest).total_seconds())
        waiting = GaugeMetricFamily(
            "bogbro_oldest_waiting_event_seconds", "Age of the oldest event not yet processed (0: none)"
        )
        waiting.add_metric([], age)
        db.session.rollback()  # a read: end the transaction, hold no snapshot
        return [transfers, estimated, waiting]

    def _redis(self):
        redis = get_redis()
        jobs = GaugeMetricFamily(
            "bogbro_queue_jobs", "RQ jobs per queue and state", labels=["queue", "state"]
        )
        for queue in Queue.all(connection=redis) or [Queue("default", connection=redis)]:
            jobs.add_metric([queue.name, "queued"], queue.count)
            for state, registry in (
                ("scheduled", ScheduledJobRegistry),
                ("started", StartedJobRegistry),
                ("failed", FailedJobRegistry),
            ):
                jobs.add_metric([queue.name, state], registry(queue=queue).count)
        return [jobs, *self._api(api_metrics.read(redis))]

    def _api(self, systems: dict[str, dict[str, float]]):
        latency = HistogramMetricFamily(
            "bogbro_api_request_seconds", "Outbound API requests' latency, every attempt", labels=["system"]
        )
        errors = CounterMetricFamily(
            "bogbro_api_errors", "Outbound API requests that failed", labels=["system", "kind"]
        )
        waits = CounterMetricFamily(
            "bogbro_ratelimit_waits", "Requests held back for our own rate limit", labels=["system"]
        )
        waited = CounterMetricFamily(
            "bogbro_ratelimit_wait_seconds",
            "Seconds requests waited for our own rate limit",
            labels=["system"],
        )
        for system, fields in sorted(systems.items()):
            if "count" in fields:
                cumulative, buckets = 0.0, []
                for bound in (*map(str, api_metrics.BUCKETS), "+Inf"):
                    cumulative += fields.get(f"le={bound}", 0)
                    buckets.append((bound, cumulative))
                latency.add_metric([system], buckets, fields.get("seconds", 0.0))
            for kind in api_metrics.ERROR_KINDS:
                errors.add_metric([system, kind], fields.get(f"error={kind}", 0))
            if "waits" in fields:
                waits.add_metric([system], fields["waits"])
                waited.add_metric([system], fields.get("wait_seconds", 0.0))
        return [latency, errors, waits, waited]
