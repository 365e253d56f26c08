"""Which files an old repository holds, and which of them Airflow would parse as DAG files."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from scripts.upgrade_check.model import UsageError

# Folders that hold no code of the team's: version control, environments, caches, build output.
SKIPPED_FOLDERS = frozenset({"__pycache__", "node_modules", "site-packages", "venv", "env", "build", "dist", "logs"})
CONFIG_CANDIDATES = ("airflow.cfg", "config/airflow.cfg")


@dataclass(frozen=True)
class SourceTree:
    """An old repository: paths are relative to `root`, in POSIX form."""

    root: Path
    dags_folder: Path
    python_files: tuple[str, ...]
    dag_files: frozenset[str]
    airflow_cfg: Path | None

    @property
    def plugins_folder(self) -> Path | None:
        folder = self.root / "plugins"
        return folder if folder.is_dir() else None


def might_contain_dag(path: Path) -> bool:
    """Airflow's own safe-mode test: the file mentions both "airflow" and "dag"."""
    content = path.read_bytes().lower()
    return b"airflow" in content and b"dag" in content


def python_files_under(root: Path) -> list[str]:
    found = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith(".") and name not in SKIPPED_FOLDERS)
        found += [Path(folder, name).relative_to(root).as_posix() for name in sorted(files) if name.endswith(".py")]
    return found


def find_airflow_cfg(root: Path, given: Path | None) -> Path | None:
    if given is not None:
        if not given.is_file():
            raise UsageError(f"CFG={given}: no such file (the old airflow.cfg to check)")
        return given.resolve()
    for candidate in CONFIG_CANDIDATES:
        if (root / candidate).is_file():
            return root / candidate
    return None


def scan(src: Path, airflow_cfg: Path | None = None) -> SourceTree:
    """The repository at `src` (a folder, or one .py file); UsageError when there is nothing to check."""
    if not src.exists():
        raise UsageError(f"SRC={src}: no such file or folder (point it at the old repository or its dags/ folder)")
    src = src.resolve()
    if src.is_file():
        if src.suffix != ".py":
            raise UsageError(f"SRC={src}: not a Python file (point it at a folder, or at one .py DAG file)")
        root, files, dags_folder = src.parent, [src.name], src.parent
    else:
        root, files = src, python_files_under(src)
        dags_folder = src / "dags" if (src / "dags").is_dir() else src
    in_dags_folder = [name for name in files if (root / name).resolve().is_relative_to(dags_folder)]
    dag_files = frozenset(name for name in in_dags_folder if might_contain_dag(root / name))
    if not dag_files:
        raise UsageError(
            f"SRC={src}: no DAG files in {dags_folder} (none of its .py files mentions both 'airflow' and 'dag', "
            "which is how Airflow finds them)"
        )
    return SourceTree(root, dags_folder, tuple(files), dag_files, find_airflow_cfg(root, airflow_cfg))
