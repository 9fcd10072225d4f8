"""Schemathesis against the backend's OpenAPI document (issue 10): no server error, and every
status and body shape is one the document describes.

The backend is served for real (uvicorn on 127.0.0.1:0, lifespan on) in a thread. Its farm URL
points at a port nobody listens on, so every farm-bound call fails fast (502, or a run that ends
in error at once) and the fuzz stays bounded: no run ever puts load on a farm. Generated strings
are UTF-8 (full Unicode), in positive and negative modes; the event stream is left out (it never
ends).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from workflows.backend import BackendSettings, create_app

TOKEN = "fuzz-backend-token"
EXAMPLES = int(os.environ.get("GAUNTLET_FUZZ_EXAMPLES", "40"))


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(state: Path) -> tuple[str, uvicorn.Server, threading.Thread]:
    settings_ = BackendSettings(
        farm_urls={"*": f"http://127.0.0.1:{_dead_port()}"},
        admin_token="no-farm-here",
        state_dir=state,
        token=TOKEN,
    )
    config = uvicorn.Config(
        create_app(settings_), host="127.0.0.1", port=0, log_level="error", lifespan="on"
    )
    server = uvicorn.Server(config)
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    for _ in range(1000):
        if server.started:
            break
        threading.Event().wait(0.01)
    assert server.started, "backend did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    return f"http://127.0.0.1:{port}", server, thread


# Served at import: schemathesis reads the document when the tests are collected.
_STATE = tempfile.TemporaryDirectory(prefix="gauntlet-fuzz-backend-")
BACKEND_URL, _SERVER, _THREAD = _serve(Path(_STATE.name))
schema = schemathesis.openapi.from_url(
    f"{BACKEND_URL}/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"}
).exclude(path="/api/stream")
# 502 is the documented answer when the farm cannot be reached (here: always); any other 5xx
# is a server error.
schema.config.checks.not_a_server_error.expected_statuses = ["2xx", "3xx", "4xx", "502"]
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
    max_examples=EXAMPLES,
    codec="utf-8",
)


@pytest.fixture(autouse=True, scope="module")
def _stop_backend() -> Iterator[None]:
    yield
    _SERVER.should_exit = True
    _THREAD.join(20)
    _STATE.cleanup()


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck), print_blob=True)
def test_the_backend_answers_as_its_document_says(case: schemathesis.Case) -> None:
    headers = dict(case.headers or {})
    if "Authorization" not in headers:
        headers["Authorization"] = f"Bearer {TOKEN}"
    case.headers = headers
    case.call_and_validate(
        base_url=BACKEND_URL,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
        timeout=30,
    )
