"""Wires the real parts together for one recorded call: rules, model worker, store, session.

Used by ``callguard simulate``, ``callguard demo`` and ``callguard bench``; a live line will
use the same worker, store and session with a SIP ``CallControl`` instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from callguard.asr.transcript import Transcriber
from callguard.asr.worker import RecognitionWorker
from callguard.config import Settings
from callguard.engine.wiring import transcriber_factory
from callguard.rules.active import ActiveRules
from callguard.session.call import SessionConfig
from callguard.sim.callaudio import CallAudio, load_call
from callguard.sim.driver import SimulationResult, run_call
from callguard.store import Store
from callguard.vocabulary import CallEvent, Direction, Source


@dataclass
class RunInfo:
    audio: CallAudio
    rules: ActiveRules
    model: str
    load_s: float
    store_path: Path | None


async def simulate_file(path: Path, *, settings: Settings, rules_path: Path,
                        store_path: Path | None, realtime: bool = False,
                        codec: str | None = "ulaw", direction: Direction = Direction.INBOUND,
                        source: Source = Source.SIMULATE,
                        factory: Callable[[], Transcriber] | None = None,
                        config: SessionConfig | None = None,
                        on_event: Callable[[CallEvent], None] | None = None,
                        on_ready: Callable[[RunInfo], None] | None = None,
                        ) -> tuple[SimulationResult, RunInfo]:
    """Run the recording at ``path`` as a call through the live pipeline and store it.

    Raises ``RulesError``/``AudioFileError``/``ModelError``/``StoreError`` before the call
    starts when a part cannot be set up; nothing is stored then.
    """
    audio = await asyncio.to_thread(load_call, path, codec=codec)
    worker = RecognitionWorker(factory or transcriber_factory(settings))
    # The model first: loading it briefly needs ~150 MB more than it keeps, and that
    # transient should not stack on top of Kiwi's ~320 MB.
    await worker.start()
    try:
        engine = await asyncio.to_thread(ActiveRules, rules_path)
    except BaseException:
        await worker.stop()
        raise
    transcriber = worker.transcriber
    info = RunInfo(audio, engine, getattr(transcriber, "name", "?"), worker.load_s, store_path)
    store = await Store.open(store_path, recover=True) if store_path is not None else None
    try:
        if on_ready is not None:
            on_ready(info)
        result = await run_call(audio, ruleset=engine.ruleset, matcher=engine.matcher,
                                recogniser=worker, store=store, realtime=realtime,
                                direction=direction, source=source,
                                config=config or SessionConfig(sample_rate=audio.rate),
                                on_event=on_event)
    finally:
        await worker.stop()
        if store is not None:
            await store.close()
    return result, info
