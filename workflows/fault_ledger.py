"""The fault ledger of a run, from the console's stored farm samples (used by the console API
and the offline HTML report; its own module so neither imports the other for it)."""

from __future__ import annotations

from typing import Any


def fault_ledger(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the farm injected, when, to whom: per-tick increases of the farm's fault counters
    (``{"t", "service", "tenant", "kind", "count"}``), oldest first."""
    rows: list[dict[str, Any]] = []
    previous: dict[tuple[str, str, str], int] = {}
    for event in events:
        faults = event["data"].get("faults") or {}
        for sid, tenants in faults.items():
            for tenant, kinds in tenants.items():
                for kind, n in kinds.items():
                    key = (sid, tenant, kind)
                    before = previous.get(key)
                    previous[key] = n
                    if before is None:
                        # The first sample of a run: its faults are those since the farm reset.
                        added = n if event is events[0] else 0
                    else:
                        added = n - before if n >= before else n
                    if added > 0:
                        rows.append(
                            {
                                "t": event["t"],
                                "service": sid,
                                "tenant": tenant,
                                "kind": kind,
                                "count": added,
                            }
                        )
    return rows
