"""Metrics (Prometheus) and logs (structlog), DESIGN §10 / issue 8.

Metrics live in a registry per application, so that several apps in one process (tests,
embedding) never collide. Under `keyplane serve --workers N` each worker has its own; set
PROMETHEUS_MULTIPROC_DIR to aggregate them (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Iterator, MutableMapping
from typing import TYPE_CHECKING, Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from keyplane.domain.keyformat import KEY_PATTERN

if TYPE_CHECKING:
    from keyplane.runtime import Runtime

_KEY = re.compile(KEY_PATTERN)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            MultiProcessCollector(self.registry)  # type: ignore[no-untyped-call]
        self.requests = Counter(
            "keyplane_requests",
            "HTTP requests by method, route, status and error code.",
            ["method", "route", "status", "error"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "keyplane_request_duration_seconds",
            "Time to answer a request.",
            ["route"],
            registry=self.registry,
        )
        self.verify_seconds = Histogram(
            "keyplane_verification_duration_seconds",
            "Time to authenticate, rate-limit and authorize a request.",
            # Fine around 1 ms: the target for what authentication + rate limiting may add.
            buckets=(1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 7.5e-4, 1e-3, 2.5e-3, 5e-3, 0.01),
            registry=self.registry,
        )
        self.limiter_decisions = Counter(
            "keyplane_ratelimit_decisions",
            "Rate-limit decisions: allowed, rejected, or unavailable (shared limiter down).",
            ["result"],
            registry=self.registry,
        )
        # Counted on every authenticated request: the labelled children looked up once.
        self.decisions_by_result = {
            result: self.limiter_decisions.labels(result)
            for result in ("allowed", "rejected", "unavailable")
        }

    def watch(self, runtime: Runtime) -> None:
        """Expose the runtime's own counters (cache, limiter, change feed) at scrape time."""
        self.registry.register(_RuntimeCollector(runtime))


class _RuntimeCollector(Collector):
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[Metric]:
        keys = self.runtime.verifier.keys
        hits = CounterMetricFamily(
            "keyplane_key_cache", "Verified-key cache lookups.", labels=["result"]
        )
        hits.add_metric(["hit"], keys.hits)
        hits.add_metric(["miss"], keys.misses)
        yield hits
        size = GaugeMetricFamily("keyplane_key_cache_entries", "Keys in the verified-key cache.")
        size.add_metric([], len(keys))
        yield size
        failures = CounterMetricFamily(
            "keyplane_redis_failures", "Failed calls to Redis (rate limits, versions)."
        )
        failures.add_metric([], getattr(self.runtime.limiter, "failures", 0))
        yield failures
        now = time.time()
        lag = GaugeMetricFamily(
            "keyplane_flush_lag_seconds",
            "Seconds since the last successful flush of last-used times.",
        )
        lag.add_metric([], now - self.runtime.changes.flushed_at)
        yield lag
        feed = GaugeMetricFamily(
            "keyplane_change_feed_lag_seconds",
            "Seconds since the last successful poll of the change feed.",
        )
        feed.add_metric([], now - self.runtime.changes.polled_at)
        yield feed
        # Deployment-wide jobs run in whichever process claims the turn: across processes,
        # sum the runs and take the max of the last run.
        jobs = self.runtime.scheduled.values()
        runs = CounterMetricFamily(
            "keyplane_job_runs", "Turns of deployment-wide jobs this process ran.", labels=["job"]
        )
        failed = CounterMetricFamily(
            "keyplane_job_failures", "Runs that failed (retried next turn).", labels=["job"]
        )
        last = GaugeMetricFamily(
            "keyplane_job_last_run_timestamp_seconds",
            "When this process last ran the job (0: never).",
            labels=["job"],
        )
        for job in jobs:
            runs.add_metric([job.name], job.runs)
            failed.add_metric([job.name], job.failures)
            last.add_metric([job.name], job.last_run_at)
        yield from (runs, failed, last)


def redact(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Last line of defence: no key-shaped string ever reaches a log line."""
    for name, value in event.items():
        if isinstance(value, str) and "sk_" in value:
            event[name] = _KEY.sub(lambda m: m.group()[:8] + "…[redacted]", value)
    return event


def _stderr_logger(*_args: Any) -> structlog.PrintLogger:
    return structlog.PrintLogger(sys.stderr)


def configure_logging(json_format: bool, level: int = logging.INFO) -> None:
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_format
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        # Resolve stderr at each call, so that a redirected stream (tests, daemons) is used.
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
