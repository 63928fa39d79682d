"""Benchmark: time to match transcript-length sentences against a rules file.

Prints JSON. The live agent matches one utterance at a time as it is transcribed, so the
headline figure (``total_s``) matches sentences one by one; ``batch_total_s`` is the bulk
path used by ``rules eval``. Kiwi's one-off load and the rule compilation are reported
separately. Sentences are generated from call-center templates (deterministic), or drawn
from a ``text|label`` file given with ``--dataset``.
"""

from __future__ import annotations

import os
import platform
import random
import statistics
import time
from pathlib import Path

from callguard.rules.loader import load_rules
from callguard.rules.matcher import Matcher

_OPENERS = ["아니 그러니까", "제가 지난주에", "여보세요", "잠깐만요", "네 그런데",
            "아까 말씀드린 것처럼", "솔직히 말해서", "그게 아니라", "고객센터에서", "담당자분이"]
_MIDDLES = ["주문한 물건이 아직 안 왔는데", "요금이 두 번 빠져나갔는데", "환불을 해 준다고 했는데",
            "전화를 세 번이나 했는데", "인터넷이 계속 끊기는데", "배송 조회가 안 되는데",
            "카드 결제가 취소가 안 되는데", "상담원 연결이 너무 오래 걸리는데"]
_ENDINGS = ["도대체 언제 해결해 주실 거예요", "확인 좀 해 주세요", "이게 말이 됩니까",
            "책임자 바꿔 주세요", "너 진짜 죽여 버린다", "씨발 장난하냐", "미친놈 아니야 이거",
            "집 주소 알아내서 찾아간다", "시발점부터 다시 설명해 주세요", "감사합니다 수고하세요"]


def sentences(n: int, seed: int = 7) -> list[str]:
    """``n`` transcript-like Korean sentences (about 25-45 characters each)."""
    rng = random.Random(seed)
    return [f"{rng.choice(_OPENERS)} {rng.choice(_MIDDLES)} {rng.choice(_ENDINGS)}"
            for _ in range(n)]


def _from_dataset(path: Path, n: int) -> list[str]:
    texts = [line.rpartition("|")[0] or line for line in
             path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [texts[i % len(texts)] for i in range(n)]


def run(rules: Path, n: int = 1000, dataset: Path | None = None) -> dict:
    texts = _from_dataset(dataset, n) if dataset else sentences(n)
    t0 = time.perf_counter()
    result = load_rules(rules)
    t1 = time.perf_counter()
    matcher = Matcher(result.ruleset)
    t2 = time.perf_counter()
    matcher.match("워밍업 문장입니다")  # first call pays lazy initialisation inside Kiwi
    per: list[float] = []
    hits = 0
    start = time.perf_counter()
    for text in texts:
        s = time.perf_counter()
        hits += len(matcher.match(text).hits)
        per.append(time.perf_counter() - s)
    total = time.perf_counter() - start
    b = time.perf_counter()
    matcher.match_many(texts)
    batch = time.perf_counter() - b
    per.sort()
    return {
        "benchmark": "rules_match",
        "rules": str(rules),
        "rules_version": result.ruleset.version[:12],
        "rules_enabled": len(result.ruleset.enabled_rules),
        "terms": sum(len(r.terms) for r in result.ruleset.enabled_rules),
        "sentences": len(texts),
        "mean_chars": round(statistics.fmean(len(t) for t in texts), 1),
        "load_and_validate_s": round(t1 - t0, 3),
        "compile_s": round(t2 - t1, 3),
        "total_s": round(total, 4),
        "per_sentence_ms_p50": round(per[len(per) // 2] * 1000, 3),
        "per_sentence_ms_p95": round(per[int(len(per) * 0.95)] * 1000, 3),
        "per_sentence_ms_max": round(per[-1] * 1000, 3),
        "batch_total_s": round(batch, 4),
        "hits": hits,
        "target_total_s": 1.0,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
    }
