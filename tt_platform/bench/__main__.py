"""``make bench``: run every benchmark, print one table, write bench-results.json.

``python -m tt_platform.bench [--quick] [--only store,features] [--output PATH]``
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from pathlib import Path

from tt_platform.bench.harness import BenchResult, format_table, write_json

MODULES = ("store", "marketdata", "features", "env", "training", "ib", "dagster_layer", "demo", "walk_forward", "live")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tt_platform.bench")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--only", default="", help=f"comma-separated subset of {','.join(MODULES)}")
    parser.add_argument("--output", default="bench-results.json")
    args = parser.parse_args(argv)
    selected = [m for m in MODULES if not args.only or m in args.only.split(",")]
    results: list[BenchResult] = []
    failed: list[str] = []
    for name in selected:
        print(f"== {name}", flush=True)
        try:
            module = importlib.import_module(f"tt_platform.bench.{name}")
            results.extend(module.run(quick=args.quick))
        except Exception:  # one broken benchmark must not hide the others' numbers
            traceback.print_exc()
            failed.append(name)
    print()
    print(format_table(results))
    write_json(results, Path(args.output))
    print(f"\nwrote {args.output}")
    if failed:
        print(f"benchmarks that failed to run: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
