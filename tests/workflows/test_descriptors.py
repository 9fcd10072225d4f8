"""The descriptor the runner hands an AAM is a projection of the service spec: public facts and
one tenant's credentials, never the farm's private behaviour."""

from __future__ import annotations

import pytest
from wf_helpers import preseeded

from aam.descriptor import ConnectorDescriptor
from farm.loader import DEFAULT_CONFIG_DIR, load_specs
from workflows.descriptors import DescriptorError, descriptor_for

PRIVATE = (
    "rotate",
    "token_ttl",
    "error_profile",
    "network_profile",
    "drift",
    "chaos",
    "brownout",
    "outage",
    "commit_then_fail",
    "rate_limit_headers",
    "records",
)


def _creds(spec_id: str, tenant: str) -> dict[str, str]:
    return {
        "client_id": f"{spec_id}-{tenant}-id",
        "client_secret": f"{spec_id}-{tenant}-secret-0123456789",
        "api_key": f"{spec_id}-{tenant}-key-0123456789",
        "token_url": "/oauth2/token",
    }


@pytest.mark.parametrize("spec", load_specs([DEFAULT_CONFIG_DIR]), ids=lambda s: s.id)
def test_a_descriptor_holds_public_facts_and_one_tenants_credentials_only(spec) -> None:  # type: ignore[no-untyped-def]
    for tenant in spec.tenants:
        d = descriptor_for(spec, tenant.id, _creds(spec.id, tenant.id), "http://farm:8001/")
        text = d.model_dump_json()
        for word in PRIVATE:
            assert word not in text, (spec.id, word)
        for other in spec.tenants:
            if other.id != tenant.id:
                assert f"{spec.id}-{other.id}-" not in text  # no other tenant's secret
        assert d.connector_id == f"{spec.id}:{tenant.id}"
        assert d.base_url == "http://farm:8001" + spec.base_path
        limit = spec.rate_limit_for(tenant.id)
        assert d.rate_limit is not None
        assert (d.rate_limit.max_rps, d.rate_limit.burst) == (limit.max_rps, limit.burst)
        assert d.idempotency.supported == spec.idempotency.supported
        assert set(d.resources) == {r.name for r in spec.resources}
        for r in spec.resources:
            fields = d.resources[r.name].fields
            assert dict(spec.schema_.fields[r.name]).items() <= fields.items()
            # Beyond v1 only what a changing record documents about itself (living data).
            assert set(fields) - set(spec.schema_.fields[r.name]) <= {"version", "updated_at"}
            assert d.resources[r.name].lookup_field == r.lookup_field
        if d.auth.type == "oauth2_client_credentials":
            assert d.auth.token_url == "http://farm:8001/oauth2/token"
        # What goes over the wire validates as the contract's model.
        assert ConnectorDescriptor.model_validate_json(text) == d


def test_secrets_stay_out_of_repr() -> None:
    (spec,) = preseeded("stripe")
    d = descriptor_for(spec, "acme", _creds("stripe", "acme"), "http://farm:8001")
    assert "key-0123456789" not in repr(d) and "key-0123456789" not in repr(d.auth)


def test_an_unpublished_limit_is_left_out() -> None:
    (spec,) = preseeded("github")
    d = descriptor_for(spec, "acme", _creds("github", "acme"), "http://f", publish_rate_limit=False)
    assert d.rate_limit is None


def test_credentials_that_do_not_fit_the_auth_scheme_are_named() -> None:
    (spec,) = preseeded("stripe")
    with pytest.raises(DescriptorError, match="stripe/acme"):
        descriptor_for(spec, "acme", {}, "http://farm:8001")


def test_a_descriptor_refuses_unknown_keys_and_a_mismatched_id() -> None:
    from pydantic import ValidationError

    base = {"connector_id": "a:b", "service": "a", "tenant": "b", "base_url": "http://x/a"}
    ConnectorDescriptor.model_validate(base)
    with pytest.raises(ValidationError, match="rotate_token_every_calls"):
        ConnectorDescriptor.model_validate({**base, "rotate_token_every_calls": 100})
    with pytest.raises(ValidationError, match="connector_id"):
        ConnectorDescriptor.model_validate({**base, "connector_id": "a:c"})


def test_a_service_id_with_an_underscore_makes_a_valid_descriptor() -> None:
    base = {"connector_id": "my_service_mock:acme", "service": "my_service_mock", "tenant": "acme"}
    d = ConnectorDescriptor.model_validate({**base, "base_url": "http://farm:8001/mock"})
    assert d.connector_id == "my_service_mock:acme"
