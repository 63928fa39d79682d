"""The one exception tree of callguard: every error callguard raises on purpose is a
:class:`CallguardError`.

Each class is defined where it is raised (``callguard.config.ConfigError`` and so on) and
takes its base from here; this module imports nothing from callguard, so any layer can use
it without an import cycle. The builtin base a class had before the tree existed is kept
beside it (``ConfigError`` is still a ``ValueError``, ``CallNotFoundError`` still a
``KeyError``; ``+`` in the drawing), so code that catches those goes on working. A new
error class goes into the drawing too (tests/test_errors.py compares the two).

::

    CallguardError                 anything callguard reports on purpose (exit status 1)
    ├── InputError                 something the user gave cannot be used (exit status 2)
    │   ├── ConfigError            settings file         config                 + ValueError
    │   ├── RulesError             rules file            rules.problems
    │   ├── TermSyntaxError        tagged rule term      rules.terms            + ValueError
    │   ├── AudioFileError         call recording (WAV)  audio.wavfile          + ValueError
    │   ├── DatasetError           labelled dataset      rules.evaluation       + ValueError
    │   ├── KeyFileError           evidence key file     evidence.keys          + ValueError
    │   ├── NoteRequired           a note without text   services.review_access + ValueError
    │   ├── AudioCodecError        compressed recording  audio.compress
    │   ├── WireError              a desk's payload      central.wire
    │   ├── CentralRefused         server said no        central.client
    │   ├── SignInRefused          server account        central.review
    │   ├── ServerConfigError      server settings file  server.settings
    │   ├── AdminError             server admin command  server.admin
    │   └── BlobRejected           a recording upload    server.blobs
    ├── ResourceError              something callguard works with is missing or failed
    │   ├── StoreError             the call store        store.records
    │   │   └── CallNotFoundError  no call with that id  store.records          + KeyError
    │   ├── EvidenceError          call not exportable   evidence.package
    │   ├── ModelError             the speech model      asr.bundled            + RuntimeError
    │   ├── KiwiProcessError       the Kiwi process      text.kiwiproc          + RuntimeError
    │   ├── RecogniserCrashed      recogniser died       asr.process            + RuntimeError
    │   ├── RecogniserUnavailable  it failed too often   asr.process            + RuntimeError
    │   ├── RecogniserError        it could not do one   asr.process            + RuntimeError
    │   ├── ChildFailed            its pipe or deadline  asr.process
    │   │   └── ChildHung          missed its deadline   asr.process
    │   ├── DemoDataMissing        demo speech data      demo.scenario          + FileNotFoundError
    │   ├── CentralUnavailable     server unreachable    central.client
    │   ├── TlsError               pinned certificate    central.pinning
    │   ├── DatabaseError          server's PostgreSQL   server.database
    │   ├── BlobError              server's blob store   server.blobs
    │   ├── LocalPostgresError     a private PostgreSQL  server.localpg
    │   └── TrialError             a trial server        server.trial
    ├── PermissionDenied           role or sign-in       services.accounts      + PermissionError
    ├── RulesRefused               rules with errors     services.rules_admin
    ├── NotEditable                form cannot write it  rules.toml_edit
    ├── RtpError                   malformed RTP packet  telephony.rtp          + ValueError
    ├── ApiError                   HTTP refusal          server.app
    └── SdpRefused                 SDP offer refused     telephony.sipmsg       + ValueError

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
