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
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from callguard.engine.engine import Engine, EngineEvent
from callguard.store import Store

log = logging.getLogger(__name__)

Done = Callable[[Any, BaseException | None], None]  # (result, error): exactly one is set


class _Poster(QObject):
    """Carries a finished future's callback to the GUI thread (queued signal)."""

    finished = Signal(object, object, object)  # callback, result, error

    @Slot(object, object, object)
    def _run(self, callback: Done, result: Any, error: BaseException | None) -> None:
        try:
            callback(result, error)
        except Exception:
            log.exception("GUI callback failed")


def _make_poster() -> _Poster:
    poster = _Poster()
    poster.finished.connect(poster._run)  # receiver in the GUI thread: queued from others
    return poster


def _attach(poster: _Poster, fut: concurrent.futures.Future[Any], done: Done | None) -> None:
    if done is None:
        fut.add_done_callback(lambda f: f.exception() and log.error(
            "background command failed: %s", f.exception()))
        return

    def finished(f: concurrent.futures.Future[Any]) -> None:
        err = f.exception()
        poster.finished.emit(done, None if err else f.result(), err)

    fut.add_done_callback(finished)


class EngineBridge(QObject):
    """Create on the GUI thread, before ``engine.start()`` (it installs the event hook)."""

    event = Signal(object)  # EngineEvent, on the GUI thread

    def __init__(self, engine: Engine, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.engine = engine
        self._poster = _make_poster()
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

    ``call(lambda store: store.list_calls(), done)`` runs the coroutine there and hands
    ``done(result, error)`` to the GUI thread. ``close()`` closes the store and the thread.
    """

    def __init__(self, path: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.path = Path(path)
        self._poster = _make_poster()
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
