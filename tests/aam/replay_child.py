"""Child process for the crash test: replays the DLQ and stalls after its third POST is answered.

Run as ``python replay_child.py STATE_DIR BASE_URL SPEC_JSON CREDS_JSON``; prints ``SENT <n>`` per
POST answered and ``STALL`` when it stops, so the parent can kill it at the worst moment.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from aam_helpers import describe

from aam import AamProfile, Mesh, RatePolicy, TenantCredentials
from farm.spec import ServiceSpec


async def main(state_dir: str, base_url: str, spec: ServiceSpec, creds: TenantCredentials) -> None:
    mesh = await Mesh.open(Path(state_dir), AamProfile.parse("full-circuit_breaker"))
    conn = mesh.add_connector(
        describe(spec, "acme", creds, base_url), rate_policy=RatePolicy(5000, 5000, max_attempts=1)
    )
    original = conn.transport.request
    answered = 0

    async def stall_after_third(method: str, url: str, **kw: Any) -> Any:
        nonlocal answered
        response = await original(method, url, **kw)
        if method == "POST":
            answered += 1
            print(f"SENT {answered}", flush=True)
            if answered == 3:
                print("STALL", flush=True)
                await asyncio.sleep(60)  # the parent kills the process here
        return response

    conn.transport.request = stall_after_third  # type: ignore[method-assign]
    await mesh.dlq.replay()


if __name__ == "__main__":
    state, url, spec_file, creds_file = sys.argv[1:5]
    asyncio.run(
        main(
            state,
            url,
            ServiceSpec.model_validate_json(Path(spec_file).read_text()),
            TenantCredentials.from_farm(json.loads(Path(creds_file).read_text())),
        )
    )
