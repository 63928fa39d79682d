"""Kiwi in a child process, so that building one never stalls this process.

Building a Kiwi holds the GIL for about 0.6 s, and the first analysis after it (or after
words were added) for another 0.5 s; measured on the 2-core reference machine. Done in
the agent's own process, that stalls *every* thread for over a second: the RTP sender (the
caller hears a gap), the 20 ms call loop and the GUI thread. It happens at start-up and
whenever pushed rules bring a new ``[dictionary]``.

A :class:`KiwiProcess` owns one Kiwi, for one :class:`~callguard.text.analyzer.Dictionary`,
in a child process (``python -m callguard.text.kiwiproc``). Requests and replies are one
JSON object per line on the child's stdin and stdout; the parent waits in a blocking pipe
read, which releases the GIL. The child starts at the first request; it builds and warms
Kiwi (one analysis) before it answers.

If the child dies (killed, out of memory), the next request starts a new one and is
retried once; a second failure raises :class:`KiwiProcessError`.

Analyses cost one pipe round trip more than in-process Kiwi (tenths of a millisecond).
Command-line tools that build Kiwi once and then analyse thousands of texts keep using
:func:`callguard.text.analyzer.kiwi_analyzer`; the engine and the desktop app use
:func:`kiwi_process`.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import weakref
from collections.abc import Sequence
from typing import IO, Any

from callguard.errors import ResourceError
from callguard.text.analyzer import Dictionary, Morph

log = logging.getLogger(__name__)

#: Seconds to wait for a child to leave after its stdin is closed, before it is killed.
_EXIT_GRACE_S = 2.0


class KiwiProcessError(ResourceError, RuntimeError):
    """The Kiwi child process failed twice in a row, or could not build its Kiwi."""


def _dictionary_json(dictionary: Dictionary) -> dict[str, Any]:
    return {"words": [list(w) for w in dictionary.words],
            "aliases": [[form, [list(m) for m in analysis]]
                        for form, analysis in dictionary.aliases]}


def _dictionary_from_json(data: dict[str, Any]) -> Dictionary:
    return Dictionary(
        words=tuple((form, tag) for form, tag in data["words"]),
        aliases=tuple((form, tuple((f, t) for f, t in analysis))
                      for form, analysis in data["aliases"]))


def _morphs(rows: list[list[Any]]) -> tuple[Morph, ...]:
    return tuple(Morph(form, tag, start, end) for form, tag, start, end in rows)


class _Child:
    """One running child: its process and pipes. Not thread-safe (the owner locks)."""

    def __init__(self, dictionary: Dictionary) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "callguard.text.kiwiproc"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None,
            text=True, encoding="utf-8", bufsize=1)
        self.ready = False
        self._send({"dictionary": _dictionary_json(dictionary)})

    def _send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message, ensure_ascii=False) + "\n")
        self.proc.stdin.flush()

    def _receive(self) -> Any:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # blocks without the GIL
        if not line:
            raise BrokenPipeError(f"the Kiwi process ended (exit status {self.proc.poll()})")
        reply = json.loads(line)
        if "error" in reply:
            raise KiwiProcessError(reply["error"])
        return reply["ok"]

    def request(self, message: dict[str, Any]) -> Any:
        if not self.ready:
            self._receive()  # the child's answer to the dictionary: built and warmed
            self.ready = True
        self._send(message)
        return self._receive()

    def close(self) -> None:
        _close(self.proc)


def _close(proc: subprocess.Popen[str]) -> None:
    """Close the child's stdin (it leaves on end of input); kill it if it lingers."""
    if proc.poll() is not None:
        return
    try:
        if proc.stdin is not None:
            proc.stdin.close()
        proc.wait(_EXIT_GRACE_S)
    except (OSError, subprocess.TimeoutExpired):
        proc.kill()
        proc.wait()


class KiwiProcess:
    """:class:`~callguard.text.analyzer.Analyzer` whose Kiwi lives in a child process.

    Build it with :func:`kiwi_process`. Thread-safe: requests from several threads are
    served one at a time (Kiwi itself is not guaranteed to be thread-safe). The child stops
    when this object is garbage-collected or :meth:`close` is called, and at interpreter exit.
    """

    def __init__(self, dictionary: Dictionary = Dictionary()) -> None:
        self.dictionary = dictionary
        self._lock = threading.Lock()
        self._child: _Child | None = None
        self._finalizer: weakref.finalize | None = None

    @property
    def pid(self) -> int | None:
        """The child's process id (None while none is running)."""
        return self._child.proc.pid if self._child is not None else None

    def _started(self) -> _Child:
        """The running child, started now if there is none. Call with the lock held."""
        if self._child is None:
            self._child = _Child(self.dictionary)
            if self._finalizer is not None:
                self._finalizer.detach()
            self._finalizer = weakref.finalize(self, _close, self._child.proc)
        return self._child

    def _request(self, message: dict[str, Any]) -> Any:
        with self._lock:
            for attempt in (1, 2):
                try:
                    return self._started().request(message)
                except (OSError, ValueError) as exc:  # no start, broken pipe, EOF, garbled
                    if self._child is not None:
                        self._child.close()
                        self._child = None
                    if attempt == 2:
                        raise KiwiProcessError(f"the Kiwi process failed twice: {exc}") \
                            from exc
                    log.warning("the Kiwi process failed (%s); starting a new one", exc)
            raise AssertionError("unreachable")

    def wait_ready(self) -> None:
        """Block (without the GIL) until the child has built and warmed its Kiwi."""
        self._request({"ping": True})

    def analyze(self, text: str) -> tuple[Morph, ...]:
        return _morphs(self._request({"analyze": text}))

    def analyze_many(self, texts: Sequence[str]) -> list[tuple[Morph, ...]]:
        if not texts:
            return []
        return [_morphs(rows) for rows in self._request({"analyze_many": list(texts)})]

    def with_dictionary(self, dictionary: Dictionary) -> KiwiProcess:
        if dictionary == self.dictionary:
            return self
        return kiwi_process(dictionary)

    def close(self) -> None:
        """Stop the child now (a later request starts a new one)."""
        with self._lock:
            if self._child is not None:
                self._child.close()
                self._child = None


def kiwi_process(dictionary: Dictionary | None = None) -> KiwiProcess:
    """The shared out-of-process analyser for ``dictionary`` (default: none added); its child
    starts at the first request. ``kiwi_process()`` and ``kiwi_process(Dictionary())`` are
    the same instance."""
    return _process_for(dictionary if dictionary is not None else Dictionary())


# Each child holds a Kiwi of ~270 MB: keep the rules in force and one edited dictionary.
@functools.lru_cache(maxsize=2)
def _process_for(dictionary: Dictionary) -> KiwiProcess:
    return KiwiProcess(dictionary)


# --- the child ----------------------------------------------------------------------------

def serve(requests: IO[str], replies: IO[str]) -> int:
    """The child's loop: the first line names the dictionary, each later line is one
    request; one reply line each. Returns at end of input."""
    from callguard.text.analyzer import KiwiAnalyzer

    def reply(message: dict[str, Any]) -> None:
        replies.write(json.dumps(message, ensure_ascii=False) + "\n")
        replies.flush()

    first = requests.readline()
    if not first:
        return 0
    try:
        kiwi = KiwiAnalyzer(_dictionary_from_json(json.loads(first)["dictionary"]))
        kiwi.analyze("가")  # Kiwi finishes building on its first analysis: do it now
    except Exception as exc:
        reply({"error": f"could not build Kiwi: {exc}"})
        return 1
    reply({"ok": None})
    for line in requests:
        try:
            request = json.loads(line)
            if "analyze" in request:
                result: Any = [[m.form, m.tag, m.start, m.end]
                               for m in kiwi.analyze(request["analyze"])]
            elif "analyze_many" in request:
                result = [[[m.form, m.tag, m.start, m.end] for m in morphs]
                          for morphs in kiwi.analyze_many(request["analyze_many"])]
            else:
                result = None  # ping
        except Exception as exc:  # one bad request must not end the child
            reply({"error": f"{type(exc).__name__}: {exc}"})
            continue
        reply({"ok": result})
    return 0


def main() -> int:
    # Ctrl-C in the terminal reaches the whole process group: the parent decides when to
    # stop, and the child leaves when its stdin closes (also if the parent is killed).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The protocol owns the original stdout; anything a library prints goes to stderr.
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    requests = open(sys.stdin.fileno(), encoding="utf-8", closefd=False)  # noqa: SIM115
    return serve(requests, replies)


if __name__ == "__main__":
    sys.exit(main())
