"""Malformed input never gives a 500 (issue 10, probe rows 4-6): Unicode digits, non-ASCII Basic
credentials, HEAD, and huge bodies refused before they are read."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from farm_helpers import admin_headers, auth_headers

from farm.pagination import encode_cursor
from farm.server import RunningFarm

UNICODE_DIGITS = ["²", "②", "٣", "𝟘", "1²", "١٠"]  # noqa: RUF001 (on purpose)


@pytest.mark.parametrize("value", UNICODE_DIGITS)
async def test_unicode_digits_in_page_parameters_are_400_not_500(
    farm: RunningFarm, client: httpx.AsyncClient, value: str
) -> None:
    headers = await auth_headers(client, farm, "shop", "acme")
    for url, params in (
        ("/shop/v1/customers", {"limit": value}),
        ("/shop/v1/invoices", {"page": value}),
        ("/shop/v1/invoices", {"per_page": value}),
        ("/shop/v1/invoices", {"limit": value}),
    ):
        r = await client.get(url, params=params, headers=headers)
        assert r.status_code == 400, (url, params, r.text)
        assert r.json()["error"] == "invalid_request"


async def test_a_cursor_that_decodes_to_unicode_digits_is_400(
    farm: RunningFarm, client: httpx.AsyncClient
) -> None:
    headers = await auth_headers(client, farm, "shop", "acme")
    for offset in ("²", "②", "٣"):
        cursor = base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")
        r = await client.get("/shop/v1/customers", params={"cursor": cursor}, headers=headers)
        assert r.status_code == 400, r.text
    ok = await client.get(
        "/shop/v1/customers", params={"cursor": encode_cursor(10)}, headers=headers
    )
    assert ok.status_code == 200


async def test_record_ids_with_unicode_digits_are_404(
    farm: RunningFarm, client: httpx.AsyncClient
) -> None:
    headers = await auth_headers(client, farm, "shop", "acme")
    r = await client.get("/shop/v1/customers/cus_00000²", headers=headers)
    assert r.status_code == 404


async def test_non_ascii_basic_credentials_are_401_and_the_connection_survives(
    farm: RunningFarm,
) -> None:
    answers = await asyncio.to_thread(_twice_on_one_connection, farm.port)
    for answer in answers:
        assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
        assert b"invalid_client" in answer


def _twice_on_one_connection(port: int) -> list[bytes]:
    request = (
        b"POST /oauth2/token HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Authorization: Basic \xe9\xe9\r\nContent-Length: 29\r\n\r\n"
        b"grant_type=client_credentials"
    )
    answers = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        for _ in range(2):  # the same keep-alive connection answers twice
            sock.sendall(request)
            answers.append(_read_response(sock))
    return answers


def _read_response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


async def test_head_requests_are_never_500(farm: RunningFarm, client: httpx.AsyncClient) -> None:
    headers = await auth_headers(client, farm, "shop", "acme")
    for path in (
        "/shop/v1/customers",
        "/shop/v1/customers/cus_000001",
        "/healthz",
        "/metrics",
        "/admin/status",
        "/oauth2/token",
        "/openapi.json",
        "/nowhere",
    ):
        r = await client.head(path, headers={**headers, **admin_headers(farm)})
        assert r.status_code < 500, (path, r.status_code)


async def test_admin_bodies_over_the_cap_are_413_before_auth(
    farm: RunningFarm, client: httpx.AsyncClient
) -> None:
    big = b"{" + b" " * (200 * 1024) + b"}"
    for path in ("/admin/reset", "/admin/chaos", "/oauth2/token", "/admin/lease"):
        r = await client.post(path, content=big, headers={"content-type": "application/json"})
        assert r.status_code == 413, (path, r.text)
        assert r.json()["error"] == "payload_too_large"

    # Chunked (no Content-Length): cut off at the cap, with the admin token or without.
    answer = await asyncio.to_thread(
        _send_huge, farm.port, "/admin/reset", chunked=True, total=400 * 1024
    )
    assert answer.startswith(b"HTTP/1.1 413"), answer[:100]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _send_huge(port: int, path: str, *, chunked: bool, total: int) -> bytes:
    """Send ``total`` bytes of body (or until the server stops reading); return the answer."""
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    head += "Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {total}\r\n"
    piece = b"x" * (1 << 20)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head.encode() + b"\r\n")
        sent = 0
        try:
            while sent < total:
                data = piece if not chunked else b"%x\r\n%s\r\n" % (len(piece), piece)
                sock.sendall(data)
                sent += len(piece)
        except OSError:
            pass  # the server answered and closed: what it should do
        try:
            return _read_response(sock)
        except OSError:
            return b""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
def test_a_200_mb_unauthenticated_body_does_not_grow_the_farm(tmp_path: Path) -> None:
    """Probe row 6: before, farm RSS went 86 -> 849 MB (the body was read before auth)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "workflows", "farm", "serve", "--port", str(port),
         "--state-dir", str(tmp_path / "farm")],
        env={**os.environ, "GAUNTLET_ADMIN_TOKEN": "t"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(300):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        before = _rss_mb(proc.pid)
        answers = []
        for path in ("/oauth2/token", "/admin/reset", "/stripe/v1/invoices"):
            for chunked in (False, True):
                answers.append(_send_huge(port, path, chunked=chunked, total=200 << 20))
        after = _rss_mb(proc.pid)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    finally:
        proc.terminate()
        proc.wait(10)
    print(f"farm RSS {before:.0f} MB -> {after:.0f} MB after 6 x 200 MB bodies")
    assert all(a.startswith(b"HTTP/1.1 413") for a in answers), [a[:40] for a in answers]
    assert after - before < 50, (before, after)
