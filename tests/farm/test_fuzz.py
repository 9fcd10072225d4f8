"""Schemathesis against the farm's OpenAPI documents (issue 10): the farm's own (admin, token,
ops) and each service's data routes (``{base_path}/openapi.json``).

Every operation gets Unicode-heavy generated input (UTF-8 strings in positive and negative modes,
plus digits ``str.isdigit()`` accepts and ``int()`` refuses, cursors that decode to them and
Latin-1 credentials), authenticated as a tenant and as the admin, against the app in-process
(ASGI). Checks: no server error, every status and every body shape is one the document
describes. Bounded: a fixed number of examples per operation (about a minute here).
"""

from __future__ import annotations

import base64
import os
import secrets
import zlib
from pathlib import Path

import pytest
import schemathesis
from farm_helpers import make_spec
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from farm.app import create_app
from farm.chaos import ChaosLevel

ADMIN = "fuzz-admin-" + secrets.token_hex(4)
EXAMPLES = int(os.environ.get("GAUNTLET_FUZZ_EXAMPLES", "60"))

APP = create_app(
    [
        make_spec(drift_schedule=[]),
        make_spec(id="keyed", base_path="/keyed", auth={"type": "api_key"}),
    ],
    admin_token=ADMIN,
)
# Faults are described in the document (they are real), but a fuzz run judges the farm's own
# answers: no injected fault may mask (or fake) a server error.
APP.farm.set_chaos(ChaosLevel.off)
for _service in APP.farm.services.values():
    for _tenant in _service.tenants.values():
        _tenant.bucket.reshape(10**9, 10**9, 0)


def _load(path: str) -> schemathesis.BaseSchema:
    loaded = schemathesis.openapi.from_asgi(path, APP)
    loaded.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
        max_examples=EXAMPLES,
        codec="utf-8",
    )
    return loaded


admin_schema = _load("/openapi.json")
shop_schema = _load("/shop/v1/openapi.json")
keyed_schema = _load("/keyed/openapi.json")


def _credentials(service: str | None) -> dict[str, str]:
    farm = APP.farm
    if service == "keyed":
        creds = farm.credentials.by_tenant[("keyed", "acme")]
        return {"X-API-Key": creds.api_key or ""}
    if service == "shop":
        creds = farm.credentials.by_tenant[("shop", "acme")]
        token = farm.tokens.issue(creds, 3600, None)
        return {"Authorization": f"Bearer {token}"}
    return {"Authorization": f"Bearer {ADMIN}"}


@pytest.fixture(autouse=True, scope="module")
def _close_farm() -> object:
    yield
    APP.farm.close()


#: Numbers outside ASCII (``²``, ``②``, ``٣``...) next to ASCII digits: what
#: ``str.isdigit()`` accepts and ``int()`` refuses.
UNICODE_NUMBERS = st.characters(categories=("Nd", "No", "Nl"))
#: Characters ``str.isdigit()`` accepts but ``int()`` refuses (superscripts, circled,
#: subscripts), and some it accepts that are not ASCII.
DIGIT_LOOKALIKES = st.sampled_from("²³¹⁰⁴⁹₀₃②⑩⓪٣۷०𝟘")
NUMERIC_TEXT = st.text(
    alphabet=st.one_of(
        DIGIT_LOOKALIKES, DIGIT_LOOKALIKES, UNICODE_NUMBERS, st.sampled_from("0123456789")
    ),
    min_size=1,
    max_size=6,
)
TRICKY_TEXT = st.one_of(
    NUMERIC_TEXT,
    st.text(
        alphabet=st.one_of(
            UNICODE_NUMBERS,
            st.sampled_from("0123456789:_-o"),
            st.characters(exclude_categories=("Cs",)),
        ),
        max_size=12,
    ),
)
#: Header values go over HTTP/1.1 as Latin-1: every printable byte, non-ASCII included.
LATIN1_TEXT = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=24)


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(f"o:{text}".encode()).decode().rstrip("=")


def unicode_heavy(context: object, case: schemathesis.Case) -> st.SearchStrategy:
    """Half the cases keep what schemathesis generated; the other half get Unicode-heavy query
    values, cursors that decode to Unicode digits, odd record ids and Latin-1 credentials."""
    names = [p.name for p in case.operation.query]
    values = {
        n: (
            st.one_of(NUMERIC_TEXT.map(_cursor), TRICKY_TEXT.map(_cursor), TRICKY_TEXT)
            if n == "cursor"
            else st.one_of(NUMERIC_TEXT, NUMERIC_TEXT, TRICKY_TEXT)
        )
        for n in names
    }
    query = st.fixed_dictionaries({}, optional=values)
    path_ids = [p.name for p in case.operation.path_parameters]
    ids = st.fixed_dictionaries(
        {n: TRICKY_TEXT.map(lambda t: f"cus_{t}" if t else "x") for n in path_ids}
    )
    auth = st.one_of(
        st.none(),
        st.none(),
        st.none(),
        LATIN1_TEXT.map(lambda t: "Basic " + t),
        LATIN1_TEXT.map(lambda t: "Bearer " + t),
    )

    def mutate(parts: tuple[dict[str, str], dict[str, str], str | None, bool]) -> schemathesis.Case:
        new_query, new_ids, authorization, keep = parts
        if keep:
            return case
        case.query = {**(case.query or {}), **new_query}
        # A foreign X-Tenant-ID is refused (403) before the query is read: leave it out here.
        case.headers = {k: v for k, v in (case.headers or {}).items() if k != "X-Tenant-ID"}
        if new_ids:
            case.path_parameters = {**(case.path_parameters or {}), **new_ids}
        if authorization is not None:
            case.headers = {**(case.headers or {}), "Authorization": authorization}
        return case

    # One case in four stays as schemathesis made it.
    keep = st.integers(0, 3).map(lambda n: n == 0)
    return st.tuples(query, ids, auth, keep).map(mutate)


for _schema in (admin_schema, shop_schema, keyed_schema):
    _schema.hooks.register_hook_with_name(unicode_heavy, "flatmap_case")


def _call(case: schemathesis.Case, service: str | None) -> None:
    headers = dict(case.headers or {})
    # Latin-1 "Basic ..." credentials (from unicode_heavy) are kept as fuzz; anything else is
    # replaced by valid ones so most cases get past auth to the parameters.
    if not headers.get("Authorization", "").startswith("Basic "):
        headers = {
            k: v for k, v in headers.items() if k.lower() not in ("authorization", "x-api-key")
        }
        headers.update(_credentials(service))
    # A foreign X-Tenant-ID is a 403 before anything else is read: keep one in four.
    tenant = headers.get("X-Tenant-ID")
    if tenant is not None and zlib.crc32(tenant.encode("utf-8", "replace")) % 4 != 1:
        del headers["X-Tenant-ID"]
    case.headers = headers
    case.call_and_validate(
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )


FUZZ = settings(deadline=None, suppress_health_check=list(HealthCheck), print_blob=True)


@admin_schema.parametrize()
@FUZZ
def test_the_farm_admin_surface_answers_as_its_document_says(case: schemathesis.Case) -> None:
    _call(case, None)


@shop_schema.parametrize()
@FUZZ
def test_an_oauth2_service_answers_as_its_document_says(case: schemathesis.Case) -> None:
    _call(case, "shop")


@keyed_schema.parametrize()
@FUZZ
def test_an_api_key_service_answers_as_its_document_says(case: schemathesis.Case) -> None:
    _call(case, "keyed")


def test_the_documents_list_every_route() -> None:
    paths = APP.openapi()["paths"]
    assert {"/admin/attempts", "/admin/lease", "/oauth2/token", "/admin/ledger"} <= set(paths)
    for spec, loaded in (("shop", shop_schema), ("keyed", keyed_schema)):
        served = {(op.ok().method.upper(), op.ok().path) for op in loaded.get_all_operations()}
        for resource in APP.farm.specs[spec].resources:
            for endpoint in resource.endpoints:
                assert (endpoint.method.value, endpoint.path) in served, (spec, endpoint.path)


def test_fuzz_state_stays_out_of_the_repository() -> None:
    assert APP.farm.store.path.parent != Path.cwd()
