"""The files cookiecutter copies without rendering (`_copy_without_render`) are exactly those that
need no rendering, and copying them gives the bytes rendering would."""

from __future__ import annotations

import fnmatch
import importlib.util
import json
from pathlib import Path

import pytest
from cookiecutter.generate import generate_context, generate_file
from cookiecutter.prompt import prompt_for_config
from cookiecutter.utils import create_env_with_context, work_in
from helpers import TEMPLATE_DIR
from jinja2 import FileSystemLoader

SCRIPT = TEMPLATE_DIR / "scripts" / "copy_without_render.py"
spec = importlib.util.spec_from_file_location("copy_without_render", SCRIPT)
shortcuts = importlib.util.module_from_spec(spec)
spec.loader.exec_module(shortcuts)

PROJECT_TEMPLATE = shortcuts.PROJECT_TEMPLATE


def listed_patterns() -> list[str]:
    return json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text())["_copy_without_render"]


def copied_files() -> list[str]:
    """Every template file a listed pattern covers, itself or through a listed folder, as cookiecutter matches it."""
    patterns = listed_patterns()
    copied = []
    for path in sorted(PROJECT_TEMPLATE.rglob("*")):
        relative = path.relative_to(PROJECT_TEMPLATE)
        if path.is_dir() or shortcuts.is_ignored(path) or "__pycache__" in relative.parts:
            continue
        candidates = [relative.as_posix(), *(parent.as_posix() for parent in relative.parents if parent.parts)]
        if any(fnmatch.fnmatch(candidate, pattern) for candidate in candidates for pattern in patterns):
            copied.append(relative.as_posix())
    return copied


def test_copy_without_render_lists_every_file_that_needs_no_rendering():
    assert listed_patterns() == shortcuts.copy_without_render(), (
        "cookiecutter.json's _copy_without_render is out of date (a file was added, or gained or lost Jinja): "
        "run python scripts/copy_without_render.py --write"
    )


def test_every_listed_pattern_matches_a_template_path():
    # A pattern for a renamed or deleted file would silently match nothing.
    paths = [path.relative_to(PROJECT_TEMPLATE).as_posix() for path in PROJECT_TEMPLATE.rglob("*")]
    for pattern in listed_patterns():
        assert fnmatch.filter(paths, pattern), f"{pattern!r} in _copy_without_render matches no template file"


def test_no_file_with_template_syntax_is_copied_unless_kept_verbatim_on_purpose():
    for relative in copied_files():
        if not shortcuts.is_verbatim(relative) and not any(
            shortcuts.is_verbatim(parent.as_posix()) for parent in Path(relative).parents
        ):
            assert not shortcuts.needs_rendering(PROJECT_TEMPLATE / relative), relative


@pytest.fixture(scope="module")
def context() -> dict:
    context = generate_context(str(TEMPLATE_DIR / "cookiecutter.json"))
    context["cookiecutter"] = prompt_for_config(context, no_input=True)
    return context


def test_copying_a_shortcut_file_gives_the_bytes_rendering_would(context, tmp_path):
    # Render each copied file the way cookiecutter does for files not in the list.
    env = create_env_with_context(context)
    env.loader = FileSystemLoader(["."])
    kept_verbatim = {relative for relative in copied_files() if shortcuts.needs_rendering(PROJECT_TEMPLATE / relative)}
    checked = 0
    with work_in(PROJECT_TEMPLATE):
        for relative in sorted(set(copied_files()) - kept_verbatim):
            rendered_path = env.from_string(relative).render(**context)
            (tmp_path / rendered_path).parent.mkdir(parents=True, exist_ok=True)
            generate_file(str(tmp_path), relative, context, env)
            source = (PROJECT_TEMPLATE / relative).read_bytes()
            assert (tmp_path / rendered_path).read_bytes() == source, f"rendering {relative} changes it"
            checked += 1
    assert checked > 50


def test_a_bake_copies_shortcut_files_byte_for_byte(baked):
    project = baked("hybrid")
    slug = project.slug
    compared = 0
    for relative in copied_files():
        baked_file = project.path / relative.replace("{{cookiecutter.project_slug}}", slug)
        if baked_file.exists():  # the post-gen hook removes what the answers leave unused
            assert baked_file.read_bytes() == (PROJECT_TEMPLATE / relative).read_bytes(), relative
            compared += 1
    assert compared > 50
