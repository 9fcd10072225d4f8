"""The chaos levels keep the seed's figures (about 5 / 20 / 50 % errors) with every new fault
kind in the mix, measured through the farm's own fault step over 15 simulated minutes (so
brownout and outage windows count as often as they would in a real run)."""

from __future__ import annotations

import pytest

from farm.chaos import ChaosLevel
from farm.chaos_mix import measure


@pytest.mark.parametrize(
    ("level", "low", "high"),
    [(ChaosLevel.mild, 0.04, 0.06), (ChaosLevel.storm, 0.17, 0.23), (ChaosLevel.hell, 0.45, 0.55)],
)
def test_each_level_keeps_the_seed_error_share(level: ChaosLevel, low: float, high: float) -> None:
    mix = measure(level)
    assert low <= mix.error_share <= high, (level, mix.error_share, mix.kinds)
    expected = {"server_error", "refused", "network", "reset_mid_body", "timeout",
                "commit_then_5xx"}  # fmt: skip
    if level is not ChaosLevel.mild:
        expected.add("slow_body")
    if level is ChaosLevel.hell:
        expected.add("outage")
    assert expected <= set(mix.kinds), mix.kinds
    assert 0 < mix.writes_failed_after_commit < mix.writes


def test_calm_with_a_quiet_spec_and_off_inject_nothing() -> None:
    for level in (ChaosLevel.off, ChaosLevel.calm):
        mix = measure(level, seconds=60)
        assert mix.error_share == 0 and set(mix.kinds) == {"ok"}


def test_the_mix_is_the_same_for_the_same_seed() -> None:
    first = measure(ChaosLevel.hell, seconds=120, seed=9)
    assert first.kinds == measure(ChaosLevel.hell, seconds=120, seed=9).kinds
    assert first.kinds != measure(ChaosLevel.hell, seconds=120, seed=10).kinds
