"""Keep cookiecutter.json's `_copy_without_render` equal to the template files that need no rendering.

Cookiecutter compiles every template file as Jinja, even one without a single tag, and that
compile is most of a bake's time. A file listed in `_copy_without_render` is copied byte for
byte instead. This script lists every file whose contents and name hold no Jinja syntax, and
whole folders where everything below qualifies (cookiecutter copies a listed folder in one go).

    python scripts/copy_without_render.py --write    # rewrite the list in cookiecutter.json
    python scripts/copy_without_render.py --check    # exit 1 if the list is out of date

Run --write after adding a file to the template, or adding Jinja to a file or removing it.
tests/test_render_shortcuts.py runs --check's comparison.

Cookiecutter matches the patterns with fnmatch against paths relative to the template folder
`{{cookiecutter.project_slug}}/` (as os.walk gives them there, unrendered), so the entries
have no `{{cookiecutter.project_slug}}/` prefix, and a file in the plugin package reads
`plugins/{{cookiecutter.project_slug}}/alerting.py`.
"""

from __future__ import annotations

import argparse
import fnmatch
import glob
import json
import sys
from pathlib import Path

TEMPLATE_DIR = Path(__file__).resolve().parents[1]
PROJECT_TEMPLATE = TEMPLATE_DIR / "{{cookiecutter.project_slug}}"
COOKIECUTTER_JSON = TEMPLATE_DIR / "cookiecutter.json"
JINJA_OPENERS = ("{{", "{%", "{#")
# Copied verbatim although they hold Jinja syntax: it is Airflow's (the plugins' task-field
# templates, the upgrade checker's fix templates and its Airflow 2 fixtures) or Helm's (the
# strings the chart's templates hold), which rendering would consume. Kept by hand.
VERBATIM = (
    "plugins/{{cookiecutter.project_slug}}/quality.py",
    "plugins/{{cookiecutter.project_slug}}/run_dates.py",
    "scripts/upgrade_check",
    "tests/test_helm_values.py",
    "tests/test_task_pods.py",
    "tests/test_upgrade_*.py",
    "tests/upgrade_fixtures",
)
# Build litter that is never part of the template.
IGNORED_NAMES = ("__pycache__", "*.pyc", ".pytest_cache", ".ruff_cache")


def has_jinja(text: str) -> bool:
    return any(opener in text for opener in JINJA_OPENERS)


def needs_rendering(path: Path) -> bool:
    """Whether a template file must go through Jinja: its contents or its name hold template syntax.

    A Jinja name may render empty, which cookiecutter handles only for rendered files. A folder
    name may substitute a variable (the plugin package), but not hold a tag.
    """
    relative = path.relative_to(PROJECT_TEMPLATE)
    if has_jinja(relative.name) or any("{%" in part or "{#" in part for part in relative.parts):
        return True
    try:
        return has_jinja(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        return False  # binary: cookiecutter never renders it


def is_ignored(path: Path) -> bool:
    return any(fnmatch.fnmatch(path.name, pattern) for pattern in IGNORED_NAMES)


def is_verbatim(relative: str) -> bool:
    return any(fnmatch.fnmatch(relative, pattern) for pattern in VERBATIM)


def pattern(path: Path) -> str:
    # fnmatch pattern matching exactly this path (a "[" or "*" in a name stays literal).
    return glob.escape(path.relative_to(PROJECT_TEMPLATE).as_posix())


def shortcuts_below(folder: Path) -> tuple[list[str], bool]:
    """The patterns for folder's contents, and whether everything in it can be copied as is."""
    patterns: list[str] = []
    all_copied = True
    for path in sorted(folder.iterdir()):
        if is_ignored(path) or is_verbatim(path.relative_to(PROJECT_TEMPLATE).as_posix()):
            continue
        if path.is_dir():
            below, whole = shortcuts_below(path)
            if whole and "{{" not in path.name:
                patterns.append(pattern(path))
            else:
                patterns += below
                all_copied = False
        elif needs_rendering(path):
            all_copied = False
        else:
            patterns.append(pattern(path))
    return patterns, all_copied


def copy_without_render() -> list[str]:
    """The whole `_copy_without_render` list: the verbatim entries and every file needing no rendering."""
    patterns, _ = shortcuts_below(PROJECT_TEMPLATE)
    return sorted([*VERBATIM, *patterns])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite the list in cookiecutter.json")
    mode.add_argument("--check", action="store_true", help="exit 1 if the list is out of date")
    args = parser.parse_args()
    options = json.loads(COOKIECUTTER_JSON.read_text())
    wanted = copy_without_render()
    if args.check:
        if options.get("_copy_without_render") != wanted:
            print(f"{COOKIECUTTER_JSON.name}: _copy_without_render is out of date; run {__file__} --write")
            return 1
        return 0
    options["_copy_without_render"] = wanted
    COOKIECUTTER_JSON.write_text(json.dumps(options, indent=2, ensure_ascii=False) + "\n")
    print(f"{COOKIECUTTER_JSON.name}: {len(wanted)} entries in _copy_without_render")
    return 0


if __name__ == "__main__":
    sys.exit(main())
