"""Entry point of the ``callguard`` command (also ``python -m callguard``)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from callguard import __version__
from callguard.cli import (
    accounts_cmd,
    call_cmd,
    central_cmd,
    evidence_cmd,
    rules_cmd,
    run_cmd,
    server_cmd,
)
from callguard.cli.failure import failed
from callguard.errors import CallguardError

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callguard",
        description="Protects call-center counselors from abusive callers.",
    )
    parser.add_argument("--version", action="version", version=f"callguard {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more log output (-v: INFO, -vv: DEBUG)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    rules_cmd.register(sub)
    call_cmd.register(sub)
    run_cmd.register(sub)
    evidence_cmd.register(sub)
    accounts_cmd.register(sub)
    server_cmd.register(sub)
    central_cmd.register(sub)
    # Handled in main() before parsing (own options); listed here for --help.
    sub.add_parser("gui", help="the desktop app: counselor, review, rules (callguard gui -h)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``callguard`` command; its exit status. Every error callguard raises on
    purpose (a :class:`~callguard.errors.CallguardError`) ends here as one line,
    ``callguard: <message>``, with the error's exit status (1, or 2 for unusable input);
    anything else is a bug and keeps its traceback."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        return _command(args_list)
    except CallguardError as exc:
        log.debug("the command failed", exc_info=exc)  # the traceback, with -vv
        return failed(exc)


def _command(args_list: list[str]) -> int:
    if args_list[:1] == ["gui"]:
        # The desktop app (its own options). Imported by name: the CLI package itself stays
        # free of Qt (an import-linter contract), and headless commands never load it.
        import importlib

        return int(importlib.import_module("callguard.gui.app").main(args_list[1:]))
    if args_list[:2] == ["bench", "cer"]:
        # `callguard bench cer`: recognition accuracy on the test speech (its own options).
        from callguard.bench.speech_cer import main as cer_main

        return cer_main(args_list[2:])
    parser = build_parser()
    args = parser.parse_args(args_list)
    logging.basicConfig(
        level=[logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    # Korean output must not die on a terminal or pipe with a narrow default encoding.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")
    return int(args.func(args) or 0)
