"""A bake compiles less than cookiecutter would, and writes the same bytes.

Compiled templates are kept between bakes (compile_less.CompiledTemplateCache): a bake from
the cache writes the bytes a bake that compiles writes, every clone of the template shares it, an
edited file is compiled afresh, and a cache that cannot be used never stops a bake. Paths and
prompts that hold no Jinja are not compiled at all (compile_less.PlainTextShortcut)."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import jinja2
import pytest
from cookiecutter.main import cookiecutter
from helpers import NOT_TEMPLATE, SECRET_FILES, TEMPLATE_DIR, VARIANTS, check_overrides
from jinja2.bccache import bc_magic


@pytest.fixture
def temp_dir(tmp_path, monkeypatch) -> Path:
    """A temp directory of this test's own, where Jinja keeps the cache, as it does in the user's."""
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    return temp


@pytest.fixture
def compiles(monkeypatch) -> list[str | None]:
    """The name of each template Jinja compiles, as the bakes go on: a file's path, or None for a
    path or prompt (cookiecutter renders those with from_string)."""
    names: list[str | None] = []
    compile_source = jinja2.Environment.compile

    def counting_compile(self, source, name=None, filename=None, *args, **kwargs):
        names.append(name)
        return compile_source(self, source, name, filename, *args, **kwargs)

    monkeypatch.setattr(jinja2.Environment, "compile", counting_compile)
    return names


def files(compiles: list[str | None]) -> list[str]:
    return [name for name in compiles if name is not None]


def cache_entries(temp_dir: Path) -> list[Path]:
    return sorted(temp_dir.glob("_jinja2-cache-*/airflow-template-*.cache"))


def empty(temp_dir: Path) -> None:
    shutil.rmtree(temp_dir)
    temp_dir.mkdir()


def tree(project: Path) -> dict[str, bytes]:
    return {
        path.relative_to(project).as_posix(): path.read_bytes()
        for path in sorted(project.rglob("*"))
        if path.is_file() and path.name not in SECRET_FILES
    }


def bake_tree(output_dir: Path, template: Path = TEMPLATE_DIR, **overrides) -> dict[str, bytes]:
    check_overrides(overrides)
    return tree(Path(cookiecutter(str(template), no_input=True, extra_context=overrides, output_dir=str(output_dir))))


def clone(destination: Path, extensions: list[str] | None = None, **jinja_settings) -> Path:
    """A copy of the template, as cruft clones it, with other `_extensions` or Jinja settings if given."""
    shutil.copytree(TEMPLATE_DIR, destination, ignore=NOT_TEMPLATE)
    settings_file = destination / "cookiecutter.json"
    settings = json.loads(settings_file.read_text())
    if extensions is not None:
        settings["_extensions"] = extensions
    settings["_jinja2_env_vars"].update(jinja_settings)
    settings_file.write_text(json.dumps(settings))
    return destination


def test_a_bake_from_the_cache_compiles_no_file_and_writes_what_compiling_writes(temp_dir, compiles, tmp_path):
    local_compiling = bake_tree(tmp_path / "local-1")
    files_with_jinja = len(files(compiles))
    assert files_with_jinja > 50, compiles
    assert len(cache_entries(temp_dir)) == files_with_jinja

    compiles.clear()
    assert bake_tree(tmp_path / "local-2") == local_compiling
    assert files(compiles) == []

    # The compiled code does not depend on the answers: another variant renders from the same entries.
    celery_from_cache = bake_tree(tmp_path / "celery-1", executor="CeleryExecutor")
    assert files(compiles) == []
    empty(temp_dir)
    assert bake_tree(tmp_path / "celery-2", executor="CeleryExecutor") == celery_from_cache
    assert len(files(compiles)) == files_with_jinja


def test_every_clone_shares_the_cache_and_an_edited_file_is_compiled_again(temp_dir, compiles, tmp_path):
    # cruft bakes from a fresh clone in a temporary folder each time.
    bake_tree(tmp_path / "out-1", template=clone(tmp_path / "clone-1"))
    compiles.clear()

    second = clone(tmp_path / "clone-2")
    readme = second / "{{cookiecutter.project_slug}}" / "README.md"
    readme.write_text(readme.read_text() + "\nEdited in {{ cookiecutter.project_slug }}.\n")
    baked = bake_tree(tmp_path / "out-2", template=second)

    assert files(compiles) == ["README.md"]
    assert baked["README.md"].decode().endswith("\nEdited in data_platform_airflow.\n")


def test_an_entry_compiled_with_other_jinja_settings_is_not_used(temp_dir, compiles, tmp_path):
    # trim_blocks changes the compiled code of an unchanged source, and so what a bake writes.
    default_settings = bake_tree(tmp_path / "default-settings")
    trimming = clone(tmp_path / "trimming", trim_blocks=True)
    compiles.clear()

    from_warm_cache = bake_tree(tmp_path / "warm", template=trimming)
    files_with_jinja = len(files(compiles))
    assert files_with_jinja > 50, compiles
    assert from_warm_cache != default_settings
    empty(temp_dir)
    assert bake_tree(tmp_path / "cold", template=trimming) == from_warm_cache


@pytest.mark.parametrize(
    "damage",
    [b"", b"not a cache entry", bc_magic, bc_magic + b"\x80\x04truncated", None],
    ids=["empty", "garbage", "header-only", "truncated", "cache-folder-is-a-file"],
)
def test_a_damaged_or_unusable_cache_never_stops_a_bake(damage, temp_dir, compiles, tmp_path):
    reference = bake_tree(tmp_path / "reference")
    files_with_jinja = len(files(compiles))
    entries = cache_entries(temp_dir)
    if damage is None:
        folder = entries[0].parent
        shutil.rmtree(folder)
        folder.write_text("")  # Jinja refuses a cache folder it cannot own
    else:
        for entry in entries:
            entry.write_bytes(damage)
    compiles.clear()

    assert bake_tree(tmp_path / "after") == reference
    assert len(files(compiles)) == files_with_jinja


@pytest.mark.parametrize("variant", ["local", "hybrid", "analytics-hub"])
def test_paths_and_prompts_without_jinja_are_not_compiled_and_bake_the_same_bytes(
    variant, temp_dir, compiles, tmp_path
):
    settings = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text())
    assert "compile_less.PlainTextShortcut" in settings["_extensions"]
    without = clone(
        tmp_path / "without-shortcut",
        extensions=[name for name in settings["_extensions"] if name != "compile_less.PlainTextShortcut"],
    )
    compiling_each = bake_tree(tmp_path / "compiling-each", template=without, **VARIANTS[variant])
    strings_compiled_each = compiles.count(None)
    compiles.clear()

    assert bake_tree(tmp_path / "shortcut", **VARIANTS[variant]) == compiling_each
    assert strings_compiled_each > 150
    assert compiles.count(None) < strings_compiled_each / 4
