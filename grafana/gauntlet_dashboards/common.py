"""Small building blocks shared by the dashboards: the datasource, queries, value mappings."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as builder
from grafana_foundation_sdk.builders import prometheus
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

#: The provisioned Prometheus datasource (grafana/provisioning/datasources/prometheus.yaml).
DATASOURCE_UID = "prometheus"
DATASOURCE = model.DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)
#: Every dashboard carries this tag, so the set can be found in Grafana's search.
TAG = "aam-gauntlet"


def series(expr: str, legend: str = "__auto", ref_id: str = "A") -> prometheus.Dataquery:
    """A range query drawn as time series."""
    return (
        prometheus.Dataquery()
        .expr(expr)
        .legend_format(legend)
        .ref_id(ref_id)
        .datasource(DATASOURCE)
        .range()
    )


def instant_table(expr: str, ref_id: str) -> prometheus.Dataquery:
    """An instant query in table format: one row per series, labels as columns."""
    return (
        prometheus.Dataquery()
        .expr(expr)
        .ref_id(ref_id)
        .datasource(DATASOURCE)
        .instant()
        .format(PromQueryFormat.TABLE)
    )


def value_texts(texts: dict[int, tuple[str, str]]) -> list[model.ValueMapping]:
    """Value mappings: number -> (display text, colour)."""
    return [
        model.ValueMap(
            options={
                str(value): model.ValueMappingResult(text=text, color=color, index=index)
                for index, (value, (text, color)) in enumerate(sorted(texts.items()))
            }
        )
    ]


def thresholds(*steps: tuple[float | None, str]) -> builder.ThresholdsConfig:
    """Absolute thresholds from (value, colour) steps; the first value is None (base)."""
    return (
        builder.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(value=value, color=color) for value, color in steps])
    )
