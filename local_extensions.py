"""The template's Jinja extensions, which cookiecutter.json's `_extensions` loads into every bake.

AnswerGuard refuses template syntax in answers before cookiecutter renders them, and hands the
pre-gen hook cookiecutter.json's options. CompiledTemplateCache keeps each file's compiled
template between bakes, and PlainTextShortcut compiles nothing for a path or prompt that holds no
Jinja. The last two only make a bake faster: each bakes the same bytes without them
(tests/test_template_cache.py).

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

import functools
import hashlib
import json
import sys
from pathlib import Path

import jinja2
from cookiecutter.exceptions import FailedHookException
from jinja2.bccache import Bucket, FileSystemBytecodeCache
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


class CompiledTemplateCache(Extension):
    """Reuse each file's compiled template from an earlier bake instead of compiling it again.

    Compiling the files that hold Jinja is most of a bake (docs/benchmarks.md): each compile is a
    parse, Jinja's code generation and Python's compile, and gives the same code for every
    answer. Jinja's own bytecode cache keeps that code in a folder of the user's temp directory
    that only they may use; an entry is used only while its template's source is unchanged.
    Rendering with the answers still happens in every bake.
    """

    def __init__(self, environment) -> None:
        super().__init__(environment)
        try:
            environment.bytecode_cache = TemplateBytecodeCache(environment)
        except (OSError, RuntimeError):  # no private temp folder: compile as without the cache
            pass


class TemplateBytecodeCache(FileSystemBytecodeCache):
    """Jinja's file cache, keyed by how the environment compiles as well, and never fatal.

    Jinja keys an entry by the template's name and path, which cookiecutter gives relative to the
    template, so every clone shares the cache (cruft bakes from a fresh one each time). Jinja
    checks the source's checksum and, in the entry's header, the Python version; the key adds
    everything else that changes the compiled code: the Jinja version, the environment's syntax
    and options (cookiecutter.json's `_jinja2_env_vars`) and this module.
    """

    def __init__(self, environment) -> None:
        super().__init__(pattern="airflow-template-%s.cache")
        self.environment = environment

    @functools.cached_property
    def settings_digest(self) -> str:
        # Read at the first lookup: extensions are set up while the environment is still being built.
        env = self.environment
        settings = (
            jinja2.__version__,
            env.block_start_string,
            env.block_end_string,
            env.variable_start_string,
            env.variable_end_string,
            env.comment_start_string,
            env.comment_end_string,
            env.line_statement_prefix,
            env.line_comment_prefix,
            env.trim_blocks,
            env.lstrip_blocks,
            env.newline_sequence,
            env.keep_trailing_newline,
            env.optimized,
            env.is_async,
            repr(env.autoescape),
            sorted(env.extensions),
            hashlib.sha1(Path(__file__).read_bytes()).hexdigest(),
        )
        return hashlib.sha1(repr(settings).encode()).hexdigest()

    def get_cache_key(self, name: str, filename: str | None = None) -> str:
        return hashlib.sha1(f"{self.settings_digest}|{name}|{filename}".encode()).hexdigest()

    def load_bytecode(self, bucket: Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except Exception:  # unreadable or damaged: compile as without the cache
            bucket.reset()

    def dump_bytecode(self, bucket: Bucket) -> None:
        try:
            super().dump_bytecode(bucket)
        except OSError:  # full or read-only: the bake goes on, the next one compiles again
            pass


class PlainTextShortcut(Extension):
    """Give cookiecutter's paths and prompts that hold no Jinja one shared template, not a compile each.

    Cookiecutter renders every file and folder name and every prompt through from_string, and
    in a default bake 170 of those 203 strings hold no Jinja, yet each is compiled (37 of a warm
    bake's 186 ms on the development machine). Their templates all run one compiled
    `{{ text }}`, with the string as that template's own `text`, which renders it unchanged.
    """

    TEXT = "_plain_text_shortcut"
    # Compiled by a bare environment, away from AnswerGuard, which would take this `{{` in the
    # middle of cookiecutter's prompts for an answer's.
    CODE = jinja2.Environment().compile(f"{{{{ {TEXT} }}}}")

    def __init__(self, environment) -> None:
        super().__init__(environment)
        compile_each = environment.from_string

        def from_string(source, globals=None, template_class=None):
            if not (isinstance(source, str) and self.renders_unchanged(source)):
                return compile_each(source, globals, template_class)
            template_globals = environment.make_globals({**(globals or {}), self.TEXT: source})
            return (template_class or environment.template_class).from_code(environment, self.CODE, template_globals)

        environment.from_string = from_string

    def renders_unchanged(self, source: str) -> bool:
        env = self.environment
        if env.autoescape or env.finalize is not None or env.is_async:
            return False  # the shared code was compiled without these
        # End strings too: alone they are text to Jinja, but AnswerGuard refuses them in an answer.
        markers = [env.block_start_string, env.variable_start_string, env.comment_start_string]
        markers += [env.block_end_string, env.variable_end_string, env.comment_end_string]
        markers += [prefix for prefix in (env.line_statement_prefix, env.line_comment_prefix) if prefix]
        # Newlines are where Jinja's newline_sequence and keep_trailing_newline change text.
        markers += ["\n", "\r"]
        return not any(marker in source for marker in markers)
