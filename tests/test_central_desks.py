"""Desks syncing to the real central server: three call engines on the in-memory line (the
real engine, session, policy, store and central link; the recogniser the tone fake) and one
``callguard run`` on a real SIP call through kamailio and baresip, killed with -9 in the
middle of a call and restarted. Every call, utterance, verdict and action stored on the
desks reaches PostgreSQL exactly once; alerts (a protect press) reach it as they happen."""

from __future__ import annotations

import asyncio
import json
import time

import psycopg
import pytest
from centralkit import ServerProcess, desk_counts, wait_until
from fakerig import ABUSE_HZ, FakeRig, rules_text, write_wav
from officepbx import bob_calls_agent
from synth import call_audio
from test_agent_runtime import Agent, abuse, pbx  # noqa: F401  (pbx: a fixture)

from callguard.central.client import HttpCentral
from callguard.central.link import CentralLink
from callguard.config import CentralSettings
from callguard.store import Store

pytestmark = [pytest.mark.slow]

ABUSE = call_audio([(0.3, 1.2, ABUSE_HZ), (4.5, 1.2, ABUSE_HZ)], 12.0)


def server_rows(pg, table: str, where: str = "") -> int:
    with psycopg.connect(pg.dsn) as conn:
        return conn.execute(f"SELECT count(*) FROM {table} {where}").fetchone()[0]


def store_counts(path) -> dict[str, int]:
    async def read():
        async with Store.open(path) as store:
            return await desk_counts(store)
    return asyncio.run(read())


def test_three_desk_engines_sync_their_calls_and_alerts(server, pg, tmp_path):
    rigs = []
    for i in range(3):
        home = tmp_path / f"desk-{i}"
        home.mkdir()
        token = server.desk(f"desk-{i}")
        settings = CentralSettings(server.url, token, server.fingerprint, audio="flac",
                                   cert_cache=home / "central.pem")
        link = CentralLink(home / "calls.db", lambda s=settings: HttpCentral(s),
                           rules_target=None, rules_base=home, audio="flac", poll_s=5.0,
                           idle_s=0.2)
        rig = FakeRig(home, rules_text(), auto_answer=True, stepped=True, central=link)
        rig.engine.start()
        rigs.append(rig)
    try:
        for i, r in enumerate(rigs):
            call = r.answered(f"010-000{i}-1111")
            call.far_play(ABUSE, at_s=0.0)
            r.advance(9.0)  # warned, then the final notice and our BYE
            r.wait("ended")
            call = r.answered(f"010-000{i}-2222")
            r.advance(2.0)
            if i == 0:  # this counselor presses protect: an alert right away
                r.engine.protect().result(5)
                r.advance(3.0)
            else:
                call.far_hangup()
                r.advance(0.2)
            r.log.wait("ended", pred=lambda ev, c=call: ev.call_id == c.call_id)
        wait_until(lambda: server_rows(pg, "calls") == 6, 120, "six calls on the server")
        wait_until(lambda: server_rows(pg, "alerts") == 1, 30, "the protect alert")
    finally:
        for r in rigs:
            r.stop()
    totals: dict[str, int] = {}
    for i in range(3):
        for key, value in store_counts(tmp_path / f"desk-{i}" / "calls.db").items():
            totals[key] = totals.get(key, 0) + value
    on_server = {key: server_rows(pg, key) for key in totals}
    print(json.dumps({"desks": totals, "server": on_server}))
    assert on_server == totals
    assert totals["verdicts"] >= 6  # each abusive call: warned, then the final notice
    # Three abusive calls and the protect press end with the final notice.
    assert server_rows(pg, "calls", "WHERE end_reason = 'final_notice'") == 4
    assert server_rows(pg, "calls", "WHERE audio_verified = 'seal'") == 6
    assert server_rows(pg, "alerts", "WHERE kind = 'protect'") == 1


class CentralAgent(Agent):
    """``callguard run`` on kamailio with a ``[central]`` table pointing at ``server``."""

    def __init__(self, registrar, tmp, server: ServerProcess, token: str) -> None:
        super().__init__(registrar, tmp, rules_text())
        with self.config.open("a", encoding="utf-8") as f:
            f.write(f'\n[central]\nurl = "{server.url}"\ntoken = "{token}"\n'
                    f'fingerprint = "{server.fingerprint}"\naudio = "flac"\npoll_s = 2\n')


def test_a_desk_on_a_real_sip_line_killed_mid_call_syncs_everything_after_restart(
        server, pg, pbx, tmp_path):  # noqa: F811
    a = CentralAgent(pbx, tmp_path, server, server.desk("desk-sip"))
    a.start()
    try:
        closed = a.call(abuse(ABUSE_HZ))  # warned, final notice, our BYE
        assert "CALL_CLOSED" in closed["type"]
        wait_until(lambda: server_rows(pg, "calls") == 1, 60, "the first call on the server")
        a.wait_out("central: server ok · 0 waiting", 30)
        time.sleep(3.0)  # one poll (2 s): the desk's repeat-caller list now has bob
        src = write_wav(a.tmp / "long.wav", call_audio([], 40.0))
        with bob_calls_agent(pbx, src) as bob:
            bob.wait_event("CALL_ESTABLISHED", 10)
            time.sleep(4.0)
            # Flagged once (the call above): known before the answer, by count only.
            assert ("call ringing: repeat caller, 1 flagged call(s) in the last 30 days"
                    in a.out), a.out[-2000:]
            assert "bob" not in a.out.split("repeat caller")[1].splitlines()[0]
            a.kill()  # -9 in the middle of the call
            bob.hangup()
        assert server_rows(pg, "calls") == 1
        a.start()  # the interrupted call is closed, sealed, queued and delivered
        wait_until(lambda: server_rows(pg, "calls") == 2, 60, "the interrupted call")
    finally:
        a.stop()
    on_desk = store_counts(a.db)
    on_server = {key: server_rows(pg, key) for key in on_desk}
    print(json.dumps({"desk": on_desk, "server": on_server}))
    assert on_server == on_desk
    assert server_rows(pg, "calls", "WHERE end_reason = 'interrupted'") == 1
    assert server_rows(pg, "calls", "WHERE end_reason = 'final_notice'") == 1
    assert server_rows(pg, "calls", "WHERE audio_verified = 'seal'") == 2
