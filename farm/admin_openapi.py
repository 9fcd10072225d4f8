"""The farm's own OpenAPI document (``/openapi.json``): FastAPI's admin, token and ops routes
completed with what they really answer.

Every status an endpoint can send is listed with its body shape: the error shape
``{"error", "detail", ...}`` everywhere, RFC 6749 ``{"error", "error_description"}`` for the token
endpoint. The data routes are described per service at ``{base_path}/openapi.json``
(``farm/openapi.py``). ``tests/farm/test_fuzz.py`` fuzzes both kinds against the app and fails on
any server error, or any status or shape a document does not describe.
"""

from __future__ import annotations

from typing import Any

JSON = "application/json"
ERROR = {"$ref": "#/components/schemas/FarmError"}
OAUTH_ERROR = {"$ref": "#/components/schemas/OAuthError"}
ANY_OBJECT: dict[str, Any] = {"type": "object", "additionalProperties": True}

COMPONENTS: dict[str, Any] = {
    "FarmError": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {"type": "string"},
            "detail": {"type": ["string", "null"]},
            "problems": {"type": "array", "items": ANY_OBJECT},
            "lease": ANY_OBJECT,
        },
        "additionalProperties": True,
    },
    "OAuthError": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {"type": "string"},
            "error_description": {"type": "string"},
        },
        "additionalProperties": True,
    },
}


def _reply(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema or ERROR}}}


ADMIN_ERRORS = {
    "401": _reply("no admin token"),
    "403": _reply("wrong admin token"),
    "422": _reply("invalid parameters or body: {error: invalid_request, detail, problems}"),
}
BODY_ERRORS = {
    "400": _reply("malformed Content-Length"),
    "413": _reply("body over the cap (64 KiB), refused before it is read"),
}
#: Extra statuses per FastAPI operation (method, path).
EXTRA: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/admin/chaos"): {
        "404": _reply("unknown service"),
        "409": _reply("farm_leased: another holder's lease is live"),
    },
    ("post", "/admin/outages"): {
        "404": _reply("unknown service or tenant"),
        "409": _reply("farm_leased: another holder's lease is live"),
    },
    ("post", "/admin/reset"): {"409": _reply("farm_leased: another holder's lease is live")},
    ("get", "/admin/ledger"): {"404": _reply("unknown service")},
    ("get", "/admin/attempts"): {"404": _reply("unknown service")},
    ("post", "/admin/lease"): {"409": _reply("farm_leased: someone else holds the farm")},
    ("put", "/admin/lease/{lease_id}"): {"404": _reply("unknown_lease")},
    ("delete", "/admin/lease/{lease_id}"): {"404": _reply("unknown_lease")},
    ("get", "/admin/records/{service}/{resource}"): {
        "404": _reply("unknown service, resource or tenant")
    },
}

TOKEN_OPERATION: dict[str, Any] = {
    "summary": "OAuth2 client-credentials grant (RFC 6749 §4.4)",
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["grant_type"],
                    "properties": {
                        "grant_type": {"type": "string", "enum": ["client_credentials"]},
                        "client_id": {"type": "string"},
                        "client_secret": {"type": "string"},
                        "scope": {"type": "string"},
                    },
                }
            }
        },
    },
    "responses": {
        "200": _reply(
            "a bearer token",
            {
                "type": "object",
                "required": ["access_token", "token_type", "expires_in"],
                "properties": {
                    "access_token": {"type": "string"},
                    "token_type": {"type": "string"},
                    "expires_in": {"type": "number"},
                    "scope": {"type": "string"},
                },
            },
        ),
        "400": _reply(
            "invalid_request / unsupported_grant_type (or a malformed length)",
            {"anyOf": [OAUTH_ERROR, ERROR]},
        ),
        "401": _reply("invalid_client", OAUTH_ERROR),
        "413": _reply("body over the cap (64 KiB), refused before it is read"),
    },
}


def complete(document: dict[str, Any]) -> dict[str, Any]:
    """Fill in ``document`` (FastAPI's) in place; returns it."""
    document.setdefault("components", {}).setdefault("schemas", {}).update(COMPONENTS)
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            if path.startswith("/admin"):
                responses.update(ADMIN_ERRORS)
                if "requestBody" in operation:
                    responses.update(BODY_ERRORS)
                    operation["requestBody"]["required"] = False
            responses.update(EXTRA.get((method, path), {}))
            if path.startswith("/admin/records/"):
                responses["404"] = _reply("unknown service, resource, tenant or record")
    document["paths"]["/oauth2/token"] = {"post": TOKEN_OPERATION}
    metrics = document["paths"]["/metrics"]["get"]
    metrics["responses"] = {
        "200": {
            "description": "Prometheus text exposition",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    }
    return document
