"""Each synthetic service's own OpenAPI 3.1 document, served at ``{base_path}/openapi.json``.

What a user would import into Postman or a client generator: the data routes of the spec (with
their pagination parameters and lookup filter), the token endpoint (OAuth2 services), the auth
scheme, the record shapes (schema version 1, as the spec declares them; drift later changes what
is served, as a real provider's undocumented change would) and the error bodies. It says what a
provider's documentation would say, never the farm's private behaviour (fault rates, drift
schedule, rotation).
"""

from __future__ import annotations

from typing import Any

from farm.spec import AuthType, ErrorStyle, HttpMethod, PaginationStyle, Resource, ServiceSpec

Schema = dict[str, Any]

#: JSON schema of a value of each field kind (``ref:<resource>`` is a string id).
_KIND_SCHEMAS: dict[str, Schema] = {
    "id": {"type": "string"},
    "integer": {"type": "integer"},
    "number": {"type": "number"},
    "amount": {"type": "number"},
    "boolean": {"type": "boolean"},
    "date": {"type": "string", "format": "date"},
    "datetime": {"type": "string", "format": "date-time"},
    "email": {"type": "string"},
    "url": {"type": "string"},
}
_ERROR: Schema = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
    "required": ["error"],
}
_STR: Schema = {"type": "string"}
#: The error body of each dialect (farm/dialect.py).
_DIALECT_ERRORS: dict[ErrorStyle, Schema] = {
    ErrorStyle.default: _ERROR,
    ErrorStyle.github: {
        "type": "object",
        "properties": {"message": _STR, "documentation_url": _STR},
        "required": ["message"],
    },
    ErrorStyle.salesforce: {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {"message": _STR, "errorCode": _STR},
            "required": ["message", "errorCode"],
        },
    },
    ErrorStyle.stripe: {
        "type": "object",
        "properties": {
            "error": {
                "type": "object",
                "properties": {"type": _STR, "code": _STR, "message": _STR},
                "required": ["type", "message"],
            }
        },
        "required": ["error"],
    },
    ErrorStyle.shopify: {"type": "object", "properties": {"errors": _STR}, "required": ["errors"]},
    ErrorStyle.hubspot: {
        "type": "object",
        "properties": {
            "status": _STR,
            "message": _STR,
            "correlationId": _STR,
            "category": _STR,
            "subCategory": _STR,
        },
        "required": ["status", "message", "category"],
    },
}
_OAUTH_ERROR: Schema = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
    "required": ["error"],
}


def _kind_schema(kind: str) -> Schema:
    if kind.startswith("ref:"):
        return {"type": ["string", "null"], "description": f"id of a {kind[4:]} record"}
    return dict(_KIND_SCHEMAS.get(kind, {"type": "string"}))


def _record(spec: ServiceSpec, resource: str) -> Schema:
    fields = spec.schema_.fields[resource]
    writable = any(e.method is HttpMethod.POST for e in spec.resource(resource).endpoints)
    if writable:
        # The farm stores a POST body as sent (any JSON object, fields of any type): a record
        # created by a client carries the client's values, so reads promise no field types.
        return {
            "type": "object",
            "properties": {
                name: {"description": f"{kind} (as the creating client sent it)"}
                if kind != "id"
                else {"type": "string"}
                for name, kind in fields.items()
            },
            "required": ["id"],
        }
    return {
        "type": "object",
        "properties": {name: _kind_schema(kind) for name, kind in fields.items()},
        "required": ["id"],
    }


def _new_record(spec: ServiceSpec, resource: str) -> Schema:
    fields = spec.schema_.fields[resource]
    return {
        "type": "object",
        "properties": {n: _kind_schema(k) for n, k in fields.items() if k != "id"},
        "description": "any JSON object; the server adds id and created_at",
    }


def _response(description: str, ref: str) -> Schema:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
    }


def _errors(*statuses: int) -> dict[str, Schema]:
    texts = {
        400: "malformed request (pagination parameters, JSON body, idempotency key)",
        401: "missing, unknown or expired credential",
        403: "the credential belongs to another tenant",
        404: "no such record",
        409: "a request with this Idempotency-Key is still being processed",
        410: "the cursor expired: list again without a cursor",
        413: "body too large",
        422: "body is not a JSON object, or an Idempotency-Key reused with another body",
        429: "rate limited; see Retry-After",
        500: "server error",
        502: "bad gateway",
        503: "service unavailable; see Retry-After",
        504: "gateway timeout",
    }
    return {str(s): _response(texts[s], "Error") for s in statuses}


_COMMON_ERRORS = (401, 403, 429, 500, 502, 503, 504)


def _page_parameters(resource: Resource) -> list[Schema]:
    p = resource.pagination
    size = {"type": "integer", "minimum": 1, "maximum": p.max_page_size}
    params: list[Schema] = [
        {"name": "limit", "in": "query", "schema": size, "description": "page size"}
    ]
    if p.style is PaginationStyle.cursor:
        params.append(
            {"name": "cursor", "in": "query", "schema": {"type": "string"},
             "description": "opaque cursor from the previous page's next link"}
        )  # fmt: skip
    elif p.style is PaginationStyle.offset:
        params.append(
            {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}}
        )
    else:
        params += [
            {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
            {"name": "per_page", "in": "query", "schema": size},
        ]
    return params


def _page_response(resource: Resource) -> Schema:
    response = _response("a page of records", f"{resource.name}.page")
    if resource.pagination.style is PaginationStyle.link:
        response["description"] = "a page of records; the next page is the Link rel=next"
        response["headers"] = {
            "Link": {"schema": {"type": "string"}, "description": '<url>; rel="next"'}
        }
    return response


def _operations(spec: ServiceSpec, resource: Resource) -> dict[str, dict[str, Schema]]:
    paths: dict[str, dict[str, Schema]] = {}
    name = resource.name
    for endpoint in resource.endpoints:
        item = paths.setdefault(endpoint.path, {})
        op_id = f"{endpoint.method.value.lower()}_{name}"
        if endpoint.method is HttpMethod.POST:
            headers = []
            if spec.idempotency.supported:
                headers.append(
                    {"name": "Idempotency-Key", "in": "header", "required": False,
                     "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                     "description": "repeat a POST safely: the first answer is replayed"}
                )  # fmt: skip
            item["post"] = {
                "operationId": f"create_{name}",
                "summary": f"Create a {name} record",
                "parameters": headers,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _new_record(spec, name)}},
                },
                "responses": {
                    "201": _response("the stored record", f"{name}.record"),
                    **_errors(400, 409, 413, 422, *_COMMON_ERRORS),
                },
            }
        elif endpoint.is_item:
            item["get"] = {
                "operationId": f"get_{name}_item",
                "summary": f"One {name} record",
                "parameters": [
                    {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {
                    "200": _response("the record", f"{name}.record"),
                    **_errors(404, *_COMMON_ERRORS),
                },
            }
        else:
            params = _page_parameters(resource) if endpoint.paginated else []
            if resource.lookup_field:
                params.append(
                    {"name": resource.lookup_field, "in": "query", "schema": {"type": "string"},
                     "description": f"only records whose {resource.lookup_field} equals this"}
                )  # fmt: skip
            item["get"] = {
                "operationId": op_id if endpoint.paginated else f"list_all_{name}",
                "summary": f"List {name} records" + (" (paginated)" if endpoint.paginated else ""),
                "parameters": params,
                "responses": {
                    "200": _page_response(resource)
                    if endpoint.paginated
                    else _response("every record", f"{name}.page"),
                    **_errors(400, 410, *_COMMON_ERRORS),
                },
            }
    return paths


def service_openapi(spec: ServiceSpec) -> dict[str, Any]:
    """The OpenAPI 3.1 document of one service (paths relative to its ``base_path``)."""
    paths: dict[str, Any] = {}
    schemas: dict[str, Schema] = {
        "Error": _DIALECT_ERRORS[spec.dialect.errors],
        "OAuthError": _OAUTH_ERROR,
    }
    for resource in spec.resources:
        for path, item in _operations(spec, resource).items():
            paths.setdefault(path, {}).update(item)
        schemas[f"{resource.name}.record"] = _record(spec, resource.name)
        items = {"$ref": f"#/components/schemas/{resource.name}.record"}
        if resource.pagination.style is PaginationStyle.link:
            schemas[f"{resource.name}.page"] = {"type": "array", "items": items}
            continue
        schemas[f"{resource.name}.page"] = {
            "type": "object",
            "properties": {
                "data": {
                    "type": "array",
                    "items": {"$ref": f"#/components/schemas/{resource.name}.record"},
                },
                "next": {"type": ["string", "null"], "description": "path of the next page"},
            },
            "required": ["data", "next"],
        }
    security_schemes: dict[str, Schema] = {}
    security: list[dict[str, list[str]]] = []
    auth = spec.auth
    if auth.type is AuthType.oauth2_client_credentials:
        security_schemes["oauth2"] = {
            "type": "oauth2",
            "flows": {"clientCredentials": {"tokenUrl": "/oauth2/token", "scopes": {}}},
        }
        security = [{"oauth2": []}]
        paths["/oauth2/token"] = {
            "servers": [{"url": "/"}],
            "post": {
                "operationId": "token",
                "summary": "OAuth2 client-credentials grant (RFC 6749 §4.4)",
                "security": [],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/x-www-form-urlencoded": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "grant_type": {
                                        "type": "string",
                                        "enum": ["client_credentials"],
                                    },
                                    "client_id": {"type": "string"},
                                    "client_secret": {"type": "string"},
                                    "scope": {"type": "string"},
                                },
                                "required": ["grant_type"],
                            }
                        }
                    },
                },
                "responses": {
                    "200": {
                        "description": "an access token",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "access_token": {"type": "string"},
                                        "token_type": {"type": "string"},
                                        "expires_in": {"type": "integer"},
                                        "scope": {"type": "string"},
                                    },
                                    "required": ["access_token", "token_type", "expires_in"],
                                }
                            }
                        },
                    },
                    "400": _response("malformed token request", "OAuthError"),
                    "401": _response("unknown client or wrong secret", "OAuthError"),
                    "429": _response("token requests rate limited", "OAuthError"),
                    "503": _response("token service unavailable", "OAuthError"),
                },
            },
        }
    elif auth.type is AuthType.api_key:
        security_schemes["api_key"] = {
            "type": "apiKey",
            "in": "header",
            "name": auth.api_key_header,
        }
        security = [{"api_key": []}]
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": spec.display_name or spec.id,
            "version": str(spec.schema_.version),
            "description": f"Synthetic service '{spec.id}' of the AAM Gauntlet farm.",
        },
        "servers": [{"url": spec.base_path}],
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": security_schemes},
    }
    if security:
        document["security"] = security
    return document
