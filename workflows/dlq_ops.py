"""Operator actions on a run's DLQ: list entries, replay them through a fresh Mesh."""

from __future__ import annotations

import dataclasses
import os
import socket
from pathlib import Path
from typing import Any

from farm.loader import SpecLoadError, load_specs
from workflows.descriptors import descriptor_for
from workflows.farm_client import FarmSet
from workflows.farm_lease import FarmLeases
from workflows.runner import ScenarioError


def _entry_dict(entry: Any) -> dict[str, Any]:
    is_instance = dataclasses.is_dataclass(entry) and not isinstance(entry, type)
    data = dataclasses.asdict(entry) if is_instance else dict(entry)
    data.pop("payload", None)  # bodies can be large and may hold customer data: not listed
    return data


async def list_entries(aam_state: Path) -> list[dict[str, Any]]:
    """Every DLQ entry under an AAM state folder (payloads left out)."""
    from aam import AamProfile, Mesh

    mesh = await Mesh.open(state_dir=aam_state, profile=AamProfile.parse("full"))
    try:
        return [_entry_dict(e) for e in await mesh.dlq.list()]
    finally:
        await mesh.close()


async def open_replay_mesh(
    aam_state: Path,
    urls: dict[str, str],
    admin_token: str | None,
    configs: list[Path],
    connector_ids: set[str],
) -> tuple[Any, FarmSet]:
    """A full-profile Mesh over ``aam_state`` with a connector for each id (credentials from
    the farms). The caller closes both."""
    from aam import AamProfile, Mesh

    try:
        specs = {s.id: s for s in load_specs(configs)}
    except SpecLoadError as exc:
        raise ScenarioError(f"service specs: {exc}") from None
    farms = FarmSet(urls, admin_token)
    mesh = await Mesh.open(state_dir=aam_state, profile=AamProfile.parse("full"))
    try:
        creds_by_farm: dict[str, dict[str, Any]] = {}
        for cid in sorted(connector_ids):
            service, _, tenant = cid.partition(":")
            if service not in specs:
                raise ScenarioError(f"DLQ entry for {cid}: no service spec {service!r}")
            url = farms.url_for(service)
            if url not in creds_by_farm:
                creds_by_farm[url] = await farms.client(service).credentials()
            entry = creds_by_farm[url].get(service, {}).get(tenant)
            if entry is None:
                raise ScenarioError(f"farm {url} has no credentials for {cid}")
            mesh.add_connector(descriptor_for(specs[service], tenant, entry, url))
    except BaseException:
        await mesh.close()
        await farms.close()
        raise
    return mesh, farms


async def replay_entries(
    aam_state: Path,
    urls: dict[str, str],
    admin_token: str | None,
    configs: list[Path],
    *,
    wait_seconds: float = 0.0,
) -> dict[str, Any]:
    """Replay every waiting entry once; returns the replay report as a dict. Opening the
    state first parks the writes a crashed process left in flight (``aam/intents.py``), so they
    are replayed too. The farms are leased for the replay (their ledger window must not be
    another run's): :class:`~workflows.farm_client.FarmBusy` if one is held longer than
    ``wait_seconds``."""
    from aam import AamProfile, Mesh

    probe = await Mesh.open(state_dir=aam_state, profile=AamProfile.parse("full"))
    try:
        waiting = [e for e in await probe.dlq.list() if e.status in ("pending", "replaying")]
    finally:
        await probe.close()
    if not waiting:
        return {"replayed": 0, "failed": 0, "skipped": 0, "errors": {}}
    connector_ids = {e.connector_id for e in waiting}
    mesh, farms = await open_replay_mesh(aam_state, urls, admin_token, configs, connector_ids)
    services = sorted({cid.partition(":")[0] for cid in connector_ids})
    leases = FarmLeases(
        farms.clients_for(services),
        f"dlq replay of {aam_state} pid {os.getpid()} on {socket.gethostname()}",
        wait_seconds=wait_seconds,
    )
    try:
        await leases.acquire()
        leases.start_renewing()
        report = await mesh.dlq.replay()
        if dataclasses.is_dataclass(report) and not isinstance(report, type):
            return dataclasses.asdict(report)
        return dict(report)
    finally:
        await leases.release()
        await mesh.close()
        await farms.close()
