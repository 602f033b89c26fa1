"""One error hierarchy for every external system.

ConfigurationError: the customer (or we) must change something — a revoked grant, a missing role, a
    validation error, missing master data. Retrying will not help; stop and say what to fix, using the
    system's own message.
TransientError: the system is busy or unreachable (timeouts, 429, 5xx, dropped connections). Back off and
    retry; `retry_after` says when, if the system said.
AmbiguousWriteError: a write was sent but no answer came back (timeout, 5xx, dropped connection after the
    request left). It may or may not have happened: look the document up by its reference before any
    new attempt — never blind-retry a create.
"""


class ConnectorError(Exception):
    def __init__(self, message: str, *, system: str = "", status: int | None = None, details=None):
        super().__init__(message)
        self.message = message
        self.system = system
        self.status = status
        self.details = details or {}


class ConfigurationError(ConnectorError):
    pass


class ForeignEntries(ConfigurationError):
    """Our voucher in a journal (kassekladde) also holds entries Bogbro did not make: booking the voucher
    would book them too, so it is left unbooked for the customer to sort out."""

    def __init__(self, journal: int, voucher: int, count: int, *, system: str = ""):
        super().__init__(
            f"Voucher {voucher} in journal {journal} also holds {count} entries Bogbro did not make.",
            system=system,
        )
        self.journal, self.voucher, self.count = journal, voucher, count


class AuthenticationError(ConfigurationError):
    """401/403: the grant is revoked or lacks a role; the customer must reconnect."""


class ValidationError(ConfigurationError):
    """The system refused the document (400/422); `details` holds its per-field messages."""


class UnsupportedOperation(ConfigurationError):
    """The system cannot do this at all (e.g. stock in Dinero)."""


class NotFound(ConnectorError):
    pass


class TransientError(ConnectorError):
    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class AmbiguousWriteError(TransientError):
    pass
