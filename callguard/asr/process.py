"""The recogniser in a child process, so that a native crash of it never takes the call.

CTranslate2 is C++: a segfault, an abort or the kernel's OOM killer inside it ends the
whole process, and with the recogniser in the agent's own process that is the call, its
recording and the line. Here the model lives in a child (``python -m callguard.asr.process``)
and the agent holds a :class:`ChildTranscriber`, a :class:`~callguard.asr.transcript.
Transcriber` like any other: the recognition worker's thread stays its single owner, sends
one request per utterance and waits on the pipe (a blocking ``poll``/``read``, which
releases the GIL). The hallucination guard and the rules matcher stay in the agent.

**Why a plain subprocess, not multiprocessing.** As for Kiwi (``callguard.text.kiwiproc``):
a fresh interpreter that imports only what the recogniser needs; no fork of a threaded
process (the agent has RTP, UI and event-loop threads: fork would copy their locks); no
pickling of the factory (the worker's factories are closures); nothing that depends on how
the parent was started (``spawn`` re-imports ``__main__``, which for the ``callguard``
console script, the GUI or pytest does more than needed); and the pipes, the framing and
the child's life are ours to see and to kill.

**Protocol.** Binary frames both ways: an 8-byte header (``<II``: JSON length, payload
length), a UTF-8 JSON object, then the payload. The first frame names what to build (a
*spec*: :func:`whisper_spec`, or :func:`tone_spec` for tests); the child loads it (and
warms the model up on a second of silence) and answers ``{"ok": {"name", "load_s",
"pid"}}`` (or ``{"error": ...}``). Each ``transcribe`` request carries the audio as raw
little-endian float32 samples at 16 kHz (a 15 s utterance is 960 kB, copied in about a
millisecond); the reply holds the segments and scores.

**Failures.** If the child dies (or stops answering within a deadline that grows with the
utterance) while an utterance is being recognised, that ``transcribe`` raises
:class:`RecogniserCrashed` (the worker turns it into a ``failed`` result, and the call
goes on), the child is reaped and a new one is started at once, loading while the call
goes on; the next utterance is recognised by it. Failures in a row back off
(``backoff_s``); after ``max_failures`` in a row the recogniser is *unavailable*: every
request fails at once with :class:`RecogniserUnavailable` (never waiting on a child), and
one new child is tried every ``retry_unavailable_s``. A success resets the count.

**Health.** Between utterances the worker's thread calls :meth:`ChildTranscriber.poll_idle`
(about twice a second): a child that died while idle is noticed then (not only at the next
utterance), a restarted child's readiness is read, and a retry that is due is started.
:attr:`ChildTranscriber.health` says whether recognition is up — ``(True, None)`` — or down,
with why (``(False, "the recogniser process ended (killed by SIGKILL); restarting")``);
``on_health`` is called on every change (on the owner thread), so the agent can say so
plainly and keep it with the call.

**Test hooks.** A request may ask the child to kill itself with a signal (SIGSEGV, SIGABRT,
...) in the middle of an utterance, as a native crash would. The child honours it only when
``CALLGUARD_ASR_TEST_HOOKS=1`` is in its environment (only tests set it); otherwise the
request fails as an error and the child goes on.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import select
import signal
import struct
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from callguard.asr.transcript import ASR_RATE, Float32Array, SegmentInfo, Transcript
from callguard.errors import ResourceError

log = logging.getLogger(__name__)

#: Set to ``1`` in the child's environment to let requests crash it (tests only).
TEST_HOOKS_ENV = "CALLGUARD_ASR_TEST_HOOKS"

_HEAD = struct.Struct("<II")
#: Seconds to wait for a child to leave after its stdin is closed, before it is killed.
_EXIT_GRACE_S = 2.0


class RecogniserCrashed(ResourceError, RuntimeError):
    """The recogniser process died (or hung) while recognising this utterance."""


class RecogniserUnavailable(ResourceError, RuntimeError):
    """The recogniser process failed too often in a row; requests fail at once until the
    next retry."""


class RecogniserError(ResourceError, RuntimeError):
    """The recogniser process is alive but could not recognise this utterance."""


class ChildFailed(ResourceError):
    """The child ended, closed its pipe, or missed its deadline."""


class ChildHung(ChildFailed):
    """The child missed its deadline (it is still running)."""


# --- specs: what the child builds -----------------------------------------------------------

def whisper_spec(model: str | Path, *, compute_type: str = "int8",
                 cpu_threads: int = 2) -> dict[str, Any]:
    """A :class:`~callguard.asr.whisper.WhisperTranscriber` on ``model`` (a folder or a
    cached size name, resolved by the caller)."""
    return {"kind": "whisper", "model": str(model), "compute_type": compute_type,
            "cpu_threads": cpu_threads}


def tone_spec(script: Mapping[float, str], *, delay_s: float = 0.0) -> dict[str, Any]:
    """A :class:`~callguard.asr.fake.ToneTranscriber` (tests of the process machinery)."""
    return {"kind": "tones", "script": [[hz, text] for hz, text in script.items()],
            "delay_s": delay_s}


def _build(spec: Mapping[str, Any]):
    kind = spec.get("kind")
    if kind == "whisper":
        from callguard.asr.whisper import WhisperTranscriber

        return WhisperTranscriber(spec["model"], compute_type=spec["compute_type"],
                                  cpu_threads=int(spec["cpu_threads"]))
    if kind == "tones":
        from callguard.asr.fake import ToneTranscriber

        return ToneTranscriber({float(hz): text for hz, text in spec["script"]},
                               delay_s=float(spec.get("delay_s", 0.0)))
    raise ValueError(f"unknown recogniser kind {kind!r}")


# --- framing ----------------------------------------------------------------------------------

def _frame(meta: Mapping[str, Any], payload: bytes = b"") -> bytes:
    body = json.dumps(meta, ensure_ascii=False).encode("utf-8")
    return _HEAD.pack(len(body), len(payload)) + body + payload


def _read_frame(stream: IO[bytes]) -> tuple[dict[str, Any], bytes] | None:
    """One frame from a blocking binary stream; None at end of input."""
    head = stream.read(_HEAD.size)
    if len(head) < _HEAD.size:
        return None
    n_meta, n_payload = _HEAD.unpack(head)
    meta = stream.read(n_meta)
    payload = stream.read(n_payload) if n_payload else b""
    if len(meta) < n_meta or len(payload) < n_payload:
        return None
    return json.loads(meta), payload


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


# --- the parent's side ------------------------------------------------------------------------

def _child_env(test_hooks: bool) -> dict[str, str]:
    env = dict(os.environ)
    # From a source checkout, the child runs the same callguard as this process (an
    # installed one is found by the child as by us; its site-packages is not put first).
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file():
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH"))
                                            if p)
    if test_hooks:
        env[TEST_HOOKS_ENV] = "1"
    else:
        env.pop(TEST_HOOKS_ENV, None)
    return env


class _Child:
    """One running child: its process and pipes. Used by one thread at a time."""

    def __init__(self, spec: Mapping[str, Any], *, test_hooks: bool) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "callguard.asr.process"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None, bufsize=0,
            env=_child_env(test_hooks))
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in = self.proc.stdin.fileno()
        self._out = self.proc.stdout.fileno()
        self._poll = hasattr(select, "poll")  # not on Windows: plain blocking I/O there
        if self._poll:
            os.set_blocking(self._in, False)  # a stuck child must not stall our writes
        self.info: dict[str, Any] | None = None
        self.started = time.monotonic()
        self._write(_frame({"spec": dict(spec)}), None)

    @property
    def pid(self) -> int:
        return self.proc.pid

    # Blocking I/O with a deadline: poll() and os.read/os.write release the GIL.
    def _wait(self, fd: int, event: int, deadline: float | None) -> None:
        if not self._poll:
            return
        p = select.poll()
        p.register(fd, event)
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise ChildHung("the recogniser process did not answer in time")
            if p.poll(None if left is None else max(1, int(left * 1000))):
                return

    def _write(self, data: bytes, deadline: float | None) -> None:
        view = memoryview(data)
        try:
            while view:
                self._wait(self._in, select.POLLOUT if self._poll else 0, deadline)
                try:
                    n = os.write(self._in, view)
                except BlockingIOError:
                    continue
                view = view[n:]
        except OSError as exc:  # EPIPE: the child is gone
            raise ChildFailed(f"the recogniser process is gone ({exc})") from exc

    def _read(self, n: int, deadline: float | None) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            # POLLIN; POLLHUP comes with end of file when the child is gone
            self._wait(self._out, select.POLLIN if self._poll else 0, deadline)
            try:
                chunk = os.read(self._out, n - len(buf))
            except OSError as exc:
                raise ChildFailed(f"the recogniser process is gone ({exc})") from exc
            if not chunk:
                raise ChildFailed("the recogniser process ended")
            buf += chunk
        return bytes(buf)

    def receive(self, deadline: float | None) -> Any:
        n_meta, n_payload = _HEAD.unpack(self._read(_HEAD.size, deadline))
        reply = json.loads(self._read(n_meta, deadline))
        if n_payload:
            self._read(n_payload, deadline)
        if "error" in reply:
            raise RecogniserError(reply["error"])
        return reply["ok"]

    def readable(self) -> bool:
        """True when the child has written something (or closed its pipe): a read will not
        block for long."""
        if not self._poll:
            return True
        p = select.poll()
        p.register(self._out, select.POLLIN)
        return bool(p.poll(0))

    def wait_ready(self, deadline: float | None) -> dict[str, Any]:
        if self.info is None:
            self.info = self.receive(deadline)
        return self.info

    def request(self, meta: Mapping[str, Any], payload: bytes,
                deadline: float | None) -> Any:
        self._write(_frame(meta, payload), deadline)
        return self.receive(deadline)

    def exit_status(self, wait_s: float = 2.0) -> str:
        """How the child ended, once it has (killed if it is still there after ``wait_s``)."""
        try:
            return _describe_exit(self.proc.wait(wait_s))
        except subprocess.TimeoutExpired:
            _kill(self.proc)
            return "not answering; killed"

    def close(self) -> None:
        _close(self.proc)


def _close(proc: subprocess.Popen[bytes]) -> None:
    """Close the child's stdin (it leaves on end of input); kill it if it lingers."""
    try:
        if proc.poll() is None:
            if proc.stdin is not None:
                proc.stdin.close()
            proc.wait(_EXIT_GRACE_S)
    except (OSError, subprocess.TimeoutExpired):
        pass
    _kill(proc)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()


class ChildTranscriber:
    """A :class:`~callguard.asr.transcript.Transcriber` whose model lives in a child process.

    Built (on the recognition worker's thread) by the factory :func:`child_factory`
    returns; the constructor starts the child and waits until it has loaded the model,
    raising :class:`~callguard.asr.bundled.ModelError` if it cannot. ``transcribe`` raises
    :class:`RecogniserCrashed`, :class:`RecogniserUnavailable` or :class:`RecogniserError`
    for an utterance that could not be recognised (see the module's docstring); the child is
    restarted behind the scenes. :meth:`close` stops the child (also at garbage collection).

    ``answer_timeout_s`` is ``(base, per second of audio)``: a child that has not answered
    an utterance within ``base + per_s * duration`` is taken as hung, killed and restarted.
    """

    def __init__(self, spec: Mapping[str, Any], *, max_failures: int = 3,
                 backoff_s: Sequence[float] = (0.0, 1.0, 4.0),
                 retry_unavailable_s: float = 30.0, load_timeout_s: float = 120.0,
                 answer_timeout_s: tuple[float, float] = (30.0, 4.0),
                 test_hooks: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        from callguard.asr.bundled import ModelError

        self.spec = dict(spec)
        self.max_failures = max_failures
        self.backoff_s = tuple(backoff_s) or (0.0,)
        self.retry_unavailable_s = retry_unavailable_s
        self.load_timeout_s = load_timeout_s
        self.answer_timeout_s = answer_timeout_s
        self.test_hooks = test_hooks
        self._clock = clock
        self._lock = threading.Lock()
        self.failures = 0  # in a row
        self.crashes = 0  # in all
        self.restarts = 0
        self.last_failure: str | None = None
        self._not_before = 0.0
        self._crash_next: str | None = None
        self._child: _Child | None = None
        self._finalizer: weakref.finalize | None = None
        self._health: tuple[bool, str | None] = (True, None)
        #: Called with ``(ok, problem)`` whenever :attr:`health` changes (owner thread).
        self.on_health: Callable[[bool, str | None], None] | None = None
        started = time.perf_counter()
        try:
            child = self._spawn()
            info = child.wait_ready(time.monotonic() + load_timeout_s)
        except (OSError, ChildFailed, RecogniserError) as exc:
            self.close()
            raise ModelError(f"the recogniser process could not load the model: {exc}") \
                from exc
        self.name: str = info["name"]
        self.load_s = time.perf_counter() - started  # including the child's start-up
        self.model_load_s: float = info["load_s"]  # the model alone, in the child

    # --- state --------------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The running child's process id (None between a crash and its restart)."""
        child = self._child
        return child.pid if child is not None else None

    @property
    def available(self) -> bool:
        """False once ``max_failures`` requests in a row failed (until one succeeds)."""
        return self.failures < self.max_failures

    @property
    def health(self) -> tuple[bool, str | None]:
        """``(True, None)`` while a child is loaded and answering; ``(False, why)`` from a
        failure (crash, hang, a child that cannot start or load) until a child is ready
        again."""
        return self._health

    def _set_health(self, ok: bool, problem: str | None = None) -> None:
        if (ok, problem) == self._health:
            return
        self._health = (ok, problem)
        if ok:
            log.warning("the recogniser process is ready again: recognition is available")
        if self.on_health is not None:
            try:
                self.on_health(ok, problem)
            except Exception:
                log.exception("recogniser health listener failed")

    def poll_idle(self) -> None:
        """Housekeeping between utterances, on the owner thread (never blocks for long):
        notice a child that died while idle, read a restarted child's ready answer once it
        is there, start a retry that is due."""
        with self._lock:
            child = self._child
            if child is None:
                if self._clock() >= self._not_before:
                    self._restart()
                return
            if child.proc.poll() is not None and child.info is not None:
                self._failed(child, ChildFailed("the recogniser process ended while idle"))
                return
            if child.info is None:
                if child.readable():
                    try:
                        child.wait_ready(time.monotonic() + 1.0)
                    except (ChildFailed, RecogniserError) as exc:
                        self._failed(child, exc)
                        return
                    self._set_health(True)
                elif time.monotonic() - child.started > self.load_timeout_s:
                    self._failed(child, ChildHung("the recogniser process did not load in "
                                                  f"{self.load_timeout_s:g} s"))

    def rss_bytes(self) -> int | None:
        """The child's resident memory now (None without a child, or off Linux)."""
        pid = self.pid
        if pid is None:
            return None
        try:
            statm = Path(f"/proc/{pid}/statm").read_text()
            return int(statm.split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            return None

    def crash_next(self, sig: str = "SIGSEGV") -> None:
        """Test hook: the child kills itself with ``sig`` in the middle of the next
        utterance (honoured only if this transcriber was built with ``test_hooks``)."""
        self._crash_next = sig

    # --- the child's life -----------------------------------------------------------------------

    def _spawn(self) -> _Child:
        child = _Child(self.spec, test_hooks=self.test_hooks)
        self._child = child
        if self._finalizer is not None:
            self._finalizer.detach()
        self._finalizer = weakref.finalize(self, _close, child.proc)
        return child

    def _failed(self, child: _Child, exc: Exception) -> str:
        """Reap ``child`` after a failure; count it; start the next one if it is due now."""
        if isinstance(exc, ChildHung):
            _kill(child.proc)
        status = child.exit_status()
        _kill(child.proc)  # reaped; its pipes closed
        if self._child is child:
            self._child = None
        self.failures += 1
        self.crashes += 1
        self.last_failure = f"{exc} ({status})"
        now = self._clock()
        if self.failures >= self.max_failures:
            self._not_before = now + self.retry_unavailable_s
            self._set_health(False, f"{self.last_failure}; failed {self.failures} times in a "
                             f"row, next try in {self.retry_unavailable_s:g} s")
            log.error("the recogniser process failed %d times in a row (%s); recognition "
                      "is unavailable, next try in %.0f s", self.failures, self.last_failure,
                      self.retry_unavailable_s)
        else:
            delay = self.backoff_s[min(self.failures - 1, len(self.backoff_s) - 1)]
            self._not_before = now + delay
            self._set_health(False, f"{self.last_failure}; restarting")
            log.warning("the recogniser process failed (%s); restarting it%s",
                        self.last_failure, f" in {delay:g} s" if delay else "")
            if delay <= 0:
                self._restart()
        return self.last_failure

    def _restart(self) -> None:
        try:
            self._spawn()
            self.restarts += 1
        except OSError as exc:  # cannot even start python: try again a little later
            log.error("could not start the recogniser process: %s", exc)
            self._child = None
            self._not_before = self._clock() + max(self.backoff_s[-1], 1.0)
            self._set_health(False, f"the recogniser process cannot be started ({exc})")

    # --- the Transcriber interface --------------------------------------------------------------

    def transcribe(self, audio: Float32Array) -> Transcript:
        """``audio``: 16 kHz mono float32, -1..1. Blocks (without the GIL) until the child
        answers, dies or misses its deadline."""
        samples = np.ascontiguousarray(audio, dtype="<f4")
        duration = samples.size / ASR_RATE
        with self._lock:
            if self._child is None:
                if self._clock() < self._not_before:
                    state = "unavailable" if not self.available else "restarting"
                    raise RecogniserUnavailable(
                        f"the recogniser process is {state} ({self.last_failure})")
                self._restart()
                if self._child is None:
                    raise RecogniserUnavailable("the recogniser process cannot be started")
            child = self._child
            meta: dict[str, Any] = {"op": "transcribe", "rate": ASR_RATE, "dtype": "<f4"}
            if self._crash_next is not None:
                meta["crash"], self._crash_next = self._crash_next, None
            try:
                if child.info is None:  # a restarted child: still loading?
                    child.wait_ready(time.monotonic() + self.load_timeout_s)
                    self._set_health(True)
                base, per_s = self.answer_timeout_s
                reply = child.request(meta, samples.tobytes(),
                                      time.monotonic() + base + per_s * duration)
            except ChildFailed as exc:
                raise RecogniserCrashed(self._failed(child, exc)) from exc
            except RecogniserError:
                if child.info is None:  # it could not load the model this time
                    self._failed(child, RuntimeError("the model did not load"))
                raise
            self.failures = 0
            self._set_health(True)
        segments = tuple(SegmentInfo(text=t, avg_logprob=lp, no_speech_prob=ns,
                                     compression_ratio=cr)
                         for t, lp, ns, cr in reply["segments"])
        return Transcript(segments=segments, duration_s=reply["duration_s"],
                          decode_s=reply["decode_s"])

    def close(self) -> None:
        """Stop the child now (a later request starts a new one)."""
        with self._lock:
            if self._child is not None:
                self._child.close()
                self._child = None


def child_factory(spec: Mapping[str, Any], **options: Any) -> Callable[[], ChildTranscriber]:
    """The out-of-process choice for :class:`~callguard.asr.worker.RecognitionWorker`: a
    factory that starts a child for ``spec`` (``options``: :class:`ChildTranscriber`'s)."""
    return functools.partial(ChildTranscriber, spec, **options)


# --- the child ----------------------------------------------------------------------------------

def serve(requests: IO[bytes], replies: IO[bytes], *, hooks: bool = False) -> int:
    """The child's loop: the first frame is the spec, each later frame one request; one
    reply frame each. Returns at end of input."""
    from callguard.asr import memory

    def reply(message: Mapping[str, Any]) -> None:
        replies.write(_frame(message))
        replies.flush()

    first = _read_frame(requests)
    if first is None:
        return 0
    memory.limit_arenas()  # before the model allocates: see callguard.asr.memory
    started = time.perf_counter()
    spec = first[0]["spec"]
    try:
        transcriber = _build(spec)
        if spec.get("kind") == "whisper":
            # CTranslate2's first call is ~50 ms slower than the next: pay it before the
            # first utterance (a second of silence, ~0.2 s).
            transcriber.transcribe(np.zeros(ASR_RATE, np.float32))
            memory.trim()
    except Exception as exc:
        reply({"error": f"{type(exc).__name__}: {exc}"})
        return 1
    reply({"ok": {"name": getattr(transcriber, "name", "?"),
                  "load_s": time.perf_counter() - started, "pid": os.getpid()}})
    while (frame := _read_frame(requests)) is not None:
        meta, payload = frame
        try:
            if meta.get("op") != "transcribe":
                raise ValueError(f"unknown request {meta.get('op')!r}")
            audio = np.frombuffer(payload, dtype=meta.get("dtype", "<f4")).astype(np.float32)
            crash = meta.get("crash")
            if crash is not None:
                if not hooks:
                    raise PermissionError(f"test hooks are off ({TEST_HOOKS_ENV} is not set)")
                with contextlib.suppress(ImportError, OSError, ValueError):
                    import resource  # no core file for a crash on purpose

                    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
                os.kill(os.getpid(), signal.Signals[crash])
                time.sleep(5)  # a caught or ignored signal: still die mid-request
                os._exit(70)
            transcript = transcriber.transcribe(audio)
        except Exception as exc:  # one bad request must not end the child
            reply({"error": f"{type(exc).__name__}: {exc}"})
            continue
        reply({"ok": {"segments": [[s.text, s.avg_logprob, s.no_speech_prob,
                                    s.compression_ratio] for s in transcript.segments],
                      "duration_s": transcript.duration_s, "decode_s": transcript.decode_s}})
        memory.trim()
    return 0


def main() -> int:
    # Ctrl-C in the terminal reaches the whole process group: the parent decides when to
    # stop, and the child leaves when its stdin closes (also if the parent is killed).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    hooks = os.environ.get(TEST_HOOKS_ENV) == "1"
    # The protocol owns the original stdout; anything a library prints goes to stderr.
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    requests = open(sys.stdin.fileno(), "rb", closefd=False)  # noqa: SIM115
    return serve(requests, replies, hooks=hooks)


if __name__ == "__main__":
    sys.exit(main())
