"""Bake time per variant, this working tree beside a baseline commit, measured in the same run.

    .cache/tools/bin/python benchmarks/bake_time.py [--runs 7] [--baseline main]

Each bake is one call of cookiecutter's Python API with no_input and the hooks, as a user's
`cookiecutter` or `cruft create` makes it. The baseline is `git archive` of the given commit,
unpacked into a temporary folder. Bakes alternate between the two templates so that load from
other work on the machine falls on both alike. Prints a Markdown table of medians in
milliseconds; the row "local, no hooks" shows what the two hook interpreters cost.

This tree is baked twice in each turn: first with the compiled-template cache emptied (a user's
first bake of this template version), then from the cache that bake wrote (every later bake;
compile_less.CompiledTemplateCache). The cache lives in a temp directory of the script's
own, so the user's is neither read nor touched.

Bound rows show what any change to the template's files can win. Each is a copy of this tree in
which cookiecutter copies some files without rendering them (paths and prompts are still
rendered): every file, without hooks, with two empty hook scripts and with the real hooks; and
only the Markdown pages (README.md and docs/), with the real hooks, which is what a bake would
cost if no page held per-option text. They bake with the cache warm.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cookiecutter.main import cookiecutter

TEMPLATE_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TEMPLATE_DIR / "tests"))
from helpers import VARIANTS  # noqa: E402  (the test matrix is the one list of variants)

TEMPLATE_COPIED = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text())["_copy_without_render"]


def bake_ms(template: Path, overrides: dict, hooks: bool = True, cache: str = "warm") -> float:
    """One bake's wall time; cache="cold" empties the compiled-template cache before it."""
    if cache == "cold":
        shutil.rmtree(Path(tempfile.gettempdir()) / f"_jinja2-cache-{os.getuid()}", ignore_errors=True)
    # Import each template's own extension modules, as a fresh process would.
    for module in ("local_extensions", "compile_less"):
        sys.modules.pop(module, None)
    with tempfile.TemporaryDirectory() as output:
        start = time.perf_counter()
        cookiecutter(str(template), no_input=True, extra_context=overrides, output_dir=output, accept_hooks=hooks)
        return (time.perf_counter() - start) * 1000


def unpack(commit: str, destination: Path) -> Path:
    archive = subprocess.run(["git", "archive", commit], cwd=TEMPLATE_DIR, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(destination)], input=archive, check=True)
    return destination


def bound_template(destination: Path, copied: list[str], hooks: str) -> Path:
    """This tree with the `copied` patterns never rendered, and hooks "none", "empty" or "real"."""
    template = destination / f"bound-{len(copied)}-{hooks}"
    shutil.copytree(TEMPLATE_DIR, template, ignore=shutil.ignore_patterns(".git", ".cache", ".demo", "benchmarks"))
    settings = json.loads((template / "cookiecutter.json").read_text())
    settings["_copy_without_render"] = copied
    (template / "cookiecutter.json").write_text(json.dumps(settings))
    if hooks != "real":
        shutil.rmtree(template / "hooks")
    if hooks == "empty":
        (template / "hooks").mkdir()
        for hook in ("pre_gen_project.py", "post_gen_project.py"):
            (template / "hooks" / hook).write_text("")
    return template


# (row, files copied without rendering, hooks): what is left when the files render for free.
BOUNDS = (
    ("floor: local, every file copied, no hooks", ["*"], "none"),
    ("floor: local, every file copied, two empty hooks", ["*"], "empty"),
    ("bound: local, every file copied, the real hooks", ["*"], "real"),
    ("bound: local, Markdown pages copied, the rest rendered as now", ["*.md", *TEMPLATE_COPIED], "real"),
)


def medians_taking_turns(bakes: list[tuple], runs: int) -> list[float]:
    """Median ms of each bake_ms() argument tuple; the bakes take turns, so load falls on all alike."""
    samples: list[list[float]] = [[] for _ in bakes]
    for _ in range(runs):
        for bake_samples, bake in zip(samples, bakes, strict=True):
            bake_samples.append(bake_ms(*bake))
    return [statistics.median(bake_samples) for bake_samples in samples]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--baseline", default="main", help="the commit to compare with")
    args = parser.parse_args()
    cases = [("local, no hooks", VARIANTS["local"], False)]
    cases += [(name, overrides, True) for name, overrides in VARIANTS.items()]
    rows = []
    # The post-gen hook prints next steps from its own process: send them to /dev/null, not the table.
    stdout = os.dup(1)
    with tempfile.TemporaryDirectory() as scratch, open(os.devnull, "w") as devnull:
        baseline = unpack(args.baseline, Path(scratch))
        tempfile.tempdir = str(Path(scratch) / "temp")  # where Jinja keeps the cache: the script's own
        Path(tempfile.tempdir).mkdir()
        os.dup2(devnull.fileno(), 1)
        try:
            for template in (baseline, TEMPLATE_DIR):  # warm imports and disk caches once
                bake_ms(template, {})
            for name, overrides, hooks in cases:
                bakes = [(baseline, overrides, hooks), (TEMPLATE_DIR, overrides, hooks, "cold")]
                bakes.append((TEMPLATE_DIR, overrides, hooks, "warm"))
                rows.append((name, *medians_taking_turns(bakes, args.runs)))
            # The bound templates take turns too, after one warm-up bake each, and with this tree
            # itself, so that each bound compares with a bake made under the same load.
            bounds = [("local, taking turns with the rows below", TEMPLATE_DIR, "real")]
            bounds += [(name, bound_template(Path(scratch), copied, hooks), hooks) for name, copied, hooks in BOUNDS]
            for _, bound, _ in bounds:
                bake_ms(bound, {})
            bakes = [(bound, VARIANTS["local"], hooks != "none") for _, bound, hooks in bounds]
            medians = medians_taking_turns(bakes, args.runs)
            nan = float("nan")
            rows += [(name, nan, nan, median) for (name, _, _), median in zip(bounds, medians, strict=True)]
        finally:
            sys.stdout.flush()
            os.dup2(stdout, 1)
    print(
        f"| variant ({args.runs} bakes each) | median ms, {args.baseline} "
        "| median ms, this tree, first bake (cache empty) | median ms, this tree, cache warm |"
    )
    print("|---|---|---|---|")
    for name, *medians in rows:
        print(f"| {name} | " + " | ".join("-" if math.isnan(ms) else f"{ms:.0f}" for ms in medians) + " |")


if __name__ == "__main__":
    main()
