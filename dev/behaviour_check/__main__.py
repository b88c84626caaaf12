"""``python -m dev.behaviour_check``: record, compare, check (see :mod:`dev.behaviour_check`)."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from dev.behaviour_check import __doc__ as DOC
from dev.behaviour_check.compare import compare
from dev.behaviour_check.record import REPO, record


def main(argv: list[str] | None = None) -> int:
    """The command line: record, compare, check."""
    parser = argparse.ArgumentParser(prog="python -m dev.behaviour_check", description=DOC.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    rec = sub.add_parser("record", help="run the command set into --out")
    rec.add_argument("--out", type=Path, required=True)
    rec.add_argument("--source", type=Path, default=REPO, help="checkout to run (PYTHONPATH); default: this")
    cmp_ = sub.add_parser("compare", help="print every difference between two recordings")
    cmp_.add_argument("base", type=Path)
    cmp_.add_argument("new", type=Path)
    chk = sub.add_parser("check", help="record into a temporary folder, then compare with --baseline")
    chk.add_argument("--baseline", type=Path, required=True)
    chk.add_argument("--source", type=Path, default=REPO)
    chk.add_argument("--keep", type=Path, help="record here instead of a temporary folder (kept)")
    for p in (cmp_, chk):
        p.add_argument("--strict-help", action="store_true", help="count --help differences as failures")
    args = parser.parse_args(argv)
    if args.cmd == "record":
        record(args.out, args.source)
        return 0
    if args.cmd == "compare":
        return compare(args.base, args.new, args.strict_help)
    if args.keep:
        record(args.keep, args.source)
        return compare(args.baseline, args.keep, args.strict_help)
    with tempfile.TemporaryDirectory(prefix="behaviour-check-") as tmp:
        record(Path(tmp) / "rec", args.source)
        return compare(args.baseline, Path(tmp) / "rec", args.strict_help)


if __name__ == "__main__":
    sys.exit(main())
