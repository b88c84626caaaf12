"""Check an existing export: plain transformers on the folder against rewardlab on its source checkpoint.

What it does: scores DATA (JSONL: ``prompt`` with ``response``, or ``chosen``/``rejected``) with plain
``AutoTokenizer`` + ``AutoModelForSequenceClassification`` on ``prompt + response`` in the export
folder, and with rewardlab on the source checkpoint (from the export's ``rewardlab.json``, or
``--source``), then prints the largest absolute difference and how many exceed 1e-4. With
``--python``, the plain side runs in that interpreter (e.g. a transformers 4.x venv), executing
``rewardlab/models/plain_scoring.py`` as a script, which imports no rewardlab code.

Run: ``PYTHONPATH=$PWD python scripts/check_export.py EXPORT_DIR DATA.jsonl [--source CKPT]
[--python /tmp/tf4/bin/python]``. Exit status 0 when every difference is within 1e-4, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys

from rewardlab.models.export_check import check_export


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run the check, print its line; 0 when all agree."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="the exported folder")
    parser.add_argument("data", help="JSONL of (prompt, response) or (prompt, chosen, rejected) records")
    parser.add_argument("--source", help="the source checkpoint (default: the export record's)")
    parser.add_argument("--python", help="score the plain side with this interpreter (another transformers)")
    args = parser.parse_args(argv)
    result = check_export(args.folder, args.data, source=args.source, python=args.python)
    print(result.line())
    return 0 if result.over == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
