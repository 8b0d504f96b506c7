"""Figures read when Prometheus scrapes: gauges and counters over a service's own objects.

A service registers a reader (`() -> number`, or `() -> {label values: number}`) instead of updating
a metric on every change: queue depths, states and ages cost nothing between scrapes. Readers that
must await something (a database count, a JetStream consumer's info) are samplers, run just before
each scrape with a time limit; what they found is kept for the readers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger("ibkr_common.ops.figures")
Reading = float | int | bool | None | Mapping[tuple[str, ...], float | int | bool | None]
SAMPLE_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class _Figure:
    kind: str
    name: str
    documentation: str
    labels: tuple[str, ...]
    read: Callable[[], Reading]


class Figures(Collector):
    """A Prometheus collector of figures read at scrape time (register it once in the service's registry)."""

    def __init__(self) -> None:
        self._figures: list[_Figure] = []
        self._samplers: list[Callable[[], Awaitable[None]]] = []

    def gauge(self, name: str, documentation: str, read: Callable[[], Reading], labels: Sequence[str] = ()) -> None:
        """A gauge whose value (or values by label) `read()` returns; None leaves it out of the scrape."""
        self._figures.append(_Figure("gauge", name, documentation, tuple(labels), read))

    def counter(self, name: str, documentation: str, read: Callable[[], Reading], labels: Sequence[str] = ()) -> None:
        """A counter (exposed as `<name>_total`) whose running total `read()` returns."""
        self._figures.append(_Figure("counter", name.removesuffix("_total"), documentation, tuple(labels), read))

    def sampler(self, sample: Callable[[], Awaitable[None]]) -> None:
        """An async refresh run before each scrape (at most SAMPLE_TIMEOUT_S; a failure keeps the last values)."""
        self._samplers.append(sample)

    async def sample(self) -> None:
        """Run every sampler side by side, each bounded in time."""
        if self._samplers:
            await asyncio.gather(*(self._bounded(s) for s in self._samplers))

    @staticmethod
    async def _bounded(sample: Callable[[], Awaitable[None]]) -> None:
        try:
            await asyncio.wait_for(sample(), SAMPLE_TIMEOUT_S)
        except Exception as exc:
            log.debug("a metrics sampler failed (%s); the last values stay", type(exc).__name__)

    def names(self) -> list[str]:
        """The metric names as exposed (counters with `_total`)."""
        return [f.name + "_total" if f.kind == "counter" else f.name for f in self._figures]

    def collect(self) -> Iterator[Metric]:
        for figure in self._figures:
            try:
                reading = figure.read()
            except Exception:
                log.exception("reading metric %s failed", figure.name)
                continue
            family: GaugeMetricFamily | CounterMetricFamily
            if figure.kind == "counter":
                family = CounterMetricFamily(figure.name, figure.documentation, labels=figure.labels)
            else:
                family = GaugeMetricFamily(figure.name, figure.documentation, labels=figure.labels)
            if isinstance(reading, Mapping):
                for label_values, value in reading.items():
                    if value is not None:
                        family.add_metric(list(label_values), float(value))
            elif reading is not None:
                family.add_metric([], float(reading))
            yield family
