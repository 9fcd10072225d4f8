"""``PYTHONPATH=grafana python -m gauntlet_dashboards [--check]``: write or check the files."""

from __future__ import annotations

import sys

from .generate import stale, write_all


def main(argv: list[str]) -> int:
    """Write every generated file; with ``--check`` only report stale ones (exit 1)."""
    if "--check" in argv:
        outdated = stale()
        for rel in outdated:
            print(f"stale: {rel} (run `make dashboards`)", file=sys.stderr)
        return 1 if outdated else 0
    written = write_all()
    for rel in written:
        print(f"wrote {rel}")
    if not written:
        print("dashboards and recording rules already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
