"""The review's call list fits a 1366×768 screen in Korean and English (issue 15, item 7):
at the size the window opens there, every column is inside the list (no horizontal
scrolling, nothing cut at the pane's edge); the time, number, stage, category and review
columns show whole, and only the end reason and the categories may be elided, whole in
their tooltips."""

from __future__ import annotations

import time

from callguard.gui.fit import budget
from callguard.gui.review import NUMBER_COLUMN
from callguard.store import Store
from tests.gui.test_review import _call, client_for, open_window, read  # noqa: F401


async def _long_calls(store: Store) -> None:
    now = time.time() - 3600
    for i, (stage, reason, by) in enumerate((("final", "final_notice", "agent"),
                                             ("warned", "counselor_hangup", "counselor"),
                                             ("none", "duration_limit", "agent"))):
        # A SIP URI as the caller's number: the list shows the number, not the PBX host.
        remote = "sip:01012345678@pbx.callcentre.example.kr" if i == 2 else "010-1234-5678"
        await _call(store, started_at=now + i, remote=remote,
                    counselor="kim", stage=stage, end_reason=reason, hangup_by=by,
                    flagged=True, hits=[("profanity", "새끼"), ("harassment", "가슴")],
                    review="abuse_confirmed" if i == 0 else None)


def test_the_call_list_fits_at_1366x768(qtbot, client_for, tmp_path, lang):  # noqa: F811
    db = tmp_path / "calls.db"
    read(db, _long_calls)
    window = open_window(qtbot, client_for(db), tmp_path)
    window.resize(*budget())
    qtbot.waitUntil(lambda: window.table.rowCount() == 3, timeout=10_000)
    qtbot.wait(100)  # the splitter and the columns settle
    table, header = window.table, window.table.horizontalHeader()
    assert not table.horizontalScrollBar().isVisible()
    assert window.list_fits(), (header.length(), table.viewport().width())
    for col in range(table.columnCount()):
        if col in window.ELIDED_COLUMNS:
            continue
        assert header.sectionSize(col) >= table.sizeHintForColumn(col) - 1, \
            (col, table.horizontalHeaderItem(col).text())
    for row in range(table.rowCount()):  # an elided cell is whole in its tooltip
        for col in window.ELIDED_COLUMNS:
            item = table.item(row, col)
            assert item.toolTip() == item.text() and item.text()
    numbers = {table.item(r, NUMBER_COLUMN).text() for r in range(3)}
    assert numbers == {"010-****-5678", "010****5678"}
    assert "sip:010****5678@pbx.callcentre.example.kr" in {
        table.item(r, NUMBER_COLUMN).toolTip() for r in range(3)}
    # The detail pane keeps at least 45 % of the window.
    left, right = window.split.sizes()
    assert right >= 0.44 * (left + right)
