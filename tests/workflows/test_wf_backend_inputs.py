"""The backend refuses malformed input with a 4xx and a reason (issue 10, probe row 8), caps
request bodies before reading them, and keeps its AAM state private."""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from test_wf_backend import TOKEN, serving

from workflows.backend import BackendSettings, create_app


@pytest.fixture
async def backend(farm_url: tuple[str, str], tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    url, token = farm_url
    settings = BackendSettings(
        farm_urls={"*": url}, admin_token=token, state_dir=tmp_path / "b", token=TOKEN
    )
    async with (
        serving(create_app(settings)) as base,
        httpx.AsyncClient(
            base_url=base, timeout=30, headers={"Authorization": f"Bearer {TOKEN}"}
        ) as client,
    ):
        yield client


async def test_workflow_params_of_the_wrong_type_are_422_naming_the_parameter(
    backend: httpx.AsyncClient,
) -> None:
    added = await backend.post("/connectors", json={"service": "stripe", "tenant": "acme"})
    assert added.status_code == 201, added.text
    for params, named in (({"pages": "x"}, "pages"), ({"nope": 1}, "nope")):
        r = await backend.post(
            "/workflows/run",
            json={"workflow": "high_volume_read", "connector": "stripe:acme", "params": params},
        )
        assert r.status_code == 422, r.text
        assert named in r.json()["detail"]
    ok = await backend.post(
        "/workflows/run",
        json={"workflow": "high_volume_read", "connector": "stripe:acme", "params": {"pages": 1}},
    )
    assert ok.status_code == 200 and ok.json()["iterations"][0]["ok"] is True


@pytest.mark.parametrize(
    "body",
    [
        {"workflow": 5, "connector": "stripe:acme"},
        {"workflow": "high_volume_read", "connector": ["x"]},
        {"workflow": "high_volume_read", "connector": "stripe:acme", "iterations": "many"},
        {"scenario": 7},
        [],
        "text",
    ],
)
async def test_wrong_types_in_bodies_are_4xx(backend: httpx.AsyncClient, body: object) -> None:
    for path in ("/workflows/run", "/scenarios/run", "/connectors"):
        r = await backend.post(path, json=body)
        assert 400 <= r.status_code < 500, (path, body, r.status_code, r.text)


async def test_a_huge_body_is_413_before_it_is_read(backend: httpx.AsyncClient) -> None:
    r = await backend.post(
        "/scenarios/run",
        content=b"{" + b" " * (2 << 20) + b"}",
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 413 and r.json()["error"] == "payload_too_large"


async def test_head_is_never_500(backend: httpx.AsyncClient) -> None:
    for path in ("/health", "/runs", "/connectors", "/metrics", "/openapi.json", "/nowhere"):
        r = await backend.head(path)
        assert r.status_code < 500, (path, r.status_code)


async def test_aam_state_files_are_0600_in_0700(tmp_path: Path) -> None:
    from aam import AamProfile, Mesh

    state = tmp_path / "aam"
    mesh = await Mesh.open(state_dir=state, profile=AamProfile.parse("full"))
    await mesh.close()
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o700
    for path in state.iterdir():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path


async def test_a_demo_run_with_no_profile_is_422(backend: httpx.AsyncClient) -> None:
    # Found by the fuzz (test_wf_fuzz.py): profiles=",," named no profile and raised a 500.
    r = await backend.post("/demo/run_scenario", params={"profiles": ",,"})
    assert r.status_code == 422 and r.json()["error"] == "invalid_request"
