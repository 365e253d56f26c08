"""Validate the answers before cookiecutter writes anything.

Cookiecutter renders this file, then runs it; a non-zero exit makes it delete the
half-made project. Answers are read as JSON from a raw string, so no value can
ever become code here. The checks are plain functions that tests import.

Which answers are choices, yes/no or free text comes from cookiecutter.json itself, so a new
option or choice is checked without editing this file. Cookiecutter checks a typed or
--no-input answer against its choices, but a replay file (`cookiecutter --replay`) skips that
check, and so can an edited .cruft.json: the hook repeats it for every option. The hook runs
from a temporary file, away from the template, so local_extensions.py hands it the options.
"""

from __future__ import annotations

import json
import keyword
import re
import sys
import unicodedata

# Why a choice list holds what it does, told with an answer outside it.
CHOICE_REASONS = {
    # Airflow 3.3 runs on 3.10 to 3.14, but its current providers need 3.11 or newer.
    "python_version": "the versions constraints.txt is resolved and tested for",
}

# Names a project package must not take: they would shadow Airflow, the project's own
# top-level folders (all on sys.path when Airflow parses DAGs) or the test runner.
SHADOWED_NAMES = frozenset(
    {"airflow", "dags", "plugins", "tests", "test", "config", "deploy", "scripts", "conftest"}
    | {"celery", "kubernetes", "pendulum", "pytest", "sqlalchemy", "yaml"}
) | frozenset(sys.stdlib_module_names)

SLUG_PATTERN = re.compile(r"[a-z][a-z0-9_]*\Z")
EMAIL_PATTERN = re.compile(r"[^@\s]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+\Z")
# The owner shows in the UI and routes alerts, so it stays a short, plain name.
OWNER_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}\Z")
# Every answer typed as text lands in YAML, TOML, Python and Markdown files, so it must stay
# one line of printable text: U+2028 or U+0085 would end a YAML string early and add keys.
# These Unicode categories are never part of a one-line name: controls (C0 and C1, U+0085
# included), invisible format characters (bidi overrides), line and paragraph separators,
# surrogates.
FORBIDDEN_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs"}
# Cookiecutter renders answers as Jinja, and its Jinja runs Python: an answer holding template
# syntax ran a shell command at bake time, and again at every `cruft update`. (Spelt in halves
# because cookiecutter renders this file as a template too.)
JINJA_DELIMITERS = tuple(a + b for a, b in (("{", "{"), ("}", "}"), ("{", "%"), ("%", "}"), ("{", "#"), ("#", "}")))


class InvalidAnswer(ValueError):
    """One answer that cannot produce a working project."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


def check_free_text(field: str, value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidAnswer(field, "must not be empty")
    for char in value:
        if unicodedata.category(char) in FORBIDDEN_CATEGORIES:
            name = unicodedata.name(char, "a control character")
            raise InvalidAnswer(
                field, f"must be a single line of printable text; U+{ord(char):04X} ({name}) is not allowed"
            )
    for delimiter in JINJA_DELIMITERS:
        if delimiter in value:
            raise InvalidAnswer(
                field, f"must not contain template syntax {delimiter!r}: cookiecutter would run it as code"
            )


def check_choice(field: str, value: object, allowed: list) -> None:
    if value not in allowed:
        reason = f" ({CHOICE_REASONS[field]})" if field in CHOICE_REASONS else ""
        raise InvalidAnswer(field, f"{value!r} is not one of {', '.join(map(str, allowed))}{reason}")


def check_yes_no(field: str, value: object) -> None:
    if not isinstance(value, bool):
        raise InvalidAnswer(field, f"{value!r} is not true or false (yes or no)")


def check_slug(slug: str) -> None:
    if "/" in slug or "\\" in slug or ".." in slug:
        raise InvalidAnswer("project_slug", f"{slug!r} must be a plain folder name, not a path")
    if not SLUG_PATTERN.match(slug):
        raise InvalidAnswer(
            "project_slug",
            f"{slug!r} must start with a lowercase letter and use only a-z, 0-9 and _",
        )
    if keyword.iskeyword(slug):
        raise InvalidAnswer("project_slug", f"{slug!r} is a Python keyword")
    if slug in SHADOWED_NAMES:
        raise InvalidAnswer("project_slug", f"{slug!r} would shadow the module of the same name")


def check_email(email: str) -> None:
    if not EMAIL_PATTERN.match(email):
        raise InvalidAnswer("contact_email", f"{email!r} is not an email address")


def check_owner(owner: str) -> None:
    if not OWNER_PATTERN.match(owner):
        raise InvalidAnswer("owner_team", f"{owner!r} must be 1-64 letters, digits, spaces, '.', '_' or '-'")


def validate(answers: dict, options: dict) -> None:
    """Raise InvalidAnswer for the first answer that cannot work; options is cookiecutter.json."""
    public = {name: default for name, default in options.items() if not name.startswith("_")}
    for field, default in public.items():
        value = answers.get(field)
        if isinstance(default, list):
            check_choice(field, value, default)
        elif isinstance(default, bool):
            check_yes_no(field, value)
        else:
            check_free_text(field, value)
    check_slug(answers["project_slug"])
    check_email(answers["contact_email"])
    check_owner(answers["owner_team"])


def main() -> int:
    answers = json.loads(r"""{{ cookiecutter | tojson }}""")
    options = json.loads(r"""{{ template_options | tojson }}""")
    try:
        validate(answers, options)
    except InvalidAnswer as error:
        print(f"ERROR: invalid answer for {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
