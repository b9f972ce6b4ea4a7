"""Prometheus metrics of one app (its own registry, so several apps in one process do not collide)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "rk_requests", "HTTP requests by route and status code.", ["route", "status"], registry=r
        )
        self.failures = Counter(
            "rk_request_failures", "Failed requests by route and error type.", ["route", "error_type"], registry=r
        )
        self.latency = Histogram(
            "rk_request_latency_seconds", "Request latency by route.", ["route"], buckets=LATENCY_BUCKETS, registry=r
        )
        self.queue_time = Histogram(
            "rk_queue_time_seconds", "Time a request waited for the model.", buckets=LATENCY_BUCKETS, registry=r
        )
        self.queue_size = Gauge("rk_queue_size", "Requests waiting for the model.", registry=r)
        self.batch_size = Histogram(
            "rk_batch_size", "Rows per scoring call.", buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024), registry=r
        )
        self.batch_tokens = Histogram(
            "rk_batch_tokens",
            "Tokens per scoring call.",
            buckets=(64, 256, 1024, 4096, 16384, 65536, 262144),
            registry=r,
        )
        self.model_info = Gauge("rk_model_info", "1 for the model version being served.", ["model_version"], registry=r)
        self.reloads = Counter("rk_model_reloads", "Model reloads by outcome.", ["outcome"], registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
