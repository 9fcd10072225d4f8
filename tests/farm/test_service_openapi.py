"""Each service publishes an OpenAPI 3.1 document at ``{base_path}/openapi.json``, and the farm
keeps it: schemathesis generates requests from it against a real farm on loopback and checks
every answer against the document (status codes, content types, body schemas, no 5xx)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from farm.chaos import ChaosLevel
from farm.loader import DEFAULT_CONFIG_DIR, load_specs
from farm.server import RunningFarm, running_farm

SPECS = load_specs([DEFAULT_CONFIG_DIR])
#: Bounded: examples per operation (the whole module runs in well under a minute here).
EXAMPLES = 12


@pytest.fixture(scope="module")
def farm() -> Iterator[RunningFarm]:
    """The preseeded services on 127.0.0.1 (ephemeral port), chaos off, in a thread of their own
    (schemathesis calls are synchronous)."""
    ready: dict[str, Any] = {}
    started = threading.Event()
    stop: asyncio.Event | None = None

    async def serve() -> None:
        nonlocal stop
        stop = asyncio.Event()
        async with running_farm(SPECS, seed=4) as running:
            running.app.farm.set_chaos(ChaosLevel.off)
            ready["farm"] = running
            ready["loop"] = asyncio.get_running_loop()
            started.set()
            await stop.wait()

    thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    thread.start()
    assert started.wait(30), "farm did not start"
    try:
        yield ready["farm"]
    finally:
        assert stop is not None
        ready["loop"].call_soon_threadsafe(stop.set)
        thread.join(30)


def _auth(farm: RunningFarm, service: str) -> dict[str, str]:
    creds = next(iter(farm.credentials[service].values()))
    if creds["auth_type"] == "api_key":
        return {creds["api_key_header"]: creds["api_key"]}
    token = httpx.post(
        farm.url + "/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": creds["client_id"],
              "client_secret": creds["client_secret"]},
    ).json()["access_token"]  # fmt: skip
    return {"Authorization": f"Bearer {token}"}


def test_every_service_serves_a_valid_openapi_31_document(farm: RunningFarm) -> None:
    for spec in SPECS:
        response = httpx.get(f"{farm.url}{spec.base_path}/openapi.json")
        assert response.status_code == 200, spec.id
        doc = response.json()
        assert doc["openapi"] == "3.1.0" and doc["servers"] == [{"url": spec.base_path}]
        schema = schemathesis.openapi.from_dict(doc)  # parses and resolves
        operations = [r.ok() for r in schema.get_all_operations()]
        assert len(operations) >= len(spec.resources)
        schemes = doc["components"]["securitySchemes"]
        assert set(schemes) == {
            "oauth2" if spec.auth.type.value.startswith("oauth2") else "api_key"
        }
        # Only what a provider publishes: no fault rates, drift schedule or rotation.
        text = response.text
        for private in ("error_profile", "drift", "rotate", "flakiness", "chaos"):
            assert private not in text, (spec.id, private)


@pytest.mark.parametrize("spec", SPECS, ids=[s.id for s in SPECS])
def test_the_farm_answers_as_its_document_says(farm: RunningFarm, spec: Any) -> None:
    url = f"{farm.url}{spec.base_path}/openapi.json"
    schema = schemathesis.openapi.from_url(url)
    headers = _auth(farm, spec.id)
    base_url = farm.url + spec.base_path
    selected = [
        checks.not_a_server_error,
        checks.status_code_conformance,
        checks.content_type_conformance,
        checks.response_schema_conformance,
    ]
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path == "/oauth2/token":
            continue  # served at the root, not under base_path: checked below

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            response = case.call(base_url=base_url, headers=headers, timeout=10)
            case.validate_response(response, checks=selected)

        check()


def test_the_token_endpoint_answers_as_documented(farm: RunningFarm) -> None:
    oauth = next(s for s in SPECS if s.auth.type.value == "oauth2_client_credentials")
    doc = httpx.get(f"{farm.url}{oauth.base_path}/openapi.json").json()
    token = doc["paths"]["/oauth2/token"]["post"]
    assert (
        doc["components"]["securitySchemes"]["oauth2"]["flows"]["clientCredentials"]["tokenUrl"]
        == "/oauth2/token"
    )
    documented = set(token["responses"])
    creds = farm.credentials[oauth.id][next(iter(farm.credentials[oauth.id]))]
    for form in (
        {"grant_type": "client_credentials", "client_id": creds["client_id"],
         "client_secret": creds["client_secret"]},
        {"grant_type": "password"},
        {"grant_type": "client_credentials", "client_id": "nobody", "client_secret": "x" * 20},
        {},
    ):  # fmt: skip
        response = httpx.post(farm.url + "/oauth2/token", data=form)
        assert str(response.status_code) in documented, (form, response.status_code)
