"""Prometheus metrics served by the runner, read from the job database at each scrape.

``mailmover_mailboxes{job,state}``, ``mailmover_messages_copied_total{job}``,
``mailmover_bytes_copied_total{job}``, ``mailmover_messages_failed_total{job}``,
``mailmover_copy_rate_bytes{job}`` (running passes together),
``mailmover_passes_total{kind,outcome}``, ``mailmover_pass_failures_total{failure_kind}``
and ``mailmover_connections_in_use{server}`` (held by the running mailboxes of the
database, whichever runner or worker runs them).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import select

from mailmover.service.budgets import Budgets, in_use
from mailmover.service.jobs import status
from mailmover.store import schema
from mailmover.store.database import Store


class ServiceCollector(Collector):
    """Every metric, computed when scraped (``status`` is one read; the copy is not slowed)."""

    def __init__(self, store: Store, budgets: Budgets) -> None:
        self.store = store
        self.budgets = budgets

    def collect(self) -> Iterator[Metric]:
        boxes = GaugeMetricFamily(
            "mailmover_mailboxes", "Mailboxes by state", labels=["job", "state"]
        )
        copied = CounterMetricFamily("mailmover_messages_copied", "Messages copied", labels=["job"])
        size = CounterMetricFamily("mailmover_bytes_copied", "Bytes copied", labels=["job"])
        failed = CounterMetricFamily(
            "mailmover_messages_failed", "Messages not copied", labels=["job"]
        )
        rate = GaugeMetricFamily(
            "mailmover_copy_rate_bytes", "Bytes per second of the running passes", labels=["job"]
        )
        states: Counter[tuple[str, str]] = Counter()
        per_job: dict[str, list[float]] = {}
        for m in status(self.store):
            states[(m.job, m.state)] += 1
            sums = per_job.setdefault(m.job, [0.0, 0.0, 0.0, 0.0])
            sums[0] += m.messages_copied
            sums[1] += m.bytes_copied
            sums[2] += m.messages_failed
            sums[3] += m.rate or 0.0
        for (job, state), count in sorted(states.items()):
            boxes.add_metric([job, state], count)
        for job, (n, b, f, r) in sorted(per_job.items()):
            copied.add_metric([job], n)
            size.add_metric([job], b)
            failed.add_metric([job], f)
            rate.add_metric([job], r)
        yield from (boxes, copied, size, failed, rate)
        yield from self._passes()
        used = GaugeMetricFamily(
            "mailmover_connections_in_use", "Connections held, per server", labels=["server"]
        )
        for server, n in sorted(in_use(self.store, datetime.now(UTC)).held_hosts.items()):
            if n:
                used.add_metric([server], n)
        yield used

    def _passes(self) -> Iterator[Metric]:
        p = schema.mailbox_pass
        with self.store.engine.connect() as conn:
            rows = conn.execute(select(p.c.kind, p.c.outcome, p.c.report)).all()
        by_outcome: Counter[tuple[str, str]] = Counter()
        by_kind: Counter[str] = Counter()
        for row in rows:
            by_outcome[(row.kind, row.outcome or "running")] += 1
            report: dict[str, Any] = row.report or {}
            if row.outcome == "failed":
                by_kind[str(report.get("failure_kind") or "unknown")] += 1
            elif row.outcome == "crashed":
                by_kind["crash"] += 1
        passes = CounterMetricFamily("mailmover_passes", "Passes by kind and outcome",
                                     labels=["kind", "outcome"])  # fmt: skip
        for (kind, outcome), n in sorted(by_outcome.items()):
            passes.add_metric([kind, outcome], n)
        errors = CounterMetricFamily(
            "mailmover_pass_failures", "Failed passes by kind of error", labels=["failure_kind"]
        )
        for kind, n in sorted(by_kind.items()):
            errors.add_metric([kind], n)
        yield passes
        yield errors


def serve_metrics(store: Store, budgets: Budgets, port: int, host: str = "127.0.0.1") -> Any:
    """Serve /metrics on ``host:port`` from a thread; the server (``.shutdown()`` stops it)."""
    registry = CollectorRegistry()
    registry.register(ServiceCollector(store, budgets))
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server
