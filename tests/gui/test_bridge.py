"""The bridge: engine events arrive on the GUI thread; commands never block it."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading

from PySide6.QtCore import QObject, QThread

from callguard.gui.bridge import EngineBridge, Poster, StoreClient


def test_engine_events_arrive_on_the_gui_thread(qtbot, live):
    bridge = EngineBridge(live.engine)
    seen: list[tuple[str, bool]] = []
    gui = QThread.currentThread()
    bridge.event.connect(lambda ev: seen.append((ev.kind, QThread.currentThread() is gui)))
    live.line.ring("010-1")
    qtbot.waitUntil(lambda: any(k == "ringing" for k, _ in seen), timeout=5000)
    assert all(on_gui for _, on_gui in seen)
    results = []
    bridge.answer(live.line.calls[0].call_id,
                  lambda r, e: results.append((e, threading.current_thread().name)))
    qtbot.waitUntil(lambda: bool(results), timeout=5000)
    assert results == [(None, threading.main_thread().name)]


def test_a_command_error_comes_back_to_the_callback(qtbot, live):
    bridge = EngineBridge(live.engine)
    live.line.ring()
    live.wait("ringing")
    live.engine.answer(live.line.calls[0].call_id).result(5)
    live.wait("answered")
    errors = []
    bridge.dial("123", lambda r, e: errors.append(e))  # a call is active: refused
    qtbot.waitUntil(lambda: bool(errors), timeout=5000)
    assert isinstance(errors[0], RuntimeError) and "already active" in str(errors[0])


def test_store_client_runs_queries_off_the_gui_thread(qtbot, tmp_path):
    client = StoreClient(tmp_path / "calls.db")
    try:
        got = []

        async def query(store):
            await asyncio.sleep(0)
            return threading.current_thread().name, await store.list_calls()

        client.call(query, lambda r, e: got.append((r, e)))
        qtbot.waitUntil(lambda: bool(got), timeout=5000)
        (name, calls), err = got[0]
        assert err is None and calls == [] and name == "gui-store"
    finally:
        client.close()


class _Tracked:
    """A callable that records on which thread its last reference went."""

    def __init__(self, dropped: list[str], value=None) -> None:
        self.dropped, self.value = dropped, value

    def __call__(self, *args):
        return self.value

    def __del__(self) -> None:
        self.dropped.append(threading.current_thread().name)


def test_jobs_and_callbacks_are_released_on_the_gui_thread(qtbot):
    # A job or a callback closes over a window in real use: if a worker thread dropped the
    # last reference, PySide would delete the window's widgets on that thread.
    owner = QObject()
    poster = Poster(owner)
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="worker")
    dropped: list[str] = []
    got = []
    try:
        poster.run_in(pool, _Tracked(dropped, 42), lambda r, e: got.append((r, e)))
        qtbot.waitUntil(lambda: bool(got), timeout=5000)
        fut: concurrent.futures.Future = concurrent.futures.Future()
        poster.watch(fut, _Tracked(dropped))
        threading.Thread(target=fut.set_result, args=(1,), name="worker-2").start()
        qtbot.waitUntil(lambda: len(dropped) == 2, timeout=5000)
    finally:
        pool.shutdown()
    assert got == [(42, None)]
    assert dropped == [threading.main_thread().name] * 2
    # A callback whose answer never comes goes with the poster (deleted with its owner).
    poster.watch(concurrent.futures.Future(), _Tracked(dropped))
    owner.deleteLater()
    qtbot.waitUntil(lambda: len(dropped) == 3, timeout=5000)
    assert dropped[2] == threading.main_thread().name
