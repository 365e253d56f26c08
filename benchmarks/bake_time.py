"""Bake time per variant, beside two baselines measured in the same run.

    .cache/tools/bin/python benchmarks/bake_time.py [--runs 20]

Baselines: `copytree`, a plain copy of the template folder (the floor for writing these
files), and `no hooks`, the same cookiecutter bake without the pre/post-gen hooks (what
the hooks cost). Prints a Markdown table of medians in milliseconds.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from cookiecutter.main import cookiecutter

TEMPLATE_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TEMPLATE_DIR / "tests"))
from conftest import VARIANTS  # noqa: E402  (the test matrix is the one list of variants)


def median_ms(action, runs: int) -> float:
    timings = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as scratch:
            start = time.perf_counter()
            action(Path(scratch))
            timings.append((time.perf_counter() - start) * 1000)
    return statistics.median(timings)


def bake(overrides: dict, hooks: bool = True):
    def action(output: Path) -> None:
        cookiecutter(
            str(TEMPLATE_DIR), no_input=True, extra_context=overrides, output_dir=str(output), accept_hooks=hooks
        )

    return action


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    runs = parser.parse_args().runs
    template_folder = TEMPLATE_DIR / "{{cookiecutter.project_slug}}"
    rows = [
        ("baseline: copytree", median_ms(lambda out: shutil.copytree(template_folder, out / "copy"), runs)),
        ("baseline: local, no hooks", median_ms(bake(VARIANTS["local"], hooks=False), runs)),
    ]
    rows += [(f"bake: {name}", median_ms(bake(overrides), runs)) for name, overrides in VARIANTS.items()]
    print(f"| what ({runs} runs) | median ms |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value:.1f} |")


if __name__ == "__main__":
    main()
