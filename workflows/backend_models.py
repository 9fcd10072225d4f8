"""The backend API's request bodies (kept apart so the console module can use them without
importing the backend, which imports the console)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ConnectorRequest(BaseModel):
    """``POST /connectors``: add a (service, tenant) connector to the backend's mesh."""

    model_config = ConfigDict(extra="forbid")
    service: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    tenant: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class WorkflowRequest(BaseModel):
    """``POST /workflows/run``: run a workflow a few times on one backend connector."""

    model_config = ConfigDict(extra="forbid")
    workflow: str
    connector: str
    iterations: int = Field(default=1, ge=1, le=100)
    params: dict[str, str | int | float | bool] = Field(default_factory=dict)


class ScenarioRequest(BaseModel):
    """``POST /scenarios/run``: a scenario by file name or inline, with optional overrides."""

    model_config = ConfigDict(extra="forbid")
    scenario: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    spec: dict[str, Any] | None = None
    mode: Literal["calm", "mild", "storm", "hell"] | None = None
    profile: str | None = None
    profiles: list[str] | None = Field(default=None, min_length=1, max_length=10)
    seed: int | None = Field(default=None, ge=0)
    duration_seconds: float | None = Field(default=None, gt=0, le=3600)
    #: Test the AAM served at this URL (the HTTP contract) instead of the reference AAM.
    aam_url: str | None = Field(default=None, pattern=r"^https?://[^\s?#]+$", max_length=2000)
    #: Its bearer token (never echoed back; default: the backend's $GAUNTLET_AAM_TOKEN).
    aam_token: str | None = Field(default=None, min_length=1, max_length=500, repr=False)


class ReplayRequest(BaseModel):
    """``POST /dlq/replay``."""

    model_config = ConfigDict(extra="forbid")
    run_id: str | None = None
