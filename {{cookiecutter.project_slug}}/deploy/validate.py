"""Step 1: what ships, checked before Airflow or the target is touched."""

from __future__ import annotations

import os
import stat
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from deploy import DeployError, project


@dataclass(frozen=True)
class Validated:
    files: dict[str, bytes]
    dag_ids_by_file: dict[str, set[str]]


def is_excluded(relative: PurePosixPath) -> bool:
    """Bytecode is built where the code runs; shipping it would only go stale."""
    return "__pycache__" in relative.parts or relative.suffix == ".pyc"


def read_regular_file(path: Path) -> bytes:
    # O_NOFOLLOW: a file swapped for a link after the walk is refused, not read.
    descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(descriptor, "rb") as handle:
        return handle.read()


def local_files(folder: Path) -> dict[str, bytes]:
    """Every file to deploy, by its path relative to the folder (the bundle's root).

    Symbolic links are refused and never followed: a link can reach any file on the deploying
    machine, its environment and keys included, and would ship it into the bundle. So is
    anything that is not a regular file.
    """
    files: dict[str, bytes] = {}
    refused: list[str] = []
    for root, folders, names in os.walk(folder):  # never descends into a linked folder
        base = Path(root)
        for name in sorted(folders + names):
            path = base / name
            relative = PurePosixPath(path.relative_to(folder).as_posix())
            if is_excluded(relative):
                continue
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                refused.append(f"{relative} -> {os.readlink(path)}")
            elif name in names and not stat.S_ISREG(mode):
                refused.append(f"{relative} (not a regular file)")
            elif name in names:
                files[str(relative)] = read_regular_file(path)
        folders[:] = [name for name in folders if not (base / name).is_symlink() and name != "__pycache__"]
    if refused:
        raise DeployError(
            f"{folder.name}/ holds {len(refused)} symbolic link(s) or special file(s), which the deploy never "
            "follows or ships:\n  " + "\n  ".join(sorted(refused)) + "\nReplace each link with the file it points "
            "to, or delete it; nothing was deployed."
        )
    return files


def validate(dags_folder: Path = project.DAGS_FOLDER, pools_file: Path = project.POOLS_FILE) -> Validated:
    files = local_files(dags_folder)  # first, so that nothing is parsed through a link either
    dag_checks = project.dag_checks()
    dag_checks.use_project_config(project.PROJECT_ROOT)
    with warnings.catch_warnings():
        try:
            import airflow  # noqa: F401 (only whether it imports)
        except ModuleNotFoundError:
            raise DeployError(f"no Airflow in {sys.executable}: run `make deploy`, which uses .venv") from None
        # After Airflow's import, which installs warning filters of its own.
        warnings.simplefilter("ignore", DeprecationWarning)
        dag_bag = dag_checks.parse_dags(dags_folder, pools_file)
    if problems := dag_checks.deploy_blockers(dag_bag):
        raise DeployError(
            f"{len(problems)} problem(s) in {dags_folder}; nothing was deployed:\n\n" + "\n\n".join(problems)
        )
    dag_ids_by_file: dict[str, set[str]] = {}
    for dag_id, dag in dag_bag.dags.items():
        relative = Path(dag.fileloc).resolve().relative_to(dags_folder.resolve()).as_posix()
        dag_ids_by_file.setdefault(relative, set()).add(dag_id)
    return Validated(files, dag_ids_by_file)
