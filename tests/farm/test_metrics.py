"""Prometheus /metrics: gauntlet_farm_* families, label sets at zero, no secrets anywhere."""

from __future__ import annotations

import weakref

import httpx
import pytest
from farm_helpers import auth_headers
from prometheus_client.parser import text_string_to_metric_families

from farm import metrics
from farm.server import RunningFarm


@pytest.fixture(autouse=True)
def _only_this_farm(farm: RunningFarm, monkeypatch: pytest.MonkeyPatch) -> None:
    """A farm process serves one farm. Tests share a process (and an xdist worker may still
    hold another module's farm), so the scrape here collects this test's farm alone: a second
    farm with a service of the same name would otherwise set the same gauge series."""
    monkeypatch.setattr(metrics.COLLECTOR, "_farms", weakref.WeakSet([farm.app.farm]))


async def _scrape(client: httpx.AsyncClient) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def _value(scrape: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    return scrape[name][tuple(sorted(labels.items()))]  # type: ignore[no-any-return]


async def test_every_family_is_served_and_label_sets_exist_at_zero(
    farm: RunningFarm, client: httpx.AsyncClient
) -> None:
    scrape = await _scrape(client)
    names = {f.name for f in metrics.FAMILIES}
    served = {n.removesuffix("_bucket").removesuffix("_count").removesuffix("_sum") for n in scrape}
    assert names <= served
    assert all(n.startswith("gauntlet_farm_") for n in served)
    for tenant in ("acme", "globex"):
        assert _value(scrape, "gauntlet_farm_requests_total", service="shop", tenant=tenant,
                      code="429") == 0  # fmt: skip
        assert _value(scrape, "gauntlet_farm_faults_injected_total", service="keyed",
                      tenant=tenant, kind="network") == 0  # fmt: skip
    assert _value(scrape, "gauntlet_farm_service_info", service="keyed", auth_type="api_key",
                  base_path="/keyed") == 1  # fmt: skip
    assert _value(scrape, "gauntlet_farm_chaos_level", service="shop") == 1


async def test_counters_move_with_traffic_and_no_secret_is_exposed(
    farm: RunningFarm, client: httpx.AsyncClient
) -> None:
    headers = await auth_headers(client, farm, "shop", "acme")
    before = await _scrape(client)
    for _ in range(3):
        await client.get("/shop/v1/customers", headers=headers)
    await client.get("/shop/v1/customers")  # no credential: unattributed 401
    after = await _scrape(client)
    name = "gauntlet_farm_requests_total"
    assert (
        _value(after, name, service="shop", tenant="acme", code="200")
        - _value(before, name, service="shop", tenant="acme", code="200")
        == 3
    )
    assert _value(after, "gauntlet_farm_auth_failures_total", service="shop",
                  tenant=metrics.UNATTRIBUTED, reason="missing") >= 1  # fmt: skip
    assert _value(after, "gauntlet_farm_tokens_issued_total", service="shop", tenant="acme") >= 1
    assert _value(after, "gauntlet_farm_request_duration_seconds_count", service="shop") >= 4
    text = (await client.get("/metrics")).text
    secrets = [farm.admin_token, headers["Authorization"].split()[1]]
    for tenants in farm.credentials.values():
        for creds in tenants.values():
            secrets += [v for k, v in creds.items() if k in ("client_secret", "api_key") and v]
    assert not [s for s in secrets if s in text]
