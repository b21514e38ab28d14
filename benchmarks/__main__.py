"""``python -m benchmarks [--quick] [--only NAME ...] [--report]``."""

from __future__ import annotations

import argparse
import sys

from benchmarks._runner import discover, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat (CI)")
    parser.add_argument("--only", nargs="*", help="run benchmarks whose name contains these")
    parser.add_argument("--list", action="store_true", help="list benchmarks and exit")
    parser.add_argument(
        "--report", action="store_true", help="write BENCHMARKS.md from benchmarks/results/"
    )
    args = parser.parse_args(argv)
    if args.report:
        from benchmarks.report import write_report

        print(f"wrote {write_report()}")
        return 0
    if args.list:
        print("\n".join(discover(args.only)))
        return 0
    records = run(quick=args.quick, only=args.only)
    failed = [r for r in records if r.get("check", "ok") != "ok"]
    for r in failed:
        print(f"CHECK FAILED: {r['name']}: {r['check']}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
