"""Prometheus metrics of the daemon, served as text on ``/metrics`` by a tiny asyncio server.

No client library: the exposition format is a few lines of text, and the daemon must not grow a
web framework for it. Counters and a latency histogram are kept in memory (they restart at zero
with the process, as Prometheus expects of counters).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable

logger = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class Metrics:
    """What the gateway counts.

    Attributes:
        gauges: callables read at scrape time, by metric name and label text.
    """

    def __init__(self) -> None:
        self.decisions: Counter[tuple[str, str]] = Counter()
        self.alerts: Counter[tuple[str, str]] = Counter()
        self.latency_buckets = [0] * len(LATENCY_BUCKETS)
        self.latency_count = 0
        self.latency_sum = 0.0
        self.gauges: dict[str, Callable[[], dict[str, float]]] = {}

    def decision(self, kind: str, verdict: str, seconds: float) -> None:
        """Count one decision and its latency (credential read → door commanded)."""
        self.decisions[(kind, verdict)] += 1
        self.latency_count += 1
        self.latency_sum += seconds
        for i, bound in enumerate(LATENCY_BUCKETS):
            if seconds <= bound:
                self.latency_buckets[i] += 1

    def alert(self, kind: str, state: str) -> None:
        """Count one alert edge."""
        self.alerts[(kind, state)] += 1

    def render(self) -> str:
        """The Prometheus text exposition."""
        lines = [
            "# HELP doorgate_decisions_total Access decisions by credential kind and verdict.",
            "# TYPE doorgate_decisions_total counter",
            *(f'doorgate_decisions_total{{kind="{k}",verdict="{v}"}} {n}'
              for (k, v), n in sorted(self.decisions.items())),
            "# HELP doorgate_decision_seconds Credential read to door command.",
            "# TYPE doorgate_decision_seconds histogram",
            *(f'doorgate_decision_seconds_bucket{{le="{b}"}} {c}'
              for b, c in zip(LATENCY_BUCKETS, self.latency_buckets, strict=True)),
            f'doorgate_decision_seconds_bucket{{le="+Inf"}} {self.latency_count}',
            f"doorgate_decision_seconds_sum {self.latency_sum:.6f}",
            f"doorgate_decision_seconds_count {self.latency_count}",
            "# HELP doorgate_alerts_total Alert edges by kind and state.",
            "# TYPE doorgate_alerts_total counter",
            *(f'doorgate_alerts_total{{kind="{k}",state="{s}"}} {n}'
              for (k, s), n in sorted(self.alerts.items())),
        ]
        for name, read in sorted(self.gauges.items()):
            lines += [f"# TYPE {name} gauge"]
            lines += [f"{name}{labels} {value:g}" for labels, value in sorted(read().items())]
        return "\n".join(lines) + "\n"


async def serve_metrics(metrics: Metrics, host: str, port: int) -> None:
    """Answer ``GET /metrics`` until cancelled (anything else gets 404)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), 5)
            ok = request.startswith(b"GET /metrics ")
            body = metrics.render().encode() if ok else b"not found\n"
            status = "200 OK" if ok else "404 Not Found"
            writer.write(
                f"HTTP/1.0 {status}\r\nContent-Type: text/plain; version=0.0.4\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body
            )
            await writer.drain()
        except (TimeoutError, ConnectionError) as err:
            logger.debug("metrics: client went away: %s", err)
        finally:
            writer.close()

    try:
        server = await asyncio.start_server(handle, host, port)
    except OSError as err:
        # A busy port must never take the door down with it: run without metrics.
        logger.error("metrics: cannot listen on %s:%d (%s); /metrics is off", host, port, err)  # noqa: TRY400
        return
    logger.info("metrics on http://%s:%d/metrics", host, port)
    async with server:
        await server.serve_forever()
