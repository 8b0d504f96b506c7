"""Operators' view of a service: health and readiness, Prometheus metrics, traces (see `observe`)."""

from ibkr_common.ops.observe import Observability, observability_of, observe

__all__ = ["Observability", "observability_of", "observe"]
