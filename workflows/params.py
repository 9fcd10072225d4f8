"""Workflow parameters checked against the workflow's signature before anything runs.

``pages: "x"`` for ``high_volume_read(connector, pages: int = 3)`` is a config error naming the
parameter and the type it wants (HTTP 422 from the backend, exit 2 from the runner), not a run of
failures or a 500 from deep inside the workflow.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

from pydantic import TypeAdapter, ValidationError

from workflows.connector import WorkflowConfigError


def validate_params(fn: Callable[..., Any], params: dict[str, Any]) -> dict[str, Any]:
    """``params`` converted to the types ``fn`` declares; :class:`WorkflowConfigError` naming
    the first unknown, missing or mistyped parameter."""
    signature = inspect.signature(fn)
    try:
        signature.bind(None, **params)
    except TypeError as exc:
        raise WorkflowConfigError(str(exc)) from None
    hints = typing.get_type_hints(fn)
    out: dict[str, Any] = {}
    for name, value in params.items():
        hint = hints.get(name)
        if hint is None:
            out[name] = value
            continue
        try:
            out[name] = TypeAdapter(hint).validate_python(value, strict=False)
        except ValidationError as exc:
            wanted = getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
            reason = exc.errors()[0].get("msg", "invalid value")
            raise WorkflowConfigError(
                f"parameter {name}: expected {wanted}, got {value!r} ({reason})"
            ) from None
    return out
