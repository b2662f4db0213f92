"""Prometheus metrics: counted as requests pass, and read from the store when scraped.

One registry per application (no global state): requests by route template and status, request
duration, jobs by state, sync waits in flight, callbacks being awaited, the outbox (due, in flight,
failed) and delivery latency, verification failures by scheme, and configuration reloads.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "hookgate_requests",
            "HTTP requests by route template and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "hookgate_request_duration_seconds",
            "HTTP request duration by route template",
            ["route"],
            registry=self.registry,
        )
        self.jobs = Gauge("hookgate_jobs", "Jobs in the store by state", ["state"], registry=self.registry)
        self.ignored = Counter(
            "hookgate_ignored_requests",
            "Requests a route's filter or event list turned away, by route name",
            ["route"],
            registry=self.registry,
        )
        self.sync_waits = Gauge(
            "hookgate_sync_waits", "Sync calls waiting for their jobs", registry=self.registry
        )
        self.callbacks_waiting = Gauge(
            "hookgate_callbacks_waiting",
            "Jobs suspended awaiting a callback in this process",
            registry=self.registry,
        )
        self.outbox = Gauge(
            "hookgate_outbox_deliveries", "Outbox deliveries by state", ["state"], registry=self.registry
        )
        self.outbox_in_flight = Gauge(
            "hookgate_outbox_in_flight", "Delivery attempts in flight in this process", registry=self.registry
        )
        self.delivery_duration = Histogram(
            "hookgate_delivery_duration_seconds",
            "Outbound delivery attempt duration",
            ["subscription"],
            registry=self.registry,
        )
        self.verification_failures = Gauge(
            "hookgate_verification_failures",
            "Failed third-party signature checks by scheme",
            ["scheme"],
            registry=self.registry,
        )

        self.config_reloads = Counter(
            "hookgate_config_reloads",
            "Configuration reloads by result (applied or refused)",
            ["result"],
            registry=self.registry,
        )
        self.config_generation = Gauge(
            "hookgate_config_generation",
            "Which configuration this process serves: 1 at start, one more per applied reload",
            registry=self.registry,
        )
        self.config_generation.set(1)
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Label lookups are kept: prometheus-client resolves labels under a lock on every call."""
        key = (route, method, status)
        children = self._request_children.get(key)
        if children is None:
            children = self._request_children[key] = (
                self.requests.labels(route, method, str(status)),
                self.duration.labels(route),
            )
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
