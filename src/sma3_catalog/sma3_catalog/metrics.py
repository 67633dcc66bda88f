"""Prometheus metrics of one catalog instance (own registry, exposed at ``/metrics``)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class CatalogMetrics:
    """Counters, gauges and histograms of the catalog.

    Parameters
    ----------
    device_count
        Called at scrape time for the ``sma3_catalog_devices`` gauge.
    """

    def __init__(self, device_count: Callable[[], int]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "sma3_catalog_http_requests",
            "HTTP requests by method, route and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "sma3_catalog_http_request_seconds",
            "HTTP request duration (s) by route.",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        self.heartbeats = Counter(
            "sma3_catalog_heartbeats",
            "MQTT heartbeats by result (refreshed, unknown device, invalid payload).",
            ["result"],
            registry=self.registry,
        )
        self.events = Counter(
            "sma3_catalog_events", "Events emitted by type.", ["type"], registry=self.registry
        )
        self.expiry_lag = Histogram(
            "sma3_catalog_expiry_lag_seconds",
            "Delay (s) between a record's expiry instant and its removal.",
            buckets=(0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0),
            registry=self.registry,
        )
        self.mqtt_connected = Gauge(
            "sma3_catalog_mqtt_connected",
            "1 while connected to the management broker.",
            registry=self.registry,
        )
        self.devices = Gauge("sma3_catalog_devices", "Registered devices.", registry=self.registry)
        self.devices.set_function(lambda: float(device_count()))

    def exposition(self) -> bytes:
        """Prometheus text format of all metrics."""
        return generate_latest(self.registry)
