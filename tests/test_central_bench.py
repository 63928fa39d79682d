"""The central-server benchmark, tiny (issue 14, Benchmark): three desks, two short calls
each, 2,000 calls in PostgreSQL. It must run end to end against the real server process and
PostgreSQL and print JSON with every figure; no speed is asserted (the full run is
``python3 -m callguard.bench.central_bench --json``)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_the_central_benchmark_runs_small_and_reports_every_figure():
    run = subprocess.run(
        [sys.executable, "-m", "callguard.bench.central_bench", "--desks", "3",
         "--calls-per-desk", "2", "--rows", "2000", "--min-call-s", "20", "--max-call-s",
         "40", "--blobs", "2", "--window-s", "6", "--queries", "10", "--audio-call-s", "30",
         "--backlog", "2", "--json"], capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    print(json.dumps({k: out[k] for k in ("audio", "ingest", "targets")}, ensure_ascii=False))

    audio = out["audio"]
    assert audio["raw_pcm16_stereo_8k_bytes_per_call_hour"] == 115_200_000
    for codec in ("opus", "flac"):
        assert 0 < audio[codec]["bytes_per_call_hour"] < 115_200_000
        assert audio[codec]["decoded_frames_match"]
    assert audio["opus"]["bytes_per_s"] < audio["flac"]["bytes_per_s"]
    granule = audio["opus"]["frames_from_ogg_granule"]
    assert abs(granule["frames"] - granule["decoded_frames"]) <= 160

    ingest = out["ingest"]
    assert ingest["desks"] == 3 and ingest["calls_planned"] == 6
    assert ingest["calls_accepted"] == 6 and ingest["calls_failed"] == 0, ingest["errors"]
    catch_up = ingest["catch_up"]
    assert catch_up["calls_accepted"] == 2 and catch_up["calls_failed"] == 0
    assert ingest["server_counts"]["calls"] == 8
    assert ingest["server_counts"]["desks_with_calls"] == 3
    assert ingest["server_counts"]["alerts"] == (ingest["alerts_accepted"]
                                                 + catch_up["alerts_accepted"])
    assert ingest["server_counts"]["utterances"] > 6
    assert ingest["calls_per_s"] > 0
    lag = ingest["sync_lag_s"]
    assert lag["n"] == 6 and 0 <= lag["p50"] <= lag["p95"] <= lag["max"]
    assert ingest["server"]["rss_mb_peak"] > 10 and ingest["server"]["cpu_s"] > 0

    query = out["query"]
    assert query["calls_total"] == 2000 and query["calls_loaded"] == 1992
    assert 0.05 < query["flagged_share"] < 0.2
    for phase in ("as_migrated", "with_candidate_indexes"):
        latency = query[phase]["latency_ms"]
        for kind in ("list_flagged_desk", "call_detail", "call_detail_ingested"):
            assert latency[kind]["n"] > 0 and 0 < latency[kind]["p50"] <= latency[kind]["p95"]
        assert any("Execution Time" in line
                   for line in query[phase]["explain"]["list_flagged_desk"])
    assert set(out["targets"]) >= {"sync_lag_p95_met", "query_p95_met", "opus_met"}
    assert out["server_log_errors"] == 0
