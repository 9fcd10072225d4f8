"""Health bands of the topology: the one place where the colour thresholds live.

The Grafana topology (``grafana/gauntlet_dashboards``, through its ``health`` module) and the web
console (``workflows/live.py``) both colour nodes and edges with :func:`band_for`.

A node or edge is judged by its error ratio over ``WINDOW``: below ``AMBER_ERROR_RATIO`` it is
healthy (green), from there up to ``RED_ERROR_RATIO`` degraded (amber), above that failing (red).
With no traffic in the window it is idle (grey): no ratio exists, so no colour can be earned.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Error ratio at which a node or edge turns amber (inclusive).
AMBER_ERROR_RATIO = 0.05
#: Error ratio at which a node or edge turns red (inclusive).
RED_ERROR_RATIO = 0.20
#: Range of the rate() windows behind every Grafana topology figure. Long enough that the figures
#: of a short scenario Job stay visible for a while after it ends.
WINDOW = "5m"
#: Window of the web console's live topology, in seconds: short, so a node that recovers turns
#: green again within seconds while someone watches (same bands, same ratios as Grafana's).
LIVE_WINDOW_SECONDS = 10


@dataclass(frozen=True)
class Band:
    """One health band: its level (the recorded value), name and CSS colour."""

    level: int
    state: str
    color: str


IDLE = Band(-1, "idle", "#8E8E8E")
HEALTHY = Band(0, "healthy", "#73BF69")
DEGRADED = Band(1, "degraded", "#FF9830")
FAILING = Band(2, "failing", "#F2495C")
BANDS = (IDLE, HEALTHY, DEGRADED, FAILING)


def band_for(error_ratio: float | None) -> Band:
    """The band an error ratio falls in (``None`` means no traffic in the window)."""
    if error_ratio is None:
        return IDLE
    if error_ratio >= RED_ERROR_RATIO:
        return FAILING
    if error_ratio >= AMBER_ERROR_RATIO:
        return DEGRADED
    return HEALTHY
