"""Health bands of the topology, shared with the web console: see ``workflows/health.py``."""

from __future__ import annotations

from workflows.health import (
    AMBER_ERROR_RATIO,
    BANDS,
    DEGRADED,
    FAILING,
    HEALTHY,
    IDLE,
    RED_ERROR_RATIO,
    WINDOW,
    Band,
    band_for,
)

__all__ = [
    "AMBER_ERROR_RATIO",
    "BANDS",
    "DEGRADED",
    "FAILING",
    "HEALTHY",
    "IDLE",
    "RED_ERROR_RATIO",
    "WINDOW",
    "Band",
    "band_for",
]
