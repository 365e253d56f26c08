"""What every part of the supervisor shares: the project folder, the terminal and the way to give up."""

from __future__ import annotations

import contextlib
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]


class Failed(Exception):
    """Something make run cannot recover from; the message names it."""


def say(message: str) -> None:
    # A closed terminal or a gone pipe (`make run | tee`) must not keep make run from stopping.
    with contextlib.suppress(OSError):
        print(f"[make run] {message}", flush=True)


def owner_only(path: Path) -> Path:
    """Create a folder only its owner can read (or make an existing one so)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)
    return path
