"""The supervisor's review window on the offscreen platform: a call made live on the FakeLine
reviewed with its markers, filters, seeking from the transcript and the waveform, the
append-only verdict trail, evidence export (and a tampered copy failing), and roles."""

from __future__ import annotations

import asyncio
import hashlib
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from fakerig import abusive_call_audio
from PySide6.QtCore import QDate, QPoint, Qt

from callguard.evidence import read_key, verify_package
from callguard.gui import review as review_mod
from callguard.gui.bridge import StoreClient
from callguard.gui.review import (
    ReviewWindow,
    T,
    action_marker_kind,
    list_number,
    mask_number,
)
from callguard.services.review_access import notifications_from
from callguard.store import ActionRecord, AuditRecord, Store

RATE = 8000


def run(coro):
    return asyncio.run(coro)


def read(db: Path, fn):
    """Run ``fn(store)`` on a store connection of the test's own (not the window's)."""
    async def go():
        async with Store.open(db) as store:
            return await fn(store)
    return run(go())


def tone(hz: float, seconds: float) -> bytes:
    t = np.arange(int(seconds * RATE)) / RATE
    return np.rint(4000 * np.sin(2 * np.pi * hz * t)).astype("<i2").tobytes()


async def _call(store: Store, *, direction="inbound", remote="010-1234-5678", counselor="kim",
                started_at: float, hits=(), stage="none", hangup_by="remote",
                end_reason="caller_hangup", flagged=False, review=None) -> int:
    cid = await store.create_call(direction, remote, "sip", started_at, None, RATE,
                                  counselor=counselor)
    await store.append_audio(cid, "caller", 0, tone(300, 6.0))
    await store.append_audio(cid, "counselor", 0, tone(500, 5.0))
    await store.add_utterance(cid, "caller", 0.4, 1.5, "안녕하세요 문의드려요", "ok")
    await store.add_utterance(cid, "counselor", 1.6, 2.6, "네 말씀하세요", "ok")
    for i, (category, word) in enumerate(hits):
        text = f"야 이 {word}야"
        await store.add_utterance(cid, "caller", 3.0 + i, 3.8 + i, text, "ok", hits=[
            (f"t.{category}", category, 2, word, 4, 4 + len(word), word)])
    if stage in ("warned", "final"):
        await store.add_verdict(cid, 3.9, "warn", "warning", False, "warning 1/1")
        await store.add_action(cid, 3.9, "play_prompt", "warning (1.0 s)")
    if stage == "final":
        await store.add_verdict(cid, 4.9, "final", "final", True, "abuse went on")
        await store.add_action(cid, 4.9, "play_prompt", "final (1.2 s)")
        await store.add_action(cid, 5.9, "hangup", "final")
    await store.update_call(cid, flagged=flagged, stage=stage)
    await store.end_call(cid, started_at + 6.0, 6.0, end_reason, hung_up_by=hangup_by)
    if review:
        await store.add_review(cid, "boss", review)
    return cid


@pytest.fixture
def built(tmp_path):
    """A store with three calls; returns (db, {name: id}).

    abuse: inbound, kim, profanity twice, warned then cut off by the agent, flagged, 1 h ago.
    quiet: outbound, lee, nothing said wrong, the caller hung up, 10 days ago.
    insult: inbound, lee, one insult, warned, flagged, already reviewed, 2 h ago.
    """
    db = tmp_path / "calls.db"
    now = time.time()

    async def make(store: Store) -> dict[str, int]:
        return {
            "quiet": await _call(store, direction="outbound", remote="010-2222-3333",
                                 counselor="lee", started_at=now - 10 * 86400),
            "insult": await _call(store, remote="02-123-4567", counselor="lee",
                                  started_at=now - 7200, hits=[("insult", "바보")],
                                  stage="warned", flagged=True, review="abuse_confirmed"),
            "abuse": await _call(store, started_at=now - 3600, flagged=True, stage="final",
                                 hits=[("profanity", "새끼"), ("profanity", "새끼")],
                                 hangup_by="agent", end_reason="final_notice"),
        }

    return db, read(db, make)


@pytest.fixture
def client_for(qtbot):
    clients: list[StoreClient] = []

    def make(db: Path) -> StoreClient:
        c = StoreClient(db)
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()


def open_window(qtbot, client: StoreClient, tmp_path: Path, **kw) -> ReviewWindow:
    kw.setdefault("key_path", tmp_path / "site.key")
    kw.setdefault("today", False)  # these tests start on every call (the window: today's)
    window = ReviewWindow(client, kw.pop("reviewer", "lee"), **kw)
    qtbot.addWidget(window)
    window.resize(1200, 800)
    window.show()
    qtbot.waitUntil(lambda: window.table.rowCount() > 0, timeout=10_000)
    return window


def show(qtbot, window: ReviewWindow, call_id: int) -> None:
    with qtbot.waitSignal(window.callLoaded, timeout=10_000,
                          check_params_cb=lambda got: got == call_id):
        window.show_call(call_id)


def click_transcript(qtbot, window: ReviewWindow, row: int) -> None:
    view = window.transcript
    rect = view.visualItemRect(view.item(row))
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def tamper(src: Path, dst: Path) -> Path:
    """Rewrite recording.wav inside a copy of the package (one sample changed)."""
    with zipfile.ZipFile(src) as zin:
        members = {n: zin.read(n) for n in zin.namelist()}
    wav = bytearray(members["recording.wav"])
    wav[1000] ^= 0x10
    members["recording.wav"] = bytes(wav)
    with zipfile.ZipFile(dst, "w") as zout:
        for name, data in members.items():
            zout.writestr(name, data)
    return dst


def test_a_live_abusive_call_is_reviewed_with_its_markers_at_call_time(
        qtbot, stepped, client_for, tmp_path):
    live = stepped  # the call runs on a stepped clock: its times are exact
    call = live.answered("010-9876-5432")
    call.far_play(abusive_call_audio(), at_s=0)
    live.advance(7.56)  # warned at 1.82 s, final notice at 6.04 s, BYE at 7.56 s
    store_id = live.wait("ended").data["store_id"]
    record = read(live.db, lambda s: s.get_call(store_id))
    assert record.end_reason == "final_notice" and record.hung_up_by == "agent"

    window = open_window(qtbot, client_for(live.db), tmp_path)
    assert window.listed_ids() == [store_id]
    assert window.table.item(0, 3).text() == "010-****-5432"  # masked in the list
    window.table.selectRow(0)
    qtbot.waitUntil(lambda: window.call is not None and window.call.id == store_id,
                    timeout=10_000)
    assert "010-9876-5432" in window.header_label.text()  # in full in the detail
    assert window.seal_label.text() == T("review.seal.intact")

    markers = window.waveform.markers()
    hits = [m.t_s for m in markers if m.kind == "hit"]
    assert hits == [u.start_s for u in record.utterances if u.hits] and len(hits) == 2
    acts = [(m.t_s, m.kind) for m in markers if m.kind != "hit"]
    warn, final, hangup = record.actions
    assert acts == [(warn.t_s, "warning"), (final.t_s, "final"), (hangup.t_s, "hangup")]
    assert (warn.t_s, final.t_s) == (1.82, 6.04)
    assert hangup.t_s == pytest.approx(7.55) and record.duration_s == pytest.approx(7.55)
    # Drawn where the call time says: x / width = t / duration.
    view = window.waveform
    assert view.duration_s == pytest.approx(max(record.duration_s, view.duration_s))
    assert view.x_of(final.t_s) == pytest.approx(final.t_s / view.duration_s * view.width())

    # A transcript line seeks to its utterance; the playhead follows.
    row = max(i for i, u in enumerate(record.utterances) if u.hits)
    click_transcript(qtbot, window, row)
    assert window.position_s == pytest.approx(record.utterances[row].start_s)
    assert view.playhead_s == pytest.approx(record.utterances[row].start_s)
    assert window.transcript.currentRow() == row
    # A click on the waveform: on a marker it snaps to it, elsewhere it seeks there.
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton,
                     pos=QPoint(round(view.x_of(final.t_s)) + 2, view.height() // 2))
    assert window.position_s == pytest.approx(final.t_s)
    x = round(view.x_of(0.5 * warn.t_s))
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=QPoint(x, view.height() // 2))
    assert window.position_s == pytest.approx(view.t_of(x))
    started = [i for i, u in enumerate(record.utterances) if u.start_s <= window.position_s]
    assert window.transcript.currentRow() == (started[-1] if started else -1)

    # Evidence from the live call: it verifies with the site key; a tampered copy fails.
    out = tmp_path / "evidence" / "call.zip"
    with qtbot.waitSignal(window.exported, timeout=15_000):
        window.export_to(out)
    key = read_key(tmp_path / "site.key")
    assert verify_package(out, key).ok
    report = verify_package(tamper(out, tmp_path / "tampered.zip"), key)
    assert not report.ok and report.exit_code == 1
    assert any(line.startswith("recording.wav: ALTERED") for line in report.lines)


def test_the_filters_narrow_the_list(qtbot, built, client_for, tmp_path):
    db, ids = built
    window = open_window(qtbot, client_for(db), tmp_path)
    qtbot.waitUntil(lambda: len(window.listed_ids()) == 3, timeout=10_000)
    assert window.listed_ids() == [ids["abuse"], ids["insult"], ids["quiet"]]  # newest first

    def expect(names: set[str], **filters) -> None:
        window.set_filters(clear=True, **filters)
        want = {ids[n] for n in names}
        qtbot.waitUntil(lambda: set(window.listed_ids()) == want, timeout=10_000)

    expect({"abuse", "insult"}, flagged=True)
    expect({"abuse"}, category="profanity")
    expect({"insult"}, category="insult")
    expect({"insult"}, reviewed=True)
    expect({"abuse", "quiet"}, reviewed=False)
    expect({"abuse"}, action="cut_off")
    expect({"abuse", "insult"}, action="warned")
    expect({"quiet"}, action="none")
    expect({"quiet"}, direction="outbound")
    expect({"insult", "quiet"}, counselor="lee")
    expect({"insult"}, counselor="lee", flagged=True)
    today = QDate.currentDate()
    expect({"abuse", "insult"}, since=today.addDays(-2), until=today)
    expect({"quiet"}, since=today.addDays(-11), until=today.addDays(-9))
    expect({"abuse", "insult", "quiet"})
    # The combos offer what the store holds.
    categories = [window.category_box.itemData(i) for i in range(window.category_box.count())]
    assert categories == [None, "insult", "profanity"]
    # Numbers are masked in the list.
    numbers = {window.table.item(r, 3).text() for r in range(3)}
    assert numbers == {"010-****-5678", "010-****-3333", "02-***-4567"}


@pytest.mark.parametrize("playback", [True, False], ids=["multimedia", "no-multimedia"])
def test_the_transcript_follows_the_playhead_and_a_click_on_a_line_seeks(
        qtbot, built, client_for, tmp_path, playback):
    db, ids = built
    window = open_window(qtbot, client_for(db), tmp_path, playback=playback)
    if not playback:
        assert not window.playback_available and not window.play_button.isEnabled()
    show(qtbot, window, ids["abuse"])
    starts = [u.start_s for u in window.call.utterances]
    assert starts == [0.4, 1.6, 3.0, 4.0]
    assert window.transcript.currentRow() == -1  # 0 s: nobody has spoken yet
    click_transcript(qtbot, window, 2)
    assert window.position_s == pytest.approx(3.0)
    assert window.waveform.playhead_s == pytest.approx(3.0)
    assert window.transcript.currentRow() == 2
    window.seek(2.0)  # between lines: the last one started stays current
    assert window.transcript.currentRow() == 1
    window.seek(99)  # clamped to the end of the call
    assert window.position_s == pytest.approx(6.0) and window.transcript.currentRow() == 3
    # Hits are highlighted in the line's rich text; the plain text keeps the words.
    item = window.transcript.item(2)
    assert "새끼" in item.text() and "#ffcdd2" in item.data(review_mod.HTML_ROLE)


def test_a_verdict_is_appended_to_the_trail_and_the_store(qtbot, built, client_for, tmp_path):
    db, ids = built
    window = open_window(qtbot, client_for(db), tmp_path, reviewer="park")
    show(qtbot, window, ids["insult"])
    assert window.trail.count() == 1 and "boss" in window.trail.item(0).text()

    errors = []
    window.save_review("note", "", done=lambda r, e: errors.append(e))  # a note needs text
    assert isinstance(errors[0], ValueError)

    window.verdict_box.setCurrentIndex(window.verdict_box.findData("wrongful_cutoff"))
    window.note_edit.setPlainText("고객이 욕설 안 함, 오탐")
    with qtbot.waitSignal(window.reviewSaved, timeout=10_000):
        qtbot.mouseClick(window.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.trail.count() == 2, timeout=5_000)
    last = window.trail.item(1).text()
    assert "park" in last and T("review.verdict.wrongful_cutoff") in last
    assert "오탐" in last and window.note_edit.toPlainText() == ""
    reviews = read(db, lambda s: s.reviews(ids["insult"]))
    assert [(r.reviewer, r.verdict) for r in reviews] == [
        ("boss", "abuse_confirmed"), ("park", "wrongful_cutoff")]
    assert reviews[1].note == "고객이 욕설 안 함, 오탐"
    # Append-only: nothing in the trail can be selected or edited.
    flags = window.trail.item(1).flags()
    assert not flags & Qt.ItemFlag.ItemIsEditable
    assert window.trail.selectionMode() == window.trail.SelectionMode.NoSelection

    # The list's reviewed column follows.
    show(qtbot, window, ids["abuse"])
    with qtbot.waitSignal(window.reviewSaved, timeout=10_000):
        window.save_review("abuse_confirmed", "")
    qtbot.waitUntil(lambda: window.table.item(
        window.listed_ids().index(ids["abuse"]), 8).text() == "✓", timeout=5_000)


def test_export_through_the_dialog_verifies_and_a_tampered_copy_fails(
        qtbot, built, client_for, tmp_path, monkeypatch):
    db, ids = built
    window = open_window(qtbot, client_for(db), tmp_path)
    show(qtbot, window, ids["abuse"])
    out = tmp_path / "chosen.zip"
    monkeypatch.setattr(review_mod.QFileDialog, "getSaveFileName",
                        staticmethod(lambda *a, **k: (str(out), "")))
    with qtbot.waitSignal(window.exported, timeout=15_000) as got:
        qtbot.mouseClick(window.export_button, Qt.MouseButton.LeftButton)
    assert got.args == [out]
    key = read_key(tmp_path / "site.key")  # created by the first export
    report = verify_package(out, key)
    assert report.ok and report.signature == "valid"
    with zipfile.ZipFile(out) as zf:
        wav = zf.read("recording.wav")
    sealed = read(db, lambda s: s.get_call(ids["abuse"])).recording_sha256
    assert hashlib.sha256(wav).hexdigest() == sealed
    bad = verify_package(tamper(out, tmp_path / "bad.zip"), key)
    assert not bad.ok and "recording.wav altered" in bad.summary
    audit = read(db, lambda s: s.audit_log(kind="evidence_exported"))
    assert [(a.actor, a.role, a.call_id) for a in audit] == [("lee", "supervisor", ids["abuse"])]


def test_a_counselor_cannot_delete_records_no_verdict_and_sees_own_calls(
        qtbot, built, client_for, tmp_path):
    db, ids = built
    client = client_for(db)
    window = open_window(qtbot, client, tmp_path, reviewer="kim", role="counselor")
    assert not window.can_delete and window.delete_button is None
    assert not window.save_button.isEnabled()
    qtbot.waitUntil(lambda: window.listed_ids() == [ids["abuse"]], timeout=10_000)
    show(qtbot, window, ids["abuse"])
    assert window.request_delete() is False
    errors = []
    window.save_review("abuse_confirmed", "", done=lambda r, e: errors.append(e))
    assert isinstance(errors[0], PermissionError)
    stored, current = read(db, lambda s: s.check_recording(ids["abuse"]))
    assert stored == current  # untouched
    # Another counselor's call cannot be opened (nor exported) even when asked directly.
    with qtbot.waitSignal(window.failed, timeout=10_000):
        window.show_call(ids["quiet"])
    assert window.call.id == ids["abuse"]
    window.close()


def test_a_supervisor_deletes_a_recording_only_after_confirming(
        qtbot, built, client_for, tmp_path):
    db, ids = built
    window = open_window(qtbot, client_for(db), tmp_path)
    show(qtbot, window, ids["quiet"])
    assert window.delete_button is not None and window.delete_button.isEnabled()
    asked = []
    window._confirm = lambda text: asked.append(text) or False
    assert window.request_delete() is False and len(asked) == 1
    assert str(ids["quiet"]) in asked[0]
    window._confirm = lambda text: True
    with qtbot.waitSignal(window.callLoaded, timeout=10_000):
        assert window.request_delete() is True
    assert window.seal_label.text() == T("review.seal.altered")
    assert not window.delete_button.isEnabled()  # nothing left to delete
    audit = read(db, lambda s: s.audit_log(kind="recording_deleted"))
    assert [(a.actor, a.role, a.call_id) for a in audit] == [("lee", "supervisor", ids["quiet"])]


def test_playing_moves_the_playhead_and_the_transcript(qtbot, built, client_for, tmp_path):
    db, ids = built
    window = open_window(qtbot, client_for(db), tmp_path)
    if not window.playback_available:
        pytest.skip("no QtMultimedia backend here")
    show(qtbot, window, ids["abuse"])
    window.seek(2.7)
    qtbot.mouseClick(window.play_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.position_s > 3.1, timeout=10_000)
    assert window.transcript.currentRow() == 2  # the line started at 3.0 s
    assert window.play_button.text() == T("review.pause")
    qtbot.mouseClick(window.play_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.play_button.text() == T("review.play"), timeout=5_000)


def test_the_playback_copy_is_private_and_deleted_on_close(qtbot, built, client_for, tmp_path):
    db, ids = built
    window = open_window(qtbot, client_for(db), tmp_path)
    if not window.playback_available:
        pytest.skip("no QtMultimedia backend here")
    show(qtbot, window, ids["abuse"])
    first = window._wav
    assert first is not None and first.is_file()
    assert first.stat().st_mode & 0o077 == 0  # owner only
    show(qtbot, window, ids["quiet"])  # another call: the first copy goes
    assert not first.exists() and window._wav.is_file()
    second = window._wav
    window.close()
    assert not second.exists()


@pytest.fixture
def noted(tmp_path):
    """A store with a call each for kim and lee and their rest entries in the audit log
    (plus entries that are no notifications); returns (db, {name: call id}, now)."""
    db = tmp_path / "calls.db"
    now = time.time()

    async def make(store: Store) -> dict[str, int]:
        kim = await _call(store, counselor="kim", started_at=now - 3600)
        lee = await _call(store, counselor="lee", started_at=now - 1800,
                          remote="010-2222-3333")
        entries = [  # (actor, kind, detail, call id, seconds ago)
            ("kim", "rest_skipped", "600 s", kim, 3000),
            ("lee", "supervisor_notified", "600 s", lee, 1700),
            ("lee", "rest_started", "600 s", lee, 1699),
            ("kim", "supervisor_notified", "300 s", kim, 1000),
            ("kim", "rest_started", "300 s", None, 999),  # no call: nothing to open
            ("lee", "rest_ended", "420 s", lee, 1280),
        ]
        for actor, kind, detail, cid, ago in entries:
            await store.audit(actor, "counselor", kind, detail, cid, at=now - ago)
        await store.audit("boss", "supervisor", "evidence_exported", "", kim, at=now - 10)
        await store.audit("boss", "supervisor", "password_set", at=now - 5)
        return {"kim": kim, "lee": lee}

    return db, read(db, make), now


def notes_of(window: ReviewWindow) -> list[tuple[str, str, int | None]]:
    return [(n.actor, n.kind, n.call_id) for n in window.notifications()]


def reload_notes(qtbot, window: ReviewWindow) -> None:
    with qtbot.waitSignal(window.notificationsLoaded, timeout=10_000):
        window.refresh_notifications()


def test_notifications_show_rests_newest_first_and_a_click_opens_the_call(
        qtbot, noted, client_for, tmp_path):
    db, ids, now = noted
    for name in ("boss", "sue"):
        read(db, lambda s, n=name: s.set_password(n, "supervisor", "correct horse"))
    window = open_window(qtbot, client_for(db), tmp_path, reviewer="boss")
    qtbot.waitUntil(lambda: len(window.notifications()) == 6, timeout=10_000)
    assert notes_of(window) == [
        ("kim", "rest_started", None),
        ("kim", "supervisor_notified", ids["kim"]),
        ("lee", "rest_ended", ids["lee"]),
        ("lee", "rest_started", ids["lee"]),
        ("lee", "supervisor_notified", ids["lee"]),
        ("kim", "rest_skipped", ids["kim"]),
    ]
    view = window.notes_list
    texts = [view.item(i).text() for i in range(view.count())]
    assert T("review.note.supervisor_notified") in texts[1] and "kim" in texts[1]
    assert "5:00" in texts[1] and T("review.note.call", id=ids["kim"]) in texts[1]
    assert T("review.note.rest_ended") in texts[2] and "lee" in texts[2] and "7:00" in texts[2]
    assert T("review.note.rest_skipped") in texts[5] and "10:00" in texts[5]
    assert all("010" not in t for t in texts)  # no numbers here
    # A new window has seen nothing yet: all six count, in bold, in the title.
    assert window.unseen_notifications == 6
    assert window.notes_box.title() == T("review.note.unseen", n=6)
    assert view.item(0).font().bold()

    # A click on an entry with a call opens it; one without a call opens nothing.
    def click(row: int) -> None:
        rect = view.visualItemRect(view.item(row))
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())

    with qtbot.assertNotEmitted(window.callLoaded, wait=300):
        click(0)
    assert window.call is None
    with qtbot.waitSignal(window.callLoaded, timeout=10_000,
                          check_params_cb=lambda got: got == ids["lee"]):
        click(2)
    assert window.call.counselor == "lee"
    with qtbot.waitSignal(window.callLoaded, timeout=10_000,
                          check_params_cb=lambda got: got == ids["kim"]):
        click(1)

    # Shown while visible: seen. The next load has nothing new.
    reload_notes(qtbot, window)
    assert window.unseen_notifications == 0
    assert window.notes_box.title() == T("review.note.title")
    assert not view.item(0).font().bold()

    # New entries while the window is hidden stay unseen until it is shown again.
    window.hide()
    read(db, lambda s: s.audit("lee", "counselor", "supervisor_notified", "600 s",
                               ids["lee"], at=now))
    reload_notes(qtbot, window)
    assert notes_of(window)[0] == ("lee", "supervisor_notified", ids["lee"])
    assert window.unseen_notifications == 1
    assert window.notes_box.title() == T("review.note.unseen", n=1)
    reload_notes(qtbot, window)
    assert window.unseen_notifications == 1  # still hidden: still unseen
    with qtbot.waitSignal(window.notificationsLoaded, timeout=10_000):
        window.show()  # showing reloads: the count is there for the user to see
    assert window.unseen_notifications == 1 and view.item(0).font().bold()
    reload_notes(qtbot, window)
    assert window.unseen_notifications == 0

    # The timer reloads on its own (every 30 s; faster here).
    assert window.notes_timer.isActive()
    assert window.notes_timer.interval() == review_mod.NOTE_REFRESH_MS == 30_000
    read(db, lambda s: s.audit("kim", "counselor", "rest_ended", "12 s", ids["kim"],
                               at=now + 1))
    window.notes_timer.setInterval(50)
    qtbot.waitUntil(lambda: len(window.notifications()) == 8, timeout=10_000)
    assert notes_of(window)[0] == ("kim", "rest_ended", ids["kim"])
    assert "0:12" in view.item(0).text()
    window.close()
    assert not window.notes_timer.isActive()

    # What boss has seen is kept with the account: a new window of boss's has nothing
    # new; another supervisor's window has all eight.
    qtbot.waitUntil(lambda: read(db, lambda s: s.notes_seen("boss")) is not None
                    and read(db, lambda s: s.notes_seen("boss"))[0] == now + 1,
                    timeout=10_000)
    again = open_window(qtbot, client_for(db), tmp_path, reviewer="boss")
    qtbot.waitUntil(lambda: len(again.notifications()) == 8, timeout=10_000)
    assert again.unseen_notifications == 0
    other = open_window(qtbot, client_for(db), tmp_path, reviewer="sue")
    qtbot.waitUntil(lambda: len(other.notifications()) == 8, timeout=10_000)
    assert other.unseen_notifications == 8


def test_a_counselor_sees_only_their_own_notifications(qtbot, noted, client_for, tmp_path):
    db, ids, _now = noted
    window = open_window(qtbot, client_for(db), tmp_path, reviewer="kim", role="counselor")
    qtbot.waitUntil(lambda: len(window.notifications()) == 3, timeout=10_000)
    assert notes_of(window) == [
        ("kim", "rest_started", None),
        ("kim", "supervisor_notified", ids["kim"]),
        ("kim", "rest_skipped", ids["kim"]),
    ]
    assert all("lee" not in window.notes_list.item(i).text()
               for i in range(window.notes_list.count()))
    assert window.unseen_notifications == 0  # no badge for a counselor
    assert window.notes_box.title() == T("review.note.title")
    with qtbot.waitSignal(window.notificationsLoaded, timeout=10_000):
        window.refresh()  # the refresh button reloads them too
    view = window.notes_list
    with qtbot.waitSignal(window.callLoaded, timeout=10_000,
                          check_params_cb=lambda got: got == ids["kim"]):
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                         pos=view.visualItemRect(view.item(1)).center())
    window.close()


def test_notification_helpers():
    assert review_mod.rest_seconds("600 s") == 600.0
    assert review_mod.rest_seconds("12.5 s") == 12.5
    assert review_mod.rest_seconds("") is None and review_mod.rest_seconds("x") is None
    rec = AuditRecord(7, time.time(), "kim", "counselor", "rest_ended", 3, "75 s")
    text = review_mod.notification_text(rec)
    assert "kim" in text and "1:15" in text and T("review.note.rest_ended") in text
    other = AuditRecord(8, rec.at + 1, "boss", "supervisor", "password_set", None, "")
    assert notifications_from([rec, other]) == [rec]
    assert notifications_from([rec], own_only="lee") == []


def test_numbers_are_masked_and_actions_map_to_marker_kinds():
    assert mask_number("010-1234-5678") == "010-****-5678"
    assert mask_number("01012345678") == "010****5678"
    assert mask_number("02-123-4567") == "02-***-4567"
    assert mask_number("sip:01012345678@pbx.local") == "sip:010****5678@pbx.local"
    assert mask_number("1001") == "***1"
    assert mask_number("") == ""
    # The list drops a SIP URI's scheme and host (the PBX); a bare number is as masked.
    assert list_number("sip:01012345678@pbx.local") == "010****5678"
    assert list_number("sips:1001@pbx") == "***1"
    assert list_number("010-1234-5678") == "010-****-5678"
    assert list_number("sip:@pbx") == "sip:@pbx" and list_number("") == ""

    def act(kind: str, detail: str, prompt: str | None = None) -> ActionRecord:
        return ActionRecord(1, 1, 0.0, kind, detail, True, None, prompt=prompt)

    # The prompt's key is a value of the row (schema 4), never read back from the detail.
    assert action_marker_kind(act("play_prompt", "warning (1.0 s)", "warning")) == "warning"
    assert action_marker_kind(act("play_prompt", "final (1.2 s)", "final")) == "final"
    assert action_marker_kind(act("play_prompt", "duration_final", "duration_final")) == "final"
    assert action_marker_kind(act("play_prompt", "pre_call (3.0 s)", "pre_call")) == "other"
    assert action_marker_kind(act("hangup", "final")) == "hangup"
    assert action_marker_kind(act("alert", "supervisor alert: x")) == "alert"
    assert action_marker_kind(act("fault", "runner")) == "other"
