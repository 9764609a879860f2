"""The longer fuzz run: ``python -m tests.fuzz --examples N`` runs every property of
``tests/fuzz`` with N inputs each (the suite runs 60) and prints how many it tried."""

from __future__ import annotations

import argparse
import os
import sys

import pytest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__)
    p.add_argument("--examples", type=int, default=1000, help="inputs per property [%(default)s]")
    args = p.parse_args(argv)
    if args.examples < 1:
        p.error("--examples must be at least 1")
    os.environ["LASERGUARD_FUZZ_EXAMPLES"] = str(args.examples)
    here = os.path.dirname(__file__)
    code = int(pytest.main([here, "-q", "-p", "no:cacheprovider"]))
    # Imported after the run: pytest must import hypothesis first (assertion rewriting).
    from tests.fuzz.settings import TRIED

    print(f"fuzz: {TRIED[0]} inputs tried (up to {args.examples} per property), exit {code}")
    return code


if __name__ == "__main__":
    sys.exit(main())
