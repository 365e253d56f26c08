"""Whether `airflow` command lines exist in Airflow's CLI, parsed without running anything.

Reads [[word, ...], ...] from stdin. For each command: the longest subcommand path its words name,
whether that path is a leaf, and the exit code and output of `<path> --help` and of parsing the
whole command line with its options and placeholder arguments. Prints them as one JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys

from airflow.cli.cli_parser import get_parser

parser = get_parser()


def subcommands(p):
    return next((a.choices for a in p._actions if isinstance(a, argparse._SubParsersAction)), {})


def parse(args):
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            parser.parse_args(args)
            return 0, out.getvalue()
        except SystemExit as exit:
            return exit.code, out.getvalue()


results = []
for args in json.load(sys.stdin):
    path, current = [], parser
    for word in args:
        if word not in subcommands(current):
            break
        path.append(word)
        current = subcommands(current)[word]
    help_code, help_text = parse([*path, "--help"])
    parse_code, parse_text = parse(args)
    results.append(
        {
            "args": args,
            "path": path,
            "help_code": help_code,
            "help": help_text[:400],
            "leaf": not subcommands(current),
            "parse_code": parse_code,
            "parse": parse_text[-400:],
        }
    )
print(json.dumps(results))
