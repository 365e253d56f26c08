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
    supervisor = Supervisor(args)

    def on_signal(signum, _frame) -> None:
        # From now on a stop signal only hurries the stop along: it never interrupts it.
        for each in STOP_SIGNALS:
            signal.signal(each, supervisor.hurry_up)
        raise Stop()

    # Ctrl-C, a stop from make or the system, and a closed terminal all stop every component.
    for signum in STOP_SIGNALS:
        signal.signal(signum, on_signal)
    exit_code = 0
    try:
        supervisor.start()
        supervisor.watch()
    except Stop:
        pass
    except Failed as error:
        say(f"FAILED: {error}")
        exit_code = 1
    finally:
        for signum in STOP_SIGNALS:
            signal.signal(signum, supervisor.hurry_up)
        if supervisor.components:
            say("stopping every component")
            supervisor.stop()
            say("stopped")
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
