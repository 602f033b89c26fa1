"""The HTTP layer every connector uses: timeouts, shared rate limits, retries with backoff, and the
translation of failures into the error hierarchy of portal.connectors.errors.

Retry rules:
- nothing reached the system (connect error/timeout, 429): retry any method after the backoff or
  `Retry-After`;
- a 5xx, a read timeout or a dropped connection after the request was sent: retry only idempotent
  methods (GET, PUT, DELETE, HEAD); a POST raises AmbiguousWriteError so the caller looks up by reference.
"""

import email.utils
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import httpx

from portal.connectors.errors import (
    AmbiguousWriteError,
    AuthenticationError,
    ConfigurationError,
    NotFound,
    TransientError,
    ValidationError,
)
from portal.connectors.metrics import ApiMetrics, outcome_of
from portal.connectors.ratelimit import RateLimiter

if TYPE_CHECKING:
    from portal.connectors import ConnectorContext

log = logging.getLogger(__name__)

IDEMPOTENT = {"GET", "HEAD", "PUT", "DELETE", "OPTIONS"}
DEFAULT_TIMEOUT = httpx.Timeout(20.0, connect=5.0)
MAX_RETRY_AFTER = 60.0
# The requests sent inside a `counted()` block, per system (the completeness report says what it cost).
_counted: ContextVar[dict[str, int] | None] = ContextVar("counted_requests", default=None)


@contextmanager
def counted() -> Iterator[dict[str, int]]:
    """{system: requests sent} for every request this thread sends inside the block."""
    calls: dict[str, int] = {}
    token = _counted.set(calls)
    try:
        yield calls
    finally:
        _counted.reset(token)


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def pdf_content(response: httpx.Response, system: str) -> bytes:
    """The body of a "document as PDF" answer; a 2xx that is not a PDF (an HTML error page, JSON) is an
    error, not an attachment."""
    if not response.content.startswith(b"%PDF-"):
        raise ConfigurationError(
            f"{system} answered the PDF request with something that is not a PDF "
            f"({response.headers.get('Content-Type', 'no content type')})",
            system=system,
            status=response.status_code,
        )
    return response.content


def default_error_message(response: httpx.Response) -> tuple[str, dict]:
    return response.text[:500] or response.reason_phrase, {}


class _SharedTransport(httpx.HTTPTransport):
    """The process's connection pool for real HTTP: a connector lives for one job, but its TCP and TLS
    connections to e-conomic, Dinero … are kept for the next job instead of a new handshake per transfer.
    Closing a client leaves the shared pool open."""

    def close(self) -> None:
        pass


class _NoCookies(httpx.Cookies):
    def extract_cookies(self, response: httpx.Response) -> None:
        pass


class _Client(httpx.Client):
    """An httpx.Client that keeps no cookies. The APIs we call authenticate every request by its headers and
    set no cookie we need, yet httpx read each answer's Set-Cookie through urllib's cookie jar: a third of
    its own time per request (`make bench`)."""

    _no_cookies = _NoCookies()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._no_cookies

    @cookies.setter
    def cookies(self, cookies) -> None:
        raise TypeError("this client keeps no cookies")


_shared: dict[int, httpx.HTTPTransport] = {}  # by process id: a forked child builds its own


def shared_transport() -> httpx.HTTPTransport:
    pid = os.getpid()
    if pid not in _shared:
        _shared.clear()
        _shared[pid] = _SharedTransport()
    return _shared[pid]


class ApiClient:
    """A small wrapper around httpx.Client; one per connector instance (real HTTP shares the process's
    connection pool)."""

    def __init__(
        self,
        *,
        system: str,
        base_url: str,
        headers: dict | None = None,
        auth: httpx.Auth | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        limiter: RateLimiter | None = None,
        retries: int = 3,
        backoff: float = 0.5,
        error_message: Callable[[httpx.Response], tuple[str, dict]] = default_error_message,
        sleep: Callable[[float], None] = time.sleep,
        metrics: ApiMetrics | None = None,
    ):
        self.system = system
        self.metrics = metrics
        self.limiter = limiter
        self.retries = retries
        self.backoff = backoff
        self.error_message = error_message
        self.sleep = sleep
        self.http = _Client(
            base_url=base_url,
            headers=headers or {},
            auth=auth,
            transport=transport or shared_transport(),
            timeout=timeout,
        )

    def close(self):
        self.http.close()

    def request(self, method: str, url: str, *, idempotent: bool | None = None, **kwargs) -> httpx.Response:
        """Send with retries; return a 2xx response or raise a ConnectorError. `idempotent` overrides the
        method's rule (a GraphQL query is a POST that is safe to repeat)."""
        method = method.upper()
        idempotent = method in IDEMPOTENT if idempotent is None else idempotent
        attempt = 0
        while True:
            attempt += 1
            if self.limiter is not None:
                waited = self.limiter.acquire()
                if waited and self.metrics is not None:
                    self.metrics.rate_limit_wait(self.system, waited)
            try:
                response = self._send(method, url, **kwargs)
            except (
                httpx.InvalidURL
            ) as exc:  # a stored address httpx cannot use: a setting to fix, not a crash
                raise ConfigurationError(
                    f"{self.system}: unusable address: {exc}", system=self.system
                ) from exc
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                failure = TransientError(f"{self.system} could not be reached: {exc}", system=self.system)
                wait = None
            except (httpx.ReadTimeout, httpx.WriteTimeout, httpx.RemoteProtocolError, httpx.ReadError) as exc:
                kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "dropped the connection"
                if not idempotent:
                    raise AmbiguousWriteError(
                        f"{self.system} {kind} after the request was sent; it may have been carried out",
                        system=self.system,
                    ) from exc
                failure = TransientError(f"{self.system} {kind}", system=self.system)
                wait = None
            else:
                if response.is_success:
                    return response
                failure, wait = self._classify(response, idempotent)
            if attempt > self.retries:
                raise failure
            delay = wait if wait is not None else self.backoff * 2 ** (attempt - 1)
            if delay > MAX_RETRY_AFTER:
                raise failure
            log.info(
                "%s %s %s failed (%s); retry %d in %.2fs", self.system, method, url, failure, attempt, delay
            )
            self.sleep(delay)

    def _send(self, method: str, url: str, **kwargs) -> httpx.Response:
        """One HTTP request, counted (latency, and the error kind if any) when the client has metrics."""
        started = time.perf_counter()
        calls = _counted.get()
        if calls is not None:
            calls[self.system] = calls.get(self.system, 0) + 1
        try:
            response = self.http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            failure = "timeout" if isinstance(exc, httpx.TimeoutException) else "unreachable"
            self._count(started, None, failure)
            raise
        self._count(started, response.status_code, None)
        return response

    def _count(self, started: float, status: int | None, failure: str | None) -> None:
        if self.metrics is not None:
            self.metrics.request(self.system, time.perf_counter() - started, outcome_of(status, failure))

    def _classify(self, response: httpx.Response, idempotent: bool):
        """Raise for final errors; return (TransientError, wait) for retryable ones."""
        status = response.status_code
        message, details = self.error_message(response)
        common = {"system": self.system, "status": status, "details": details}
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            return TransientError(
                f"{self.system} rate limit: {message}", retry_after=retry_after, **common
            ), (retry_after)
        if status >= 500:
            if not idempotent:
                raise AmbiguousWriteError(
                    f"{self.system} answered {status} to a write; it may have been carried out: {message}",
                    **common,
                )
            return TransientError(f"{self.system} answered {status}: {message}", **common), None
        if status in (401, 403):
            raise AuthenticationError(message, **common)
        if status == 404:
            raise NotFound(message, **common)
        if status in (400, 409, 422):
            raise ValidationError(message, **common)
        raise ConfigurationError(message, **common)

    def get(self, url, **kwargs):
        return self.request("GET", url, **kwargs)

    def post(self, url, **kwargs):
        return self.request("POST", url, **kwargs)

    def put(self, url, **kwargs):
        return self.request("PUT", url, **kwargs)

    def delete(self, url, **kwargs):
        return self.request("DELETE", url, **kwargs)


def client_for(context: "ConnectorContext", **options) -> ApiClient:
    """An ApiClient that sends through the context's transport and retries (and sleeps) as the context
    says; `options` are the connector's own: system, base_url, headers or auth, timeout, limiter and
    error_message."""
    return ApiClient(
        transport=context.transport,
        retries=context.retries,
        backoff=context.backoff,
        sleep=context.sleep,
        metrics=ApiMetrics(context.redis) if context.redis is not None else None,
        **options,
    )
