"""The Gauntlet's Grafana dashboards and Prometheus topology rules, generated as code.

``make dashboards`` (``PYTHONPATH=grafana python -m gauntlet_dashboards``) writes
``grafana/dashboards/*.json`` and ``deploy/prometheus/rules/gauntlet-topology.yml``; ``--check``
fails when the committed files differ. A dev-time tool: not part of the installed package.
"""

from __future__ import annotations

from .generate import GENERATED, render_all, write_all

__all__ = ["GENERATED", "render_all", "write_all"]
