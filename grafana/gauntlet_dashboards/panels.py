"""Panel shorthands: the few panel shapes the Gauntlet dashboards are made of."""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as common_builder
from grafana_foundation_sdk.builders import stat, statetimeline, table, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants
from grafana_foundation_sdk.models import common as common_model
from grafana_foundation_sdk.models import dashboard as model

from .common import DATASOURCE, thresholds

#: A panel's queries.
Targets = list[cogbuilder.Builder[variants.Dataquery]]

GREEN = "green"
RED = "red"


def _legend() -> common_builder.VizLegendOptions:
    return (
        common_builder.VizLegendOptions()
        .display_mode(common_model.LegendDisplayMode.TABLE)
        .placement(common_model.LegendPlacement.RIGHT)
        .show_legend(True)
        .calcs(["lastNotNull", "max"])
    )


def graph(
    title: str,
    description: str,
    targets: Targets,
    unit: str,
    *,
    width: int = 12,
    height: int = 8,
    stacked: bool = False,
) -> timeseries.Panel:
    """A time series panel with a table legend on the right."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(targets)
        .unit(unit)
        .span(width)
        .height(height)
        .fill_opacity(10)
        .legend(_legend())
    )
    if stacked:
        panel = panel.stacking(
            common_builder.StackingConfig().mode(common_model.StackingMode.NORMAL)
        ).fill_opacity(40)
    return panel


def big_numbers(
    title: str,
    description: str,
    targets: Targets,
    *,
    mappings: list[model.ValueMapping] | None = None,
    unit: str = "none",
    steps: tuple[tuple[float | None, str], ...] = ((None, GREEN),),
    width: int = 12,
    height: int = 6,
) -> stat.Panel:
    """A stat panel: one big number (or mapped text) per series, last value."""
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(targets)
        .unit(unit)
        .span(width)
        .height(height)
        .color_mode(common_model.BigValueColorMode.BACKGROUND)
        .graph_mode(common_model.BigValueGraphMode.NONE)
        .text_mode(common_model.BigValueTextMode.VALUE_AND_NAME)
        .reduce_options(common_builder.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .thresholds(thresholds(*steps))
    )
    if mappings:
        panel = panel.mappings(mappings)
    return panel


def states(
    title: str,
    description: str,
    targets: Targets,
    mappings: list[model.ValueMapping],
    *,
    width: int = 12,
    height: int = 8,
) -> statetimeline.Panel:
    """A state timeline: a discrete gauge (circuit state, verdict) drawn as coloured bands."""
    return (
        statetimeline.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(targets)
        .mappings(mappings)
        .span(width)
        .height(height)
        .show_value(common_model.VisibilityMode.AUTO)
        .merge_values(True)
    )


def rows_table(
    title: str,
    description: str,
    targets: Targets,
    *,
    unit: str = "none",
    width: int = 24,
    height: int = 8,
) -> table.Panel:
    """A table of instant-query rows (labels as columns)."""
    return (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(targets)
        .unit(unit)
        .span(width)
        .height(height)
    )
