"""Jinja extensions that make a bake compile less, and write the same bytes.

cookiecutter.json's `_extensions` loads them into every bake, beside local_extensions.AnswerGuard.
CompiledTemplateCache keeps each file's compiled template between bakes, and PlainTextShortcut
compiles nothing for a path or prompt that holds no Jinja (docs/benchmarks.md; the proof that a
bake writes the same bytes is tests/test_template_cache.py).

They live in a module of their own because `cruft update` bakes the project's old template
version and then the new one in one process, from the same folder: the second bake gets the
first one's modules from sys.modules. A module the old version did not have is imported fresh,
and whichever version of this one renders, the bytes are the same.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

import cookiecutter
import jinja2
from jinja2.bccache import Bucket, FileSystemBytecodeCache
from jinja2.ext import Extension

# This module's own code is part of every cache key: a change to it may change compiled code.
MODULE_DIGEST = hashlib.sha1(Path(__file__).read_bytes()).hexdigest()


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
        # On Windows Jinja keeps the cache in the temp folder itself, which may be shared, and
        # loading an entry unpickles it: only a folder of the user's own is safe to read.
        if os.name == "nt":
            return
        try:
            environment.bytecode_cache = TemplateBytecodeCache(environment)
        except (OSError, RuntimeError):  # no private temp folder: compile as without the cache
            pass


class TemplateBytecodeCache(FileSystemBytecodeCache):
    """Jinja's file cache, keyed by how the environment compiles as well, and never fatal.

    Jinja keys an entry by the template's name and path, which cookiecutter gives relative to the
    template, so every clone shares the cache (cruft bakes from a fresh one each time). Jinja
    checks the source's checksum and, in the entry's header, the Python version; the key adds
    everything else that changes the compiled code: the Jinja and cookiecutter versions (the
    latter's extensions add filters and tags), the environment's syntax and options
    (cookiecutter.json's `_jinja2_env_vars`), its extensions and this module.
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
            cookiecutter.__version__,
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
            MODULE_DIGEST,
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
