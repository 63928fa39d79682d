"""How the ``callguard`` command reports an error: ``callguard: <message>``, one line on
standard error. :func:`callguard.cli.main.main` does it once for every
:class:`~callguard.errors.CallguardError` a command lets through; a command reports an error
itself only where it must go on, or for an exception that is not callguard's own."""

from __future__ import annotations

import sys

from callguard.errors import CallguardError


def say(error: BaseException | str) -> None:
    """Print ``callguard: <error>`` to standard error."""
    text = str(error) or type(error).__name__
    print(f"callguard: {text}", file=sys.stderr, flush=True)


def failed(error: CallguardError) -> int:
    """Report ``error``; its exit status."""
    say(error)
    return error.exit_code
