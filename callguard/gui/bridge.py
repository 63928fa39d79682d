"""The bridge between the Qt GUI thread and the asyncio side: signals out, coroutines in.

- :class:`EngineBridge` wraps a running :class:`~callguard.engine.engine.Engine`. Engine
  events (raised on the engine thread) are re-emitted as the Qt signal ``event`` on the GUI
  thread. Commands (dial, answer, protect, ...) return at once; their results come back to
  a callback on the GUI thread.
- :class:`StoreClient` owns a thread with its own asyncio loop and an open
  :class:`~callguard.store.Store` for the review and rules windows (the engine may not run
  at all, e.g. on a supervisor's PC). Same pattern: ``call(coro_fn, done)``.

Nothing here ever waits on a future on the GUI thread: a blocked engine or a slow query
delays a callback, never a repaint.

Qt objects and threads. A Qt object must be deleted on its own (here: the GUI) thread and
only once. PySide deletes a C++ object that Python owns (one created without a Qt parent)
when the last Python reference to it goes, on whichever thread drops it, and deletes all
still owned at interpreter exit in no particular order. So:

- a callback (and a job of the rules editor) usually closes over a window: :class:`Poster`
  keeps it on the GUI thread until the answer is delivered there; the worker thread sees
  a token and never holds (so never drops) the last reference;
- the posters have a Qt parent, so Qt deletes them with their owner, on its thread;
- :func:`release_windows` closes and deletes the windows on the GUI thread while the
  application is still alive; ``callguard gui`` calls it when its event loop ends, and it
  also runs at interpreter exit before PySide's own teardown (see there for the crash it
  prevents).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import itertools
import logging
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, QEvent, QObject, QThread, Signal, Slot

from callguard.engine.engine import Engine, EngineEvent
from callguard.store import Store

log = logging.getLogger(__name__)

Done = Callable[[Any, BaseException | None], None]  # (result, error): exactly one is set


class Poster(QObject):
    """Hands the outcome of work done on another thread to a callback on the GUI thread (a
    queued signal: the poster lives there), and keeps that callback there until then.

    Create it on the GUI thread with an owner as parent (a window, a :class:`StoreClient`):
    Qt then deletes it with its owner, on the GUI thread. A parentless poster would be owned
    by Python and deleted wherever its last reference went, e.g. in a worker's callback
    with answers still queued for it.

    Why the callbacks stay here: they close over windows. Had the worker's future held
    them, the last reference could be dropped on the worker thread (the future is freed
    there), and if it was the last reference to a window Python still owns, PySide would
    delete that window's widgets on the worker thread. The worker only sees a token;
    :meth:`_deliver` takes the callback out and releases it on the GUI thread.
    """

    finished = Signal(object, object, object)  # token, result, error

    def __init__(self, parent: QObject) -> None:
        super().__init__(parent)
        self._held: dict[int, tuple[Any, ...]] = {}  # token -> (..., callback); GUI thread
        self._tokens = itertools.count()
        self.finished.connect(self._deliver)  # receiver in the GUI thread: queued from others
        # Answers that never come (the owner closed first) are released with the poster,
        # on the GUI thread, not whenever the last worker future happens to be freed.
        self.destroyed.connect(self._held.clear)

    def watch(self, fut: concurrent.futures.Future[Any], done: Done) -> None:
        """``done(result, error)`` on the GUI thread when ``fut`` finishes (not if it is
        cancelled). Call on the GUI thread."""
        self._watch(fut, self._hold(done))

    def run_in(self, pool: concurrent.futures.Executor, job: Callable[[], Any],
               done: Done) -> None:
        """Run ``job()`` on ``pool``; ``done(result, error)`` on the GUI thread. ``job`` is
        kept here as well: the worker borrows it, so it is released on the GUI thread too.
        Call on the GUI thread; a shut-down pool runs nothing and calls nothing."""
        token = self._hold(job, done)
        try:
            fut = pool.submit(self._borrowed, token)
        except RuntimeError:  # the pool was shut down: the owner is closing
            self._held.pop(token, None)
            return
        self._watch(fut, token)

    def _hold(self, *items: Any) -> int:
        token = next(self._tokens)
        self._held[token] = items
        return token

    def _borrowed(self, token: int) -> Any:  # worker thread: a lookup, the dict keeps it
        return self._held[token][0]()

    def _watch(self, fut: concurrent.futures.Future[Any], token: int) -> None:
        def finished(f: concurrent.futures.Future[Any]) -> None:  # any thread
            if f.cancelled():
                result, err = None, concurrent.futures.CancelledError()
            else:
                err = f.exception()
                result = None if err else f.result()
            with contextlib.suppress(RuntimeError):  # the poster (its owner) is gone
                self.finished.emit(token, result, err)

        fut.add_done_callback(finished)

    @Slot(object, object, object)
    def _deliver(self, token: int, result: Any, error: BaseException | None) -> None:
        held = self._held.pop(token, None)
        if held is None or isinstance(error, concurrent.futures.CancelledError):
            return  # nobody waits for a cancelled job
        try:
            held[-1](result, error)
        except Exception:
            log.exception("GUI callback failed")


def _attach(poster: Poster, fut: concurrent.futures.Future[Any], done: Done | None) -> None:
    if done is None:
        fut.add_done_callback(lambda f: not f.cancelled() and f.exception() and log.error(
            "background command failed: %s", f.exception()))
        return
    poster.watch(fut, done)


def release_windows() -> None:
    """Close every window created from Python that has no parent, delete it, and process
    the deletions now, on the GUI thread.

    Call it when the application's event loop has ended and before the
    :class:`QApplication` goes; it is also registered to run at interpreter exit (before
    PySide's own teardown, which was registered earlier and so runs later).

    Why: a window that was only closed stays alive as long as Python references it, and
    the lambdas connected to its children's signals (``lambda: self.save()``) are such
    references, held by Qt. At exit PySide deletes, in no particular order, every C++
    object Python still owns, and among them are child widgets that Python still counts
    as its own although they have a Qt parent (PySide loses track of widgets added to a
    layout that is only later put in a widget). Deleting such a child releases its
    connections; if one held the last reference to the window, PySide deletes the window
    there and then, and the window deletes its children, among them the child that is
    already half-destroyed: "QObject: shared QObject was deleted directly", then a crash.
    Deleted parent-first by Qt, on the GUI thread, every widget goes exactly once.
    """
    app = QCoreApplication.instance()
    if app is None or QThread.currentThread() is not app.thread():
        return
    from PySide6.QtWidgets import QApplication
    from shiboken6 import Shiboken

    if not isinstance(app, QApplication):
        return
    windows = [w for w in app.topLevelWidgets()
               if w.parentWidget() is None and Shiboken.createdByPython(w)]
    for w in windows:
        w.close()  # their closeEvent stops timers and players, ends rests, deletes files
    for w in windows:
        w.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


atexit.register(release_windows)  # after PySide's exit hook (QtCore import), so runs first


class EngineBridge(QObject):
    """Create on the GUI thread, before ``engine.start()`` (it installs the event hook)."""

    event = Signal(object)  # EngineEvent, on the GUI thread

    def __init__(self, engine: Engine, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.engine = engine
        self._poster = Poster(self)
        self._previous = engine.on_event
        engine.on_event = self._from_engine

    def _from_engine(self, ev: EngineEvent) -> None:  # engine thread
        self.event.emit(ev)  # queued to the GUI thread: the receiver lives there
        if self._previous is not None:
            self._previous(ev)

    def run(self, fut: concurrent.futures.Future[Any], done: Done | None = None) -> None:
        """Call ``done(result, error)`` on the GUI thread when ``fut`` finishes."""
        _attach(self._poster, fut, done)

    # Commands: return at once; ``done`` (optional) gets the outcome on the GUI thread.
    def dial(self, number: str, done: Done | None = None) -> None:
        self.run(self.engine.dial(number), done)

    def answer(self, call_id: str, done: Done | None = None) -> None:
        self.run(self.engine.answer(call_id), done)

    def decline(self, call_id: str, done: Done | None = None) -> None:
        self.run(self.engine.decline(call_id), done)

    def hangup(self, call_id: str | None = None, done: Done | None = None) -> None:
        self.run(self.engine.hangup(call_id), done)

    def protect(self, call_id: str | None = None, done: Done | None = None) -> None:
        self.run(self.engine.protect(call_id), done)

    def set_muted(self, muted: bool, done: Done | None = None) -> None:
        self.run(self.engine.set_muted(muted), done)

    def push_rules(self, path: Path | None = None, done: Done | None = None) -> None:
        self.run(self.engine.push_rules(path), done)


class StoreClient(QObject):
    """An open call store on its own thread and asyncio loop, for the GUI.

    ``central`` is False here; True for the central server's store
    (:class:`callguard.gui.central_review.CentralStoreClient`), which also lists by desk and
    team.

    ``call(lambda store: store.list_calls(), done)`` runs the coroutine there and hands
    ``done(result, error)`` to the GUI thread. ``close()`` closes the store and the thread.
    """

    central = False

    def __init__(self, path: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.path = Path(path)
        self._poster = Poster(self)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="gui-store",
                                        daemon=True)
        self._thread.start()
        self._store: concurrent.futures.Future[Store] = asyncio.run_coroutine_threadsafe(
            self._open(), self._loop)

    async def _open(self) -> Store:
        return await Store.open(self.path)

    def submit(self, fn: Callable[[Store], Awaitable[Any]]) -> concurrent.futures.Future[Any]:
        async def job() -> Any:
            store = await asyncio.wrap_future(self._store)
            return await fn(store)
        return asyncio.run_coroutine_threadsafe(job(), self._loop)

    def call(self, fn: Callable[[Store], Awaitable[Any]], done: Done | None = None) -> None:
        _attach(self._poster, self.submit(fn), done)

    def close(self, timeout: float = 10.0) -> None:
        """Close the store and stop the thread (waits: call at shutdown, not mid-session)."""
        if not self._thread.is_alive():
            return

        async def shut() -> None:
            if self._store.done() and self._store.exception() is None:
                await self._store.result().close()

        try:
            asyncio.run_coroutine_threadsafe(shut(), self._loop).result(timeout)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
