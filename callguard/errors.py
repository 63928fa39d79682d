"""The one exception tree of callguard: every error callguard raises on purpose is a
:class:`CallguardError`.

Each class is defined where it is raised (``callguard.config.ConfigError`` and so on) and
takes its base from here; this module imports nothing from callguard, so any layer can use
it without an import cycle. The builtin base a class had before the tree existed is kept
beside it (``ConfigError`` is still a ``ValueError``, ``CallNotFoundError`` still a
``KeyError``), so code that catches those goes on working.

::

    CallguardError                 anything callguard reports on purpose  (exit status 1)
    ├── InputError                 something the user gave cannot be used (exit status 2)
    │   ├── ConfigError            the settings file          config            + ValueError
    │   ├── RulesError             the rules file             rules.problems
    │   ├── TermSyntaxError        a tagged rule term         rules.terms       + ValueError
    │   ├── AudioFileError         a call recording (WAV)     sim.callaudio     + ValueError
    │   ├── DatasetError           a labelled dataset         rules.evaluation  + ValueError
    │   └── KeyFileError           an evidence key file       evidence.keys     + ValueError
    ├── ResourceError              something callguard works with is missing or failed
    │   ├── StoreError             the call store             store.records
    │   │   └── CallNotFoundError  no call with that id       store.records     + KeyError
    │   ├── EvidenceError          a call cannot be exported  evidence.package
    │   ├── ModelError             the speech model           asr.bundled       + RuntimeError
    │   ├── KiwiProcessError       the Kiwi child process     text.kiwiproc     + RuntimeError
    │   └── DemoDataMissing        the demo's speech data     demo.scenario     + FileNotFoundError
    ├── RtpError                   a malformed packet on the line  telephony.rtp  + ValueError
    └── NotEditable                the rules form cannot write a value  gui.rules_editor

The ``callguard`` command catches :class:`CallguardError` once, prints ``callguard:`` and the
message on one line to standard error and exits with the class's :attr:`exit_code`. Any
other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = ["CallguardError", "InputError", "ResourceError"]


class CallguardError(Exception):
    """An error callguard raises on purpose; its message says what went wrong and, where it
    can, what to do. ``exit_code`` is the ``callguard`` command's exit status for it."""

    exit_code: int = 1


class InputError(CallguardError):
    """Something the user gave callguard (a settings, rules, recording, dataset or key file)
    cannot be used; the message names it. Fix it and run again. Exit status 2, as for a
    bad command line."""

    exit_code = 2


class ResourceError(CallguardError):
    """Something callguard works with (the call store, a stored call, the speech model, the
    Kiwi process, the demo's speech data) is missing, damaged or failed."""
