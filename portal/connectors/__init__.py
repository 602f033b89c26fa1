"""Clients for the external systems. Nothing here knows Flask or the database: a connector is built from
a ConnectorContext (where to send requests, Redis for shared rate limits and locks, the app's own ids,
and a CredentialStore that persists rotated tokens) and speaks in the dataclasses of connectors.base.
"""

# Annotations stay unevaluated: the field `redis: redis.Redis | None` would otherwise read its own default.
from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import httpx
from redis import Redis

from portal.connectors.base import AccountingConnector, AccountingSystem

# system key -> module with SYSTEM (an AccountingSystem) and CONNECTOR (an AccountingConnector subclass)
SYSTEM_MODULES: dict[str, str] = {
    "e-conomic": "portal.connectors.economic",
    "dinero": "portal.connectors.dinero",
    "dynaccount": "portal.connectors.dynaccount",
    "shopify": "portal.connectors.shopify",
    "woocommerce": "portal.connectors.woocommerce",
    "stripe": "portal.connectors.stripe",
    "frisbii": "portal.connectors.frisbii",
}


class CredentialStore(Protocol):
    def get(self) -> dict:
        """The current credentials."""

    def refresh(self, is_stale: Callable[[dict], bool], renew: Callable[[dict], dict]) -> dict:
        """Single-flight refresh: under a lock shared by every worker, re-read the credentials; if still
        stale, call renew(old) and store its result atomically. Returns the credentials to use."""


@dataclass
class StaticCredentials:
    """A CredentialStore for credentials that never rotate (and for tests)."""

    credentials: dict

    def get(self) -> dict:
        return self.credentials

    def refresh(self, is_stale, renew) -> dict:
        if is_stale(self.credentials):
            self.credentials = renew(self.credentials)
        return self.credentials


@dataclass
class ConnectorContext:
    base_url: str  # the system's API root (the real one, or a sandbox prefix)
    credentials: CredentialStore
    external_id: str | None = None  # agreement number / organisation id / API id
    transport: httpx.BaseTransport | None = None  # None: the network; else e.g. the in-process sandbox
    redis: Redis | None = None  # shared rate limits
    settings: dict = field(default_factory=dict)  # the app's own ids/secrets and extra URLs for this system
    sleep: Callable[[float], None] = time.sleep
    retries: int = 3
    backoff: float = 0.5


def system_module(key: str):
    try:
        return importlib.import_module(SYSTEM_MODULES[key])
    except KeyError:
        raise LookupError(f"unknown system {key!r}") from None


def get_system(key: str) -> AccountingSystem:
    return system_module(key).SYSTEM


def available_systems() -> list[AccountingSystem]:
    """The accounting systems (the registry also holds webshops and other sending systems)."""
    return [system for system in map(get_system, SYSTEM_MODULES) if isinstance(system, AccountingSystem)]


def make_connector(key: str, context: ConnectorContext) -> AccountingConnector:
    return system_module(key).CONNECTOR(context)
