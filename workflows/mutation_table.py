"""``make mutants``: run every mutant AAM on the scenario that exercises its bug and tabulate the
verdicts; ``--write`` puts the table into workflows/README.md between its markers.

Each mutant runs against its own fresh in-process farm (loopback, ephemeral port) with the
scenario's seed, so the table is reproducible on one machine. A row is *caught* when the verdict
is FAILED and the expected invariant is among the failed ones.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from farm.loader import DEFAULT_CONFIG_DIR, load_specs
from farm.server import running_farm
from farm.spec import ServiceSpec
from workflows.mutants import MUTANTS, Mutant
from workflows.runner import RunOptions, load_scenario, run_scenario
from workflows.scenario import ScenarioSpec

SCENARIOS = Path(__file__).parent / "scenarios"
README = Path(__file__).parent / "README.md"
BEGIN, END = "<!-- mutants:begin -->", "<!-- mutants:end -->"


@dataclass
class MutantResult:
    mutant: Mutant
    verdict: str
    failed: list[str]
    seconds: float

    @property
    def caught(self) -> bool:
        return self.verdict == "FAILED" and self.mutant.expect in self.failed


def scenario_for(m: Mutant) -> ScenarioSpec:
    """The mutant's scenario file with its overrides (short, focused)."""
    spec = load_scenario(SCENARIOS / f"{m.scenario}.yaml")
    data = spec.model_dump()
    data.update(m.overrides)
    return ScenarioSpec.model_validate(data)


def configs_for(m: Mutant) -> Path:
    """The service specs the mutant's scenario needs (some scenarios bring their own)."""
    own = SCENARIOS / f"{m.scenario}-services"
    if m.scenario == "circuit-breaker-outage":
        own = SCENARIOS / "outage-services"
    return own if own.is_dir() else DEFAULT_CONFIG_DIR


@asynccontextmanager
async def fresh_farm(
    specs: list[ServiceSpec], work: Path, *, seed: int = 42, **options: Any
) -> AsyncIterator[RunOptions]:
    """A farm serving ``specs`` on loopback for the runs inside the block (its state in
    ``work/farm``), and the run options that point a run at it (the runner's state in
    ``work/state``; ``options`` are the rest of :class:`RunOptions`)."""
    async with running_farm(specs, seed=seed, state_dir=work / "farm") as farm:
        yield RunOptions(
            farm_urls={"*": farm.url},
            admin_token=farm.admin_token,
            state_dir=work / "state",
            **options,
        )


async def run_mutant(m: Mutant, work: Path) -> MutantResult:
    """One mutant on its scenario against a fresh farm."""
    spec = scenario_for(m)
    configs = configs_for(m)
    specs = [s for s in load_specs([configs]) if s.id in spec.services]
    started = time.monotonic()
    async with fresh_farm(
        specs, work, seed=spec.seed, configs=[configs], progress_interval=1.0, mutant=m.name
    ) as options:
        card = await run_scenario(spec, options)
    return MutantResult(m, card.verdict, card.failed_invariants(), time.monotonic() - started)


def table(results: list[MutantResult]) -> str:
    """The Markdown table (mutant, bug, scenario, verdict, invariants failed, caught)."""
    lines = [
        "| mutant | bug | scenario | verdict | expected invariant | failed invariants | caught |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        m = r.mutant
        failed = ", ".join(r.failed) or "—"
        lines.append(
            f"| `{m.name}` | {m.bug} | {m.scenario} | {r.verdict} | `{m.expect}` | {failed} | "
            f"{'yes' if r.caught else '**no**'} |"
        )
    return "\n".join(lines)


def write_readme(text: str, path: Path = README) -> None:
    doc = path.read_text()
    if BEGIN not in doc or END not in doc:
        raise SystemExit(f"{path}: markers {BEGIN} / {END} not found")
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")


async def main_async(names: list[str], write: bool) -> int:
    chosen = [m for m in MUTANTS if not names or m.name in names]
    unknown = set(names) - {m.name for m in MUTANTS}
    if unknown:
        print(f"error: unknown mutant(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    results = []
    with tempfile.TemporaryDirectory(prefix="gauntlet-mutants-") as tmp:
        for i, m in enumerate(chosen, 1):
            print(f"[{i}/{len(chosen)}] {m.name} on {m.scenario} ...", file=sys.stderr, flush=True)
            r = await run_mutant(m, Path(tmp) / m.name)
            mark = "caught" if r.caught else "MISSED"
            print(
                f"    {r.verdict} ({', '.join(r.failed) or 'no invariant failed'}) "
                f"{mark} in {r.seconds:.0f} s",
                file=sys.stderr,
                flush=True,
            )
            results.append(r)
    text = table(results)
    print(text)
    missed = [r.mutant.name for r in results if not r.caught]
    print(
        f"\n{len(results) - len(missed)} of {len(results)} mutants caught"
        + (f"; missed: {', '.join(missed)}" if missed else ""),
        file=sys.stderr,
    )
    if write and not names:
        write_readme(text)
        print(f"wrote the table into {README}", file=sys.stderr)
    return 0 if not missed else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m workflows.mutation_table",
        description="Run every mutant AAM on its scenario and print the mutation table.",
    )
    parser.add_argument("names", nargs="*", help="only these mutants (default: all)")
    parser.add_argument(
        "--write", action="store_true", help="write the table into workflows/README.md"
    )
    args = parser.parse_args(argv)
    return asyncio.run(main_async(args.names, args.write))


if __name__ == "__main__":
    raise SystemExit(main())
