"""The rules-TOML text that the fake-line, session, live-call and benchmark tests write to
``rules.toml``, built in one place: each test names only what its rules are about (the
name, the duration limits, the prompts, the rules), and the text of each comes out the same
way, one ``key = value`` a line and no blank lines.

Values: a ``str`` is written as a TOML basic string (durations such as ``"10m"`` are
strings), an ``int`` as a number, a ``list`` as an inline array of those.
"""

from __future__ import annotations

ONE_STRIKE = {"window": "2m", "cooldown": "1s", "notice_at": 1, "warn_at": 1, "warnings": 1,
              "final_at": 1}
"""Escalation where the first hit warns and the next one ends the call (one warning)."""

PROMPTS = {"warning": ("warning.wav", "경고"), "final": ("final.wav", "종료"),
           "duration_notice": ("warning.wav", "시간 안내"),
           "duration_final": ("final.wav", "시간 종료")}
"""Prompt key -> (recording, text), Korean, on the two recordings ``warning.wav`` and
``final.wav`` beside the rules file."""

SAEKKI = {"id": "t.saekki", "category": "profanity", "terms": ["새끼"]}
"""The rule the fake recogniser's abuse sentence ("이 새끼야") hits."""


def prompts(*keys: str) -> dict[str, tuple[str, str]]:
    """The :data:`PROMPTS` of ``keys``, in that order."""
    return {key: PROMPTS[key] for key in keys}


def _value(v: str | int | list) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(v)


def _table(header: str, keys: dict) -> list[str]:
    return [header, *(f"{k} = {_value(v)}" for k, v in keys.items())]


def rules_toml(name: str, *, rules: list[dict], prompts: dict[str, tuple[str, str]],
               inbound: dict | None = None, outbound: dict | None = None,
               escalation: dict = ONE_STRIKE) -> str:
    """A ``format = 1`` rules file named ``name``: ``[escalation]``, then
    ``[duration.inbound]`` and ``[duration.outbound]`` when given (an empty dict writes
    the table with no keys), ``[prompts.<key>]`` with ``file`` and ``text`` per prompt, and
    a ``[[rule]]`` per dict of ``rules`` (its keys in their order)."""
    lines = ["format = 1", f"name = {_value(name)}", *_table("[escalation]", escalation)]
    for direction, limits in (("inbound", inbound), ("outbound", outbound)):
        if limits is not None:
            lines += _table(f"[duration.{direction}]", limits)
    for key, (file, text) in prompts.items():
        lines += _table(f"[prompts.{key}]", {"file": file, "text": text})
    for rule in rules:
        lines += _table("[[rule]]", rule)
    return "\n".join(lines) + "\n"
