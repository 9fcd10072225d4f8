"""Turn a pydantic JSON schema into a Kubernetes *structural* OpenAPI v3 schema.

Kubernetes rejects several things ``model_json_schema()`` emits: ``$ref``/``$defs`` (inlined
here), ``anyOf`` with ``null`` for optional fields (becomes ``nullable: true``), ``title``,
``const`` (becomes a one-value ``enum``), ``additionalProperties`` next to ``properties``
(dropped: the API server prunes unknown fields, and ``kubectl``'s strict field validation rejects
them), draft-2020 numeric ``exclusiveMinimum`` (becomes ``minimum`` + ``exclusiveMinimum: true``),
and ``default`` (dropped: defaults live in the pydantic models only, so there is one source).

This is the one place that conversion happens; :func:`structural_problems` checks the result.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

Schema = dict[str, Any]

# Keywords copied as they are.
_KEEP = {
    "type",
    "description",
    "enum",
    "pattern",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "required",
    "format",
    "nullable",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-int-or-string",
    "x-kubernetes-validations",
}
# Keywords with no structural meaning, dropped on purpose.
_DROP = {"title", "default", "$defs", "examples"}

_JSON_TYPES = {str: "string", bool: "boolean", int: "integer", float: "number"}


class SchemaConversionError(ValueError):
    """The pydantic schema uses a construct this converter does not translate."""


def to_structural(schema: Schema) -> Schema:
    """Convert a pydantic ``model_json_schema()`` result into a structural schema."""
    defs: dict[str, Schema] = schema.get("$defs", {})
    return _convert(schema, defs, "")


def _resolve(node: Schema, defs: dict[str, Schema]) -> Schema:
    # A $ref may carry sibling keywords (description, default): they win over the target's.
    while "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        if name not in defs:
            raise SchemaConversionError(f"unresolvable $ref {node['$ref']}")
        node = {**defs[name], **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _convert(node: Schema, defs: dict[str, Schema], path: str) -> Schema:
    node = _resolve(node, defs)
    if "anyOf" in node:
        return _convert_any_of(node, defs, path)
    out: Schema = {}
    has_properties = "properties" in node
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "properties":
            out[key] = {k: _convert(v, defs, f"{path}.{k}") for k, v in value.items()}
        elif key == "items":
            out[key] = _convert(value, defs, f"{path}[]")
        elif key == "additionalProperties":
            if has_properties or value is False:
                continue  # pruning + strict field validation do what extra="forbid" does
            if value is True or value == {}:
                out["x-kubernetes-preserve-unknown-fields"] = True
            else:
                out[key] = _convert(value, defs, f"{path}.*")
        elif key == "const":
            out["enum"] = [value]
            out.setdefault("type", _JSON_TYPES[type(value)])
        elif key in ("exclusiveMinimum", "exclusiveMaximum"):
            bound = "minimum" if key == "exclusiveMinimum" else "maximum"
            out[bound] = value
            out[key] = True
        elif key in _KEEP:
            out[key] = value
        else:
            raise SchemaConversionError(f"{path or '<root>'}: unsupported keyword {key!r}")
    return out


def _convert_any_of(node: Schema, defs: dict[str, Schema], path: str) -> Schema:
    options = node["anyOf"]
    rest = {k: v for k, v in node.items() if k not in ("anyOf", "default", "title")}
    non_null = [o for o in options if o.get("type") != "null"]
    nullable = len(non_null) < len(options)
    if len(non_null) == 1:
        out = _convert({**_resolve(non_null[0], defs), **rest}, defs, path)
    else:
        types = {_resolve(o, defs).get("type") for o in non_null}
        # Structural schemas allow no typed alternatives; these two escape hatches are the
        # Kubernetes way. The operator validates the value with the pydantic model anyway.
        if types == {"integer", "string"}:
            out = {"x-kubernetes-int-or-string": True}
        elif types <= {"string", "integer", "number", "boolean"} or (
            # A shorthand next to the full form (``error_profile: mostly_ok`` or an object;
            # ``schema.fields`` as a map or a flat list): the API server keeps the value as
            # it is and the pydantic model validates it.
            len(types) == 2 and None not in types and types & {"object", "array"}
        ):
            out = {"x-kubernetes-preserve-unknown-fields": True}
        else:
            raise SchemaConversionError(f"{path}: anyOf over {sorted(map(str, types))}")
        if "description" in rest:
            out["description"] = rest["description"]
    if nullable:
        out["nullable"] = True
    return out


def walk(schema: Schema, path: str = "") -> Iterator[tuple[str, Schema]]:
    """Every schema node with its path (``.a.b``, ``[]`` for items, ``.*`` for map values)."""
    yield path, schema
    for name, child in schema.get("properties", {}).items():
        yield from walk(child, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from walk(schema["additionalProperties"], f"{path}.*")


def structural_problems(schema: Schema) -> list[str]:
    """What makes ``schema`` non-structural (empty when Kubernetes would accept it)."""
    problems: list[str] = []
    for path, node in walk(schema):
        where = path or "<root>"
        escape = node.get("x-kubernetes-preserve-unknown-fields") or node.get(
            "x-kubernetes-int-or-string"
        )
        if "type" not in node and not escape:
            problems.append(f"{where}: no type")
        for keyword in ("$ref", "$defs", "anyOf", "oneOf", "allOf", "not", "title", "const"):
            if keyword in node:
                problems.append(f"{where}: {keyword} is not allowed")
        if "properties" in node and "additionalProperties" in node:
            problems.append(f"{where}: additionalProperties next to properties")
        if node.get("uniqueItems"):
            problems.append(f"{where}: uniqueItems: true is not allowed")
        for keyword in ("exclusiveMinimum", "exclusiveMaximum"):
            if keyword in node and not isinstance(node[keyword], bool):
                problems.append(f"{where}: {keyword} must be a boolean in OpenAPI v3.0")
        if node.get("type") == "array" and "items" not in node:
            problems.append(f"{where}: array without items")
        missing = set(node.get("required", [])) - set(node.get("properties", {}))
        if missing:
            problems.append(f"{where}: required names unknown properties {sorted(missing)}")
    return problems


def as_json_schema(structural: Schema, *, strict: bool = True) -> Schema:
    """A Draft 4 JSON Schema that accepts what the API server would accept for ``structural``.

    For offline checks of custom resources (no API server here): ``nullable`` becomes a
    ``null`` type, the ``x-kubernetes-*`` escapes become their JSON Schema meaning, and with
    ``strict`` unknown fields are errors, as with ``kubectl apply`` (strict field validation).
    """
    out: Schema = {}
    for key, value in structural.items():
        if key == "properties":
            out[key] = {k: as_json_schema(v, strict=strict) for k, v in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = as_json_schema(value, strict=strict)
        elif key in ("nullable", "x-kubernetes-preserve-unknown-fields", "format"):
            continue
        elif key == "x-kubernetes-int-or-string":
            out["type"] = ["integer", "string"]
        else:
            out[key] = value
    if structural.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"] if isinstance(out["type"], str) else out["type"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    if (
        strict
        and "properties" in structural
        and not structural.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out
