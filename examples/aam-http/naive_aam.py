"""A deliberately naive AAM that speaks the Gauntlet's HTTP contract (aam/README.md).

Plain FastAPI + httpx, no retries, no backoff, no pacing, no token refresh, no idempotency keys,
no dead-letter queue, no schema-drift mapping: the Gauntlet must judge it FAILED. Copy it as the
skeleton of an adapter in front of your own AAM: keep the five endpoints and the outcome shape,
replace ``call_api`` with a call into your AAM.

    python examples/aam-http/naive_aam.py --port 8013          # token: $GAUNTLET_AAM_TOKEN
    gauntlet run workflows/scenarios/storm.yaml --aam-url http://127.0.0.1:8013
"""

from __future__ import annotations

import argparse
import os
from typing import Any
from urllib.parse import urljoin

import httpx
import uvicorn
from fastapi import Depends, FastAPI, Header, HTTPException

TOKEN = os.environ.get("GAUNTLET_AAM_TOKEN", "")
app = FastAPI(title="naive AAM")
connectors: dict[str, dict[str, Any]] = {}  # connector_id -> descriptor
tokens: dict[str, str] = {}  # connector_id -> the one OAuth token ever fetched
client = httpx.AsyncClient(timeout=httpx.Timeout(2.0))


def check_token(authorization: str = Header(default="")) -> None:
    if TOKEN and authorization != f"Bearer {TOKEN}":
        raise HTTPException(401, "send Authorization: Bearer <token>")


def outcome_error(error_class: str, message: str) -> dict[str, Any]:
    return {"ok": False, "error_class": error_class, "message": message, "deferred": False}


class CallFailed(Exception):
    def __init__(self, error_class: str, message: str) -> None:
        super().__init__(message)
        self.error_class = error_class


def classify(status: int, oauth: bool) -> str:
    """HTTP status -> the contract's error class."""
    if status == 401:
        return "auth_expired" if oauth else "invalid_creds"
    if status == 403:
        return "invalid_creds"
    if status == 429:
        return "rate_limit"
    return "server_error" if status >= 500 else "client_error"


async def auth_headers(cid: str, descriptor: dict[str, Any]) -> dict[str, str]:
    auth = descriptor["auth"]
    if auth["type"] == "api_key":
        return {auth["header"]: auth["key"]}
    if auth["type"] == "oauth2_client_credentials":
        if cid not in tokens:  # fetched once, never refreshed: naive
            form = {"grant_type": "client_credentials", "client_id": auth["client_id"],
                    "client_secret": auth["client_secret"]}  # fmt: skip
            r = await client.post(auth["token_url"], data=form)
            if r.status_code != 200:
                raise CallFailed(classify(r.status_code, False), f"token endpoint: {r.status_code}")
            tokens[cid] = r.json()["access_token"]
        return {"Authorization": f"Bearer {tokens[cid]}"}
    return {}


async def call_api(cid: str, descriptor: dict[str, Any], op: dict[str, Any]) -> Any:
    """One HTTP request per page; any failure is final."""
    oauth = descriptor["auth"]["type"] == "oauth2_client_credentials"
    headers = await auth_headers(cid, descriptor)
    base = descriptor["base_url"].rstrip("/")
    url, params = base + op["path"], op.get("params")
    records: list[Any] = []
    for _ in range(10_000):  # pages, bounded
        try:
            if op["method"] == "POST":
                r = await client.post(url, json=op["body"], headers=headers)
            else:
                r = await client.get(url, params=params, headers=headers)
        except httpx.TimeoutException as exc:
            raise CallFailed("timeout", f"{op['method']} {url}: {exc!r}") from None
        except httpx.HTTPError as exc:
            raise CallFailed("network_error", f"{op['method']} {url}: {exc!r}") from None
        if r.status_code >= 400:
            where = f"{op['method']} {url} -> {r.status_code}"
            raise CallFailed(classify(r.status_code, oauth), where)
        body = r.json()
        if not op.get("paginate"):
            return body
        records.extend(body.get("data") or [])
        limit = op.get("max_records")
        if not body.get("next") or (limit and len(records) >= limit):
            return records[:limit] if limit else records
        url, params = urljoin(base + "/", body["next"]), None
    return records


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.put("/gauntlet/v1/connectors/{cid}", dependencies=[Depends(check_token)])
async def put_connector(cid: str, descriptor: dict[str, Any]) -> dict[str, str]:
    if descriptor.get("connector_id") != cid:
        raise HTTPException(422, "connector_id in the body differs from the path")
    connectors[cid] = descriptor
    tokens.pop(cid, None)
    return {"connector_id": cid}


@app.delete("/gauntlet/v1/connectors", dependencies=[Depends(check_token)])
async def drop_connectors() -> dict[str, bool]:
    connectors.clear()
    tokens.clear()
    return {"dropped": True}


@app.post("/gauntlet/v1/calls", dependencies=[Depends(check_token)])
async def calls(op: dict[str, Any]) -> dict[str, Any]:
    descriptor = connectors.get(op.get("connector_id", ""))
    if descriptor is None:
        return outcome_error("client_error", f"no connector {op.get('connector_id')!r}")
    try:
        result = await call_api(op["connector_id"], descriptor, op)
    except CallFailed as exc:
        return outcome_error(exc.error_class, str(exc))
    except ValueError as exc:  # a body that is not JSON
        return outcome_error("server_error", f"unusable answer: {exc}")
    if op.get("paginate"):
        return {"ok": True, "records": result}
    return {"ok": True, "data": result}


@app.post("/gauntlet/v1/dlq/replay", dependencies=[Depends(check_token)])
async def replay() -> dict[str, int]:
    return {"replayed": 0, "failed": 0, "pending": 0}  # no DLQ: failed writes are simply lost


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="A naive AAM behind the Gauntlet's contract.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8013)
    args = parser.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
