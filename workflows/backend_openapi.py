"""The backend's OpenAPI document with the statuses its endpoints really answer.

FastAPI documents 200/201/202 and a validation 422 in its own shape; the backend answers every
refusal as ``{"error", "detail"}`` (its exception handlers), behind a bearer token (401/403 from
the middleware, except the open endpoints), with request bodies capped before they are read
(413, or 400 for a malformed length), and farm trouble as 502. :func:`complete` adds those
statuses and that shape; ``tests/workflows/test_wf_fuzz.py`` fuzzes the result.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

JSON = "application/json"
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}, "detail": {}},
    "additionalProperties": True,
}
ERROR = {"$ref": "#/components/schemas/BackendError"}


def _reply(description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": ERROR}}}


#: Statuses any operation may answer with, by what triggers them.
COMMON = {
    "404": _reply("no such run, connector, workflow or service"),
    "409": _reply("busy: a run is going on, or another run holds the farm"),
    "422": _reply("invalid parameters or body: {error: invalid_request, detail}"),
    "502": _reply("the farm could not be reached or refused"),
}
PROTECTED = {"401": _reply("no bearer token"), "403": _reply("wrong bearer token")}
WITH_BODY = {
    "400": _reply("malformed Content-Length"),
    "413": _reply("body over 1 MiB, refused before it is read"),
}


def complete(
    original: Callable[[], dict[str, Any]], is_open: Callable[[str, str], bool]
) -> Callable[[], dict[str, Any]]:
    """An ``app.openapi`` that completes ``original``'s document (once)."""
    done: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if done:
            return done
        document = original()
        document.setdefault("components", {}).setdefault("schemas", {})["BackendError"] = (
            ERROR_SCHEMA
        )
        for path, operations in document.get("paths", {}).items():
            for method, operation in operations.items():
                responses = operation.setdefault("responses", {})
                responses.update(COMMON)
                if not is_open(method.upper(), path) or path.startswith("/api/"):
                    responses.update(PROTECTED)  # /api/login refuses a wrong code with 403
                if "requestBody" in operation:
                    responses.update(WITH_BODY)
        metrics = document.get("paths", {}).get("/metrics", {}).get("get")
        if metrics is not None:
            metrics["responses"]["200"] = {
                "description": "Prometheus text exposition",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        done.update(document)
        return done

    return openapi
