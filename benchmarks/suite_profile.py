"""Where the template suite's time goes, from the JUnit report of one run.

    make test PYTEST_ARGS=--junitxml=junit.xml      # or CI=true bash .ci/run with the same PYTEST_ARGS
    .cache/tools/bin/python benchmarks/suite_profile.py junit.xml [--workers 2] [--target-minutes 15]

pytest-xdist keeps every worker busy until the queue runs dry, so a run's wall time cannot be
less than the worker-seconds its tests take (JUnit times, set-up and teardown included) divided
by the workers. The script prints that floor beside the run's wall time, the worker-seconds a
wall-time target leaves room for, and a Markdown table of worker-seconds per tier and module,
so a proposal to speed up the suite can be checked against what each part costs.
"""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import TIERS  # noqa: E402  (the one place that decides each test's tier)


def tier_of(module: str, test: str) -> str:
    name = test.split("[", 1)[0]
    return TIERS.get(f"{module}::{name}") or TIERS.get(module, "?")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("report", type=Path, help="pytest's --junitxml output")
    parser.add_argument("--workers", type=int, default=2, help="xdist workers of the run (make test: one per core)")
    parser.add_argument("--target-minutes", type=float, default=15)
    args = parser.parse_args()

    suite = ET.parse(args.report).getroot().find("testsuite")
    seconds: dict[tuple[str, str], float] = defaultdict(float)
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for case in suite.iter("testcase"):
        module = case.get("classname").rsplit(".", 1)[-1] + ".py"
        key = (tier_of(module, case.get("name")), module)
        seconds[key] += float(case.get("time"))
        counts[key] += 1
    total = sum(seconds.values())
    wall = float(suite.get("time"))
    room = args.target_minutes * 60 * args.workers
    print(f"wall time {wall / 60:.1f} min; {total:.0f} worker-seconds in tests, {args.workers} workers")
    print(f"floor: {total / args.workers / 60:.1f} min; workers busy {total / (wall * args.workers):.0%} of the run")
    target = f"{args.target_minutes:g}-minute"
    print(f"a {target} run leaves room for {room:.0f} worker-seconds: {total - room:+.0f} to go\n")
    print("| tier | module | tests | worker-seconds | share |")
    print("|---|---|---|---|---|")
    for (tier, module), spent in sorted(seconds.items(), key=lambda item: -item[1]):
        print(f"| {tier} | {module} | {counts[tier, module]} | {spent:.0f} | {spent / total:.0%} |")


if __name__ == "__main__":
    main()
