"""`python -m scripts.run_local`: the command line `make run` starts, and its Ctrl-C."""

from __future__ import annotations

import argparse
import os
import signal
import sys

from scripts import run_local
from scripts.run_local.common import Failed, say
from scripts.run_local.settings import EXAMPLE_STAND_INS
from scripts.run_local.supervisor import Supervisor

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stop(Exception):
    """Ctrl-C, SIGTERM or SIGHUP: stop everything."""


def on_signal(signum, _frame) -> None:
    raise Stop()


def on_signal_while_stopping(signum, _frame) -> None:
    """Ctrl-C again while running tasks finish: stop at once, and ignore any more."""
    for each in STOP_SIGNALS:
        signal.signal(each, signal.SIG_IGN)
    raise Stop()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m scripts.run_local", description=run_local.__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="the api-server's address (make run API_HOST=...)")
    parser.add_argument("--port", type=int, default=8080, help="the api-server's port (make run API_PORT=...)")
    if EXAMPLE_STAND_INS:
        port_help = "the stand-in APIs' port; 0 picks a free one (STAND_IN_PORT=...)"
        parser.add_argument("--stand-in-port", type=int, default=0, help=port_help)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    os.umask(0o077)  # every file make run, Airflow or postgres writes: owner-only
    # Ctrl-C, a stop from make or the system, and a closed terminal all stop every component.
    for signum in STOP_SIGNALS:
        signal.signal(signum, on_signal)
    supervisor = Supervisor(args)
    try:
        supervisor.start()
        supervisor.watch()
    except Stop:
        say("stopping every component")
        return 0
    except Failed as error:
        say(f"FAILED: {error}")
        say("stopping every component")
        return 1
    finally:
        for signum in STOP_SIGNALS:
            signal.signal(signum, on_signal_while_stopping)
        try:
            supervisor.stop()
        except Stop:
            supervisor.stop(at_once=True)
        say("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
