"""A Jinja extension that refuses template syntax in answers before cookiecutter renders them,
and hands the pre-gen hook cookiecutter.json's options.

Cookiecutter renders every answer as a Jinja template while it collects them (a default like
project_slug's is derived from project_name that way), and its Jinja can run Python. So an
answer such as `{{ ... }}` given on the command line, in extra_context or in a project's
.cruft.json runs at bake time and again at every `cruft update`, before any hook could look at
it. Only the template's own defaults in cookiecutter.json may hold template syntax.

Cookiecutter and cruft both put the template's root on sys.path, which is how
cookiecutter.json's `_extensions` finds this module. The pre-gen hook checks the same rule on
answers that are never rendered (typed at a prompt, or replayed), and every choice: it reads the
options as `template_options`, since it runs from a temporary file away from cookiecutter.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from cookiecutter.exceptions import FailedHookException
from jinja2.ext import Extension

JINJA_DELIMITERS = ("{{", "}}", "{%", "%}", "{#", "#}")
TEMPLATE_DEFAULTS = json.loads(Path(__file__).with_name("cookiecutter.json").read_text())
# The public options and their defaults (a choice's default is its list of values).
TEMPLATE_OPTIONS = {name: default for name, default in TEMPLATE_DEFAULTS.items() if not name.startswith("_")}


class UnsafeAnswer(FailedHookException):
    """An answer with template syntax. Cookiecutter's CLI prints this class without a traceback."""


def answer_being_rendered() -> str | None:
    """The option cookiecutter is rendering an answer for, or None outside its prompt loop.

    Jinja's preprocess() is told only the source, so the option's name is read from
    cookiecutter's prompt_for_config(), which cruft calls too.
    """
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "prompt_for_config" and frame.f_globals.get("__name__") == "cookiecutter.prompt":
            return frame.f_locals.get("key")
        frame = frame.f_back
    return None


class AnswerGuard(Extension):
    def __init__(self, environment) -> None:
        super().__init__(environment)
        environment.globals["template_options"] = TEMPLATE_OPTIONS

    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        field = answer_being_rendered()
        if field is None or source == TEMPLATE_DEFAULTS.get(field):
            return source
        for delimiter in JINJA_DELIMITERS:
            if delimiter in source:
                raise UnsafeAnswer(
                    f"ERROR: invalid answer for {field}: must not contain template syntax {delimiter!r}: "
                    "cookiecutter would run it as code"
                )
        return source
