"""The call engine: one asyncio loop in its own thread owning the line's calls, the
recognition worker, the rules and the store. ``callguard run`` and the GUI drive it through
thread-safe methods; events come out through ``on_event`` (called on the engine thread —
a GUI re-posts them to its own thread).

One call at a time: a second inbound call while one is active gets 486 Busy Here.

Rules at run time: the engine polls the rules file (size, mtime, inode every
``RULES_POLL_S``, off the call path; the content hash decides) and reloads it when it
changes; a refused file leaves the rules in force and says why (a WARNING and a ``rules``
event). The rules put in force are noted in the store (``Store.note_rules_in_force``), so a
rules file that is broken at start still starts the line, on the last good rules, loudly
(:attr:`Engine.rules_fallback`). Calls keep the rules they began with.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from callguard.asr.transcript import Transcriber
from callguard.asr.worker import RecognitionWorker
from callguard.audio.devices import AudioDevice, NullDevice
from callguard.central.link import CentralLink
from callguard.clock import SYSTEM, RealClock, TimeSource
from callguard.engine.prompts import PromptLibrary
from callguard.engine.runner import CallRunner, LiveCallControl
from callguard.rules.active import ActiveRules, ReloadResult
from callguard.rules.loader import parse_rules
from callguard.rules.model import RuleSet
from callguard.rules.problems import RulesError
from callguard.session.call import CallSession, SessionConfig
from callguard.store import Store, StoreError
from callguard.store.spool import SpooledStore
from callguard.store.store import secure_store_files
from callguard.telephony.base import Call, CallState, Line, LineStatus
from callguard.text.analyzer import Analyzer
from callguard.text.kiwiproc import kiwi_process
from callguard.vocabulary import (
    ActionKind,
    AlertRaised,
    Cause,
    EndReason,
    EngineEventKind,
    Source,
    VerdictIssued,
)

log = logging.getLogger(__name__)

RULES_POLL_S = 2.0  # how often the rules file is looked at for changes


@dataclass(frozen=True)
class EngineEvent:
    """``kind``: status | ringing | dialing | answered | ended | declined | timeline |
    call_status | rules | headset. ``call_id`` is the SIP Call-ID (not personal data).
    ``data``: for ``timeline`` a :data:`~callguard.vocabulary.CallEvent` (may carry
    transcript text: show it, never log it); for ``call_status`` (once a second) the
    :class:`~callguard.vocabulary.CallStatus`; for ``ended`` the reason, ``store_id``
    (None if never answered) and ``protected``; for ``rules`` the :class:`ReloadResult` of a
    push; for ``headset`` ``{"ok": False, "error": str}`` when the sound card could not be
    opened for a call or failed during it; for ``store`` ``{"ok": bool, "problem": str |
    None, "kind": str | None}`` when the call store fails (disk full, read-only, file
    deleted, damaged: calls go on, spooled; ``kind`` is the spool's word for it, e.g.
    ``full``) and when it is written again; for ``recognition`` ``{"ok": bool,
    "problem": str | None}`` when the recogniser goes down (its process crashed and is
    restarting, cannot start or load, or failed too often: calls go on, recorded, with their
    duration limits, but unheard) and when it is back."""

    kind: EngineEventKind
    call_id: str | None = None
    data: Any = None
    at: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        # A kind given as its text is taken as the enum, and an unknown one is refused here,
        # not silently ignored by every listener.
        object.__setattr__(self, "kind", EngineEventKind(self.kind))


class Engine:
    def __init__(self, *, line: Line, rules_path: Path, store_path: Path | None,
                 transcriber_factory: Callable[[], Transcriber],
                 device_factory: Callable[[Call], AudioDevice] = lambda call: NullDevice(),
                 session_config: SessionConfig | None = None, auto_answer: bool = False,
                 on_event: Callable[[EngineEvent], None] | None = None,
                 counselor: str = "", analyzer: Analyzer | None = None,
                 clock: TimeSource = SYSTEM, spool_dir: Path | None = None,
                 central: CentralLink | None = None) -> None:
        """``clock``: the time calls run on (:data:`SYSTEM`, or a test's
        :class:`~callguard.clock.StepClock`, which must also be the line's). ``central``:
        the desk's link to the central server (``[central]``), started once the store is
        open; it delivers ended calls and alerts, follows the published rules (pushing
        them into force here) and knows repeat callers before they are answered."""
        self.line = line
        self.clock = clock
        # Kiwi for the rules. By default it runs in a child process: building one holds
        # the GIL for over a second, which in this process would stall the RTP threads,
        # the call loop and the GUI (callguard.text.kiwiproc).
        self.analyzer: Analyzer = analyzer if analyzer is not None else kiwi_process()
        self.rules_path = rules_path
        self.store_path = store_path
        self.spool_dir = spool_dir  # None: callguard.store.spool.default_spool_dir
        self.spool: SpooledStore | None = None  # what calls write to (store faults spooled)
        self.store_health: dict[str, Any] = {"ok": True, "problem": None, "kind": None}
        self.recognition_health: dict[str, Any] = {"ok": True, "problem": None}
        self.transcriber_factory = transcriber_factory
        self.device_factory = device_factory
        self.session_config = session_config or SessionConfig()
        self.auto_answer = auto_answer
        self.on_event = on_event
        self.counselor = counselor  # stored with each call: who took it
        self.available = True  # False: the counselor is resting; inbound calls get 486
        self.loop: asyncio.AbstractEventLoop | None = None
        self.store: Store | None = None
        self.worker: RecognitionWorker | None = None
        self.rules: ActiveRules | None = None
        self.prompts = PromptLibrary()
        self.runners: dict[str, CallRunner] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.finished: list[CallRunner] = []
        self.recovered: list[int] = []
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None
        # Set when the rules file was refused at start and the engine runs on the last good
        # rules from the store; cleared when a good file goes into force.
        self.rules_fallback: ReloadResult | None = None
        self.rules_poll_s = RULES_POLL_S
        self._rules_seen: tuple[tuple[int, int, int] | None, str | None] = (None, None)
        self._rules_lock: asyncio.Lock | None = None
        self._watcher: asyncio.Task[None] | None = None
        self.central = central

    # --- lifecycle (any thread) -------------------------------------------------------

    def start(self, timeout: float = 120.0) -> None:
        """Start the engine thread and wait until the store, model and line are up."""
        self._thread = threading.Thread(target=self._run, name="engine", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the engine did not start in time")
        if self._error is not None:
            raise RuntimeError(f"the engine failed to start: {self._error}") from self._error

    def stop(self, timeout: float = 30.0) -> None:
        if self.loop is None or self._stop is None:
            return
        # The loop is closed once the engine has ended (it failed to start): nothing to stop.
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout)

    def submit(self, coro: Any) -> concurrent.futures.Future[Any]:
        """Run a coroutine on the engine loop; returns a concurrent future (never block a
        GUI thread on it)."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def dial(self, number: str) -> concurrent.futures.Future[Call]:
        return self.submit(self._dial(number))

    def protect(self, call_id: str | None = None) -> concurrent.futures.Future[None]:
        return self.submit(self._protect(call_id))

    def hangup(self, call_id: str | None = None) -> concurrent.futures.Future[None]:
        return self.submit(self._hangup(call_id))

    def answer(self, call_id: str) -> concurrent.futures.Future[None]:
        return self.submit(self._answer(call_id))

    def decline(self, call_id: str) -> concurrent.futures.Future[None]:
        return self.submit(self._decline(call_id))

    def set_muted(self, muted: bool, call_id: str | None = None) -> concurrent.futures.Future[None]:
        return self.submit(self._set_muted(muted, call_id))

    def set_available(self, available: bool) -> concurrent.futures.Future[None]:
        """While unavailable (resting after an incident), inbound calls are declined with
        486 so the call distributor routes them to someone else."""
        return self.submit(self._set_available(available))

    def push_rules(self, path: Path | None = None) -> concurrent.futures.Future[Any]:
        """Load the rules file (default: the engine's) for calls from now on; a bad file is
        refused and the rules in force stay. Resolves to the ReloadResult."""
        return self.submit(self._push_rules(path))

    # --- engine thread ----------------------------------------------------------------

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        try:
            self.loop.run_until_complete(self._main())
        except BaseException as exc:  # surfaced to start()
            self._error = exc
            log.exception("engine stopped by an error")
        finally:
            self._ready.set()
            self.loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        self._ringing: dict[str, Call] = {}
        self._dialing: dict[str, Call] = {}
        self._repeat: dict[str, int] = {}  # call id → the caller's recent flagged calls
        if self.store_path is not None:
            # A store that fails (full, read-only, deleted, damaged) never stops the agent:
            # calls are spooled and written when it is back (callguard.store.spool).
            self.spool = SpooledStore(self.store_path, self.spool_dir,
                                      on_health=self._store_health, now=self.clock.time)
            await self.spool.open()
            self.store = self.spool.store
            for change in await asyncio.to_thread(secure_store_files, self.store_path):
                log.warning("call store permissions: %s", change)
            self.recovered = list(self.spool.recovered)
            self._store_watch = asyncio.get_running_loop().create_task(self._watch_store())
            if self.recovered:
                log.warning("%d call(s) interrupted by a crash were recovered",
                            len(self.recovered))
        if self.central is not None and self.store_path is not None:
            self._start_central()
        self.worker = RecognitionWorker(self.transcriber_factory)
        loop = asyncio.get_running_loop()

        def health(ok: bool, problem: str | None) -> None:
            if not loop.is_closed():
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(self._recognition_health, ok, problem)
        self.worker.on_health = health
        await self.worker.start()
        self._rules_lock = asyncio.Lock()
        self._rules_seen = await asyncio.to_thread(_file_state, self.rules_path)
        self.rules = await self._initial_rules()
        await asyncio.to_thread(self.prompts.preload, self.rules.ruleset.prompts.values())
        if self.rules_fallback is None:
            await self._note_rules(self.rules.ruleset)

        def hop(fn: Callable[..., None]) -> Callable[..., None]:
            def post(*a: Any) -> None:
                if loop.is_closed():  # the line's last word after the engine stopped
                    return
                with contextlib.suppress(RuntimeError):  # closed meanwhile
                    loop.call_soon_threadsafe(fn, *a)
            return post

        self.line.set_handlers(on_incoming=hop(self._incoming), on_answered=hop(self._answered),
                               on_ended=hop(self._ended), on_status=hop(self._status))
        self.line.start()
        self._watcher = loop.create_task(self._watch_rules())
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self._shutdown()

    async def _shutdown(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
        for runner in list(self.runners.values()):
            # The agent is being stopped (SIGTERM, SIGHUP, quit): the BYE is ours, and the
            # store says so rather than blaming the counselor or the caller. A hangup
            # already decided (final notice) keeps its reason.
            if runner.session.end_reason is None:
                runner.session.end_reason = EndReason.AGENT_STOPPED
            runner.call.hangup()
        if self.tasks:
            await asyncio.wait(list(self.tasks.values()), timeout=10)
        self.line.stop()
        if self.central is not None:
            # The last call's outbox item is delivered now if the server is there; if not,
            # it waits in the store for the next start.
            self.central.kick()
            await asyncio.to_thread(self.central.stop, 5.0)
        if self.worker is not None:
            await self.worker.stop()
        if self.spool is not None:
            self._store_watch.cancel()
            await self.spool.close()  # what is still spooled stays for the next start
        elif self.store is not None:
            await self.store.close()

    async def _watch_store(self, every_s: float = 1.0) -> None:
        """Once a second (wall time, off the call path): the store file still there,
        spooled records written, and hourly between calls a quick_check."""
        assert self.spool is not None
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.spool.tick()
            except Exception:
                log.exception("store check failed")
            self.store = self.spool.store

    def _store_health(self, ok: bool, problem: str | None) -> None:
        # ``kind``: the spool's word for the fault (full, readonly, corrupt, ...), which a
        # window turns into plain words; ``problem`` is the technical sentence.
        kind = self.spool.problem_kind if self.spool is not None and not ok else None
        self.store_health = {"ok": ok, "problem": problem, "kind": kind}
        self._emit(EngineEventKind.STORE, None, dict(self.store_health))

    def _recognition_health(self, ok: bool, problem: str | None) -> None:
        """The recogniser went down or came back (engine loop): say so (a ``recognition``
        event: the counselor's window and ``run``'s status line), and keep it with every
        call in progress, once per outage and once when it is back."""
        was = self.recognition_health["ok"]
        if {"ok": ok, "problem": problem} == self.recognition_health:
            return
        self.recognition_health = {"ok": ok, "problem": problem}
        if ok != was:
            if ok:
                log.warning("recognition is available again")
            else:
                log.warning("recognition unavailable: %s; calls go on, recorded and cut "
                            "off by their limits, but not heard", problem)
            for runner in self.runners.values():
                runner.note(f"recognition: unavailable ({problem})" if not ok
                            else "recognition: available again")
        self._emit(EngineEventKind.RECOGNITION, None, dict(self.recognition_health))

    def _start_central(self) -> None:
        """Start the central link (its own thread); rules it puts in force reach this
        engine through :meth:`push_rules`, on this loop."""
        assert self.central is not None
        self.central.on_rules = lambda path: self.push_rules(path)
        loop = asyncio.get_running_loop()

        def state(st: dict[str, Any]) -> None:  # the link's thread
            if not loop.is_closed():
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(self._emit, EngineEventKind.CENTRAL, None, st)
        self.central.on_state = state

        def delivered(alert: dict[str, Any]) -> None:  # the link's thread
            if not loop.is_closed():
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(self._emit, EngineEventKind.ALERT_DELIVERED,
                                              None, alert)
        self.central.on_alert = delivered
        try:
            self.central.start()
        except Exception:  # the desk works fully offline: never a reason not to start
            log.exception("the central link did not start; calls are kept for later")

    def _emit(self, kind: EngineEventKind, call_id: str | None = None,
              data: Any = None) -> None:
        if self.central is not None and (
                kind is EngineEventKind.ENDED or isinstance(data, AlertRaised)
                or (isinstance(data, VerdictIssued) and data.cause is Cause.PROTECT)):
            self.central.kick()  # deliver now: a person may be waiting for it
        if self.on_event is not None:
            try:
                self.on_event(EngineEvent(kind, call_id, data))
            except Exception:
                log.exception("event listener failed")

    def _status(self, status: LineStatus) -> None:
        self._emit(EngineEventKind.STATUS, None, status)

    def _incoming(self, call: Call) -> None:
        if self.runners or self._ringing or self._dialing or not self.available:
            why = "busy" if self.available else "unavailable"
            log.info("inbound call while %s: declined with 486", why)
            call.decline()
            self._emit(EngineEventKind.DECLINED, call.call_id, why)
            return
        self._ringing[call.call_id] = call
        ringing: dict[str, Any] = {"remote": call.remote}
        if self.central is not None:
            # Known before the answer, from every desk's flagged calls (cached list).
            repeat = self.central.callers.lookup(call.remote)
            if repeat is not None:
                ringing["repeat"] = {"flagged": repeat.flagged, "days": repeat.days}
                self._repeat[call.call_id] = repeat.flagged
        self._emit(EngineEventKind.RINGING, call.call_id, ringing)
        if self.auto_answer:
            call.answer()

    def _answered(self, call: Call) -> None:
        self._ringing.pop(call.call_id, None)
        self._dialing.pop(call.call_id, None)
        if call.call_id in self.runners:
            return
        assert self.rules is not None and self.worker is not None
        start = getattr(call, "media_start", None)
        clock = RealClock(start, self.clock)
        control = LiveCallControl(call, self.prompts, clock)
        rules = self.rules  # the rules in force when the call began stay for the call
        store = (_PlayedPrompts(self.spool, rules.ruleset, self.prompts)
                 if self.spool is not None else None)
        session = CallSession(
            ruleset=rules.ruleset, matcher=rules.matcher, recogniser=self.worker,
            control=control, clock=clock, store=store, direction=call.direction,
            remote=call.remote, source=Source.SIP, config=self.session_config,
            counselor=self.counselor, wall_clock=self.clock,
            repeat_flagged=self._repeat.pop(call.call_id, 0),
            on_event=lambda ev, cid=call.call_id: self._emit(EngineEventKind.TIMELINE, cid,
                                                             ev))
        try:
            device, failed = self.device_factory(call), None
        except Exception as exc:  # the call goes on without the headset (see the runner)
            device, failed = NullDevice(), str(exc)
        runner = CallRunner(
            call, session, control, device, clock,
            on_status=lambda st, cid=call.call_id: self._emit(EngineEventKind.CALL_STATUS,
                                                              cid, st),
            on_headset=lambda error, cid=call.call_id: self._emit(
                EngineEventKind.HEADSET, cid, {"ok": False, "error": error}),
            pacer=self.clock.pacer())  # before "answered": a stepped clock waits for it
        if failed is not None:
            runner.headset_failed(failed)
        if not self.recognition_health["ok"]:  # kept with the call: it starts unheard
            runner.note(f"recognition: unavailable ({self.recognition_health['problem']})")
        self.runners[call.call_id] = runner
        self._emit(EngineEventKind.ANSWERED, call.call_id, {"direction": call.direction})
        if not self.recognition_health["ok"]:  # a new call's window: say it again
            self._emit(EngineEventKind.RECOGNITION, call.call_id, dict(self.recognition_health))
        task = asyncio.get_running_loop().create_task(self._run_call(runner))
        self.tasks[call.call_id] = task

    async def _run_call(self, runner: CallRunner) -> None:
        try:
            await runner.run()
        finally:
            self.runners.pop(runner.call.call_id, None)
            self.tasks.pop(runner.call.call_id, None)
            self.finished.append(runner)
            try:
                runner.device.close()
            except Exception:  # a failing sound card must not keep the call from ending
                log.exception("closing the headset failed")
            self._emit(EngineEventKind.ENDED, runner.call.call_id, {
                "reason": runner.session.end_reason,
                "store_id": (self.spool.store_id(runner.session.call_id)
                             if self.spool is not None else runner.session.call_id),
                "protected": runner.session.protected,
                "line": str(runner.call.end_reason) if runner.call.end_reason else None})

    def _ended(self, call: Call) -> None:
        self._repeat.pop(call.call_id, None)
        if (self._ringing.pop(call.call_id, None) is not None
                or self._dialing.pop(call.call_id, None) is not None):
            # Never answered: no session, no recording; say how it ended.
            self._emit(EngineEventKind.ENDED, call.call_id, {"reason": str(call.end_reason),
                                                "line": str(call.end_reason),
                                                "detail": call.end_detail, "store_id": None,
                                                "protected": False})
        # An active call's runner sees the state change on its next tick.

    async def _dial(self, number: str) -> Call:
        if self.runners or self._dialing:
            raise RuntimeError("a call is already active")
        call = self.line.dial(number)
        if call.state is CallState.DIALING:
            self._dialing[call.call_id] = call
            self._emit(EngineEventKind.DIALING, call.call_id, {"remote": call.remote})
        return call

    def _current(self, call_id: str | None) -> CallRunner | None:
        if call_id is not None:
            return self.runners.get(call_id)
        return next(iter(self.runners.values()), None)

    async def _protect(self, call_id: str | None) -> None:
        runner = self._current(call_id)
        if runner is not None:
            await runner.session.protect()

    async def _hangup(self, call_id: str | None) -> None:
        runner = self._current(call_id)
        if runner is not None:
            runner.call.hangup()
            return
        for call in list(self._ringing.values()):
            if call_id in (None, call.call_id):
                call.decline()
        for call in list(self._dialing.values()):
            if call_id in (None, call.call_id):
                call.hangup()  # CANCEL

    async def _answer(self, call_id: str) -> None:
        call = self._ringing.get(call_id)
        if call is not None and call.state is CallState.RINGING:
            call.answer()

    async def _decline(self, call_id: str) -> None:
        call = self._ringing.get(call_id)
        if call is not None and call.state is CallState.RINGING:
            call.decline()

    async def _set_available(self, available: bool) -> None:
        self.available = available

    async def _set_muted(self, muted: bool, call_id: str | None) -> None:
        runner = self._current(call_id)
        if runner is not None:
            runner.muted = muted

    async def _push_rules(self, path: Path | None, why: str = "pushed") -> Any:
        assert self.rules is not None and self._rules_lock is not None
        async with self._rules_lock:  # the watcher and a push never load at once
            # Running on the store's last good rules, "the current file" is the rules path.
            target = path if path is not None else self.rules_path
            # Loading builds a matcher (Kiwi) and decodes the prompts: seconds of CPU, so
            # off the engine loop.
            result = await asyncio.to_thread(self.rules.reload, target)
            if result.ok:
                self.rules_path = target
                self.rules_fallback = None
                state = await asyncio.to_thread(_file_state, target)
                if state[1] == result.version:  # the watcher need not load it again
                    self._rules_seen = state
                await asyncio.to_thread(self.prompts.preload,
                                        self.rules.ruleset.prompts.values())
                await self._note_rules(self.rules.ruleset)
            elif self.rules_fallback is not None:  # still on the last good rules: say so
                result = replace(result, last_good_since=self.rules_fallback.last_good_since)
                self.rules_fallback = result
        self._emit(EngineEventKind.RULES, None, result)
        if result.ok:
            log.info("rules %s: version %s", why, result.version[:12])
        else:
            log.warning("rules %s but refused; the rules in force stay: %s", why,
                        result.message)
        return result

    # --- the rules file at run time -----------------------------------------------------

    async def _initial_rules(self) -> ActiveRules:
        """The rules file's rules; if it is refused, the last good rules kept in the store
        (loudly: :attr:`rules_fallback`, a WARNING and a ``rules`` event), so a broken file
        never leaves the counselor without a line. No last good rules: the error stands."""
        try:
            return ActiveRules(self.rules_path, analyzer=self.analyzer)
        except RulesError as refused:
            last = None
            if self.store is not None:
                try:
                    last = await self.store.last_good_rules()
                except StoreError as exc:
                    log.error("the last good rules cannot be read from the store: %s", exc)
            if last is None:
                raise
            try:
                loaded = parse_rules(last.text, name=f"{last.path} (last good rules)",
                                     base_dir=Path(last.path).parent, analyzer=self.analyzer)
            except RulesError as exc:
                log.error("the last good rules %s no longer load: %s", last.version[:12], exc)
                raise refused from exc
            ruleset = replace(loaded.ruleset, path=Path(last.path))
            self.rules_fallback = ReloadResult(False, ruleset.version, refused.problems,
                                               last_good_since=last.in_force_since)
            log.warning("%s", self.rules_fallback.message)
            self._emit(EngineEventKind.RULES, None, self.rules_fallback)
            return ActiveRules(ruleset, analyzer=self.analyzer)

    async def _note_rules(self, ruleset: RuleSet) -> None:
        """Keep the rules now in force in the store: the last good rules of a restart."""
        if self.store is None:
            return
        try:
            await self.store.note_rules_in_force(ruleset.version, str(ruleset.path or ""),
                                                 ruleset.source)
        except Exception as exc:  # a store fault must not cost the rules in force
            log.error("could not keep the rules in force in the store: %s", exc)

    async def _watch_rules(self) -> None:
        """Reload the rules file when its content changes (see the module docstring)."""
        while True:
            await asyncio.sleep(self.rules_poll_s)
            try:
                await self._check_rules_file()
            except Exception:
                log.exception("watching the rules file failed; watching on")

    async def _check_rules_file(self) -> None:
        seen_state, seen_hash = self._rules_seen
        now = await asyncio.to_thread(_file_state, self.rules_path)
        if now[0] == seen_state:
            return
        await asyncio.sleep(0.2)  # an editor may still be writing: let it finish
        again = await asyncio.to_thread(_file_state, self.rules_path)
        if again[0] != now[0]:
            return  # still changing: the next poll looks again
        self._rules_seen = again
        if again[1] == seen_hash:
            return  # touched, not changed
        await self._push_rules(self.rules_path, why="file changed")


def _file_state(path: Path) -> tuple[tuple[int, int, int] | None, str | None]:
    """(size, mtime in ns, inode) of ``path`` and the SHA-256 of its bytes; ``None``s when
    it cannot be read."""
    try:
        st = Path(path).stat()
        data = Path(path).read_bytes()
    except OSError:
        return None, None
    return (st.st_size, st.st_mtime_ns, st.st_ino), hashlib.sha256(data).hexdigest()


class _PlayedPrompts:
    """The call store as a call's session writes to it, except that a prompt which played
    the placeholder chime (no recording, or one that could not be decoded) is recorded as
    such: ``<key> (chime: <why>; <seconds> s)``, with the reason in ``error``. ``ok`` stays
    true and ``seconds`` is the chime's: the caller heard it for that long, and the dry-run
    replays the call's timing from it."""

    def __init__(self, store: Store, ruleset: RuleSet, library: PromptLibrary) -> None:
        self._store = store
        self._ruleset = ruleset
        self._library = library

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def add_action(self, call_id: int, t_s: float, kind: str, detail: str,
                         ok: bool = True, error: str | None = None,
                         prompt: str | None = None, seconds: float | None = None) -> int:
        if kind == ActionKind.PLAY_PROMPT and ok and prompt in self._ruleset.prompts:
            why = self._library.chime_reason(self._ruleset.prompts[prompt])
            if why is not None:
                detail = f"{prompt} (chime: {why}; {seconds or 0.0:.1f} s)"
                error = f"played the placeholder chime, not the prompt's recording: {why}"
        return await self._store.add_action(call_id, t_s, kind, detail, ok, error, prompt,
                                            seconds)
