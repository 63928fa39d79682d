"""Evidence packages: a stored call exported as a zip, checked file by file against its
manifest, the recording against the hash sealed at close, the rules against their version
and the manifest against the site key's HMAC. Real SQLite stores in tmp_path."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest

from callguard.cli import evidence_cmd
from callguard.evidence import (
    EvidenceError,
    KeyFileError,
    export_package,
    load_or_create_key,
    read_key,
    verify_package,
)
from callguard.evidence.package import sign
from callguard.store import Store

T0 = 1_700_000_000.0  # unix epoch seconds
RATE = 8000
REMOTE = "010-1234-5678"
ABUSE = "이 새끼야 진짜"
RULES_TEXT = 'format = 1\n[[rule]]\nid = "t.saekki"\ncategory = "profanity"\nterms = ["새끼"]\n'
RULES_VERSION = hashlib.sha256(RULES_TEXT.encode("utf-8")).hexdigest()


def run(coro):
    return asyncio.run(coro)


def tone(hz: float, seconds: float) -> bytes:
    t = np.arange(int(seconds * RATE)) / RATE
    return np.rint(5000 * np.sin(2 * np.pi * hz * t)).astype("<i2").tobytes()


async def abusive_call(store: Store) -> int:
    """A 6 s inbound call: abuse at 0.5 s, warning at 1.9 s, abuse at 3.0 s, final notice at
    3.6 s, hung up by the agent at 5.0 s; reviewed once."""
    await store.ensure_ruleset(RULES_VERSION, "/etc/callguard/rules.toml", RULES_TEXT)
    cid = await store.create_call("inbound", REMOTE, "sip", T0, RULES_VERSION, RATE,
                                  counselor="kim")
    for start in range(0, 6):  # 1 s chunks, as the agent stores them
        await store.append_audio(cid, "caller", start * RATE, tone(1000, 1.0))
    await store.append_audio(cid, "counselor", 0, tone(440, 5.5))
    hit = ("t.saekki", "profanity", 2, "새끼", 2, 4, "새끼")
    await store.add_utterance(cid, "caller", 0.5, 1.6, ABUSE, "ok", hits=[hit])
    await store.add_utterance(cid, "counselor", 1.0, 1.8, "고객님 진정하세요", "ok")
    await store.add_utterance(cid, "caller", 3.0, 3.4, ABUSE, "ok", hits=[hit])
    await store.add_utterance(cid, "counselor", 4.0, 4.2, "", "rejected", reason="empty")
    await store.add_verdict(cid, 1.9, "warn", "warning", False, "warning 1/1: 1 strike(s)")
    await store.add_action(cid, 1.9, "play_prompt", "warning (1.0 s)")
    await store.add_verdict(cid, 3.6, "final", "final", True, "abuse went on")
    await store.add_action(cid, 3.6, "play_prompt", "final (1.2 s)")
    await store.add_action(cid, 5.0, "hangup", "final")
    await store.update_call(cid, flagged=True, stage="final")
    await store.end_call(cid, T0 + 6.0, 6.0, "final_notice", hung_up_by="agent")
    await store.add_review(cid, "lee", "abuse_confirmed", "욕설 확인", at=T0 + 100)
    return cid


@pytest.fixture
def stored(tmp_path):
    """(store path, call id) of one stored abusive call."""
    db = tmp_path / "calls.db"

    async def make():
        async with Store.open(db) as store:
            return await abusive_call(store)

    return db, run(make())


@pytest.fixture
def key(tmp_path) -> bytes:
    return load_or_create_key(tmp_path / "keys" / "evidence.key")


def export(db: Path, call_id: int, dest: Path, key: bytes | None, **kw) -> Path:
    async def go():
        async with Store.open(db) as store:
            return await export_package(store, call_id, dest, "lee", key, **kw)

    return run(go())


def rewrite(src: Path, dst: Path, replace: dict[str, bytes | None] | None = None,
            add: dict[str, bytes] | None = None, fix_manifest: bool = False) -> Path:
    """Copy a zip, replacing (bytes) or dropping (None) members and adding others; with
    ``fix_manifest`` the manifest's hashes and sizes are updated to the new contents, as a
    forger who knows the format would."""
    replace, add = replace or {}, add or {}
    with zipfile.ZipFile(src) as zin:
        members = {n: zin.read(n) for n in zin.namelist()}
    for name, data in replace.items():
        if data is None:
            members.pop(name)
        else:
            members[name] = data
    if fix_manifest:
        manifest = json.loads(members["manifest.json"])
        for entry in manifest["files"]:
            data = members[entry["name"]]
            entry["sha256"], entry["size"] = hashlib.sha256(data).hexdigest(), len(data)
        members["manifest.json"] = json.dumps(manifest, ensure_ascii=False).encode("utf-8")
    with zipfile.ZipFile(dst, "w") as zout:
        for name, data in [*members.items(), *add.items()]:
            zout.writestr(name, data)
    return dst


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def test_an_exported_call_holds_the_evidence_and_verifies_intact(stored, key, tmp_path):
    db, cid = stored
    out = export(db, cid, tmp_path / "out" / "call.zip", key)

    async def facts():
        async with Store.open(db) as store:
            return (await store.wav_bytes(cid), await store.get_call(cid),
                    await store.audit_log(kind="evidence_exported"))

    wav, call, audit = run(facts())
    files = members(out)
    assert set(files) == {"recording.wav", "call.json", "transcript.json", "transcript.txt",
                          "events.json", "rules.toml", "manifest.json", "manifest.sig"}
    assert files["recording.wav"] == wav
    assert hashlib.sha256(files["rules.toml"]).hexdigest() == RULES_VERSION
    info = json.loads(files["call.json"])
    assert info["recording_sha256"] == call.recording_sha256 == hashlib.sha256(wav).hexdigest()
    assert info["remote"] == REMOTE and info["counselor"] == "kim"
    assert info["started_at"] == T0 and info["ended_at"] == T0 + 6.0
    assert info["started_at_iso"].startswith("2023-11-1")
    assert info["end_reason"] == "final_notice" and info["hung_up_by"] == "agent"
    assert info["rules_version"] == RULES_VERSION and info["duration_s"] == 6.0
    transcript = json.loads(files["transcript.json"])["utterances"]
    assert [(u["leg"], u["start_s"], u["status"]) for u in transcript] == [
        ("caller", 0.5, "ok"), ("counselor", 1.0, "ok"), ("caller", 3.0, "ok"),
        ("counselor", 4.0, "rejected")]
    assert transcript[0]["hits"][0] == {
        "rule_id": "t.saekki", "category": "profanity", "severity": 2, "term": "새끼",
        "start": 2, "end": 4, "matched": "새끼"}
    text = files["transcript.txt"].decode("utf-8")
    assert "[00:00.50–00:01.60] 고객 caller: 이 【새끼】야 진짜" in text
    assert "[00:05.00] >> agent hangup: final" in text
    events = json.loads(files["events.json"])
    assert [(a["t_s"], a["kind"]) for a in events["actions"]] == [
        (1.9, "play_prompt"), (3.6, "play_prompt"), (5.0, "hangup")]
    assert [v["kind"] for v in events["verdicts"]] == ["warn", "final"]
    assert [h["t_s"] for h in events["hits"]] == [0.5, 3.0]
    assert [(r["reviewer"], r["verdict"]) for r in events["reviews"]] == [
        ("lee", "abuse_confirmed")]
    manifest = json.loads(files["manifest.json"])
    assert manifest["exported_by"] == "lee" and manifest["format_version"] == 1
    assert {e["name"]: (e["sha256"], e["size"]) for e in manifest["files"]} == {
        n: (hashlib.sha256(d).hexdigest(), len(d)) for n, d in files.items()
        if n not in ("manifest.json", "manifest.sig")}
    assert files["manifest.sig"].decode().strip() == sign(files["manifest.json"], key)
    # Logged, without personal data; no temporary file left beside the package.
    assert [(a.actor, a.kind, a.call_id) for a in audit] == [("lee", "evidence_exported", cid)]
    assert REMOTE not in audit[0].detail and "새끼" not in audit[0].detail
    assert "signed" in audit[0].detail
    assert [p.name for p in out.parent.iterdir()] == ["call.zip"]

    report = verify_package(out, key)
    assert report.ok and report.exit_code == 0 and report.signature == "valid"
    assert ("recording.wav: OK (matches the manifest and the hash sealed when the call ended)"
            in report.lines)
    assert report.lines[-1].startswith("The package is intact")
    assert "signature is valid" in report.lines[-1]


def test_without_a_key_the_report_says_the_signature_was_not_checked(stored, key, tmp_path):
    db, cid = stored
    out = export(db, cid, tmp_path / "call.zip", key)
    report = verify_package(out)
    assert report.ok and report.signature == "not checked"
    assert "manifest.sig: NOT CHECKED (no key given)" in report.lines
    assert "signature was NOT checked" in report.summary

    unsigned = export(db, cid, tmp_path / "unsigned.zip", None)
    report = verify_package(unsigned)
    assert report.ok and report.signature == "unsigned" and "not signed" in report.summary
    with_key = verify_package(unsigned, key)  # asked to authenticate: it cannot be
    assert not with_key.ok and with_key.exit_code == 1
    assert any(line.startswith("manifest.sig: MISSING") for line in with_key.lines)


def test_an_altered_recording_fails_naming_recording_wav(stored, key, tmp_path):
    db, cid = stored
    out = export(db, cid, tmp_path / "call.zip", key)
    wav = bytearray(members(out)["recording.wav"])
    wav[5000] ^= 0x40  # one bit of one sample
    bad = rewrite(out, tmp_path / "bad.zip", {"recording.wav": bytes(wav)})
    report = verify_package(bad, key)
    assert not report.ok and report.exit_code == 1
    assert any(line.startswith("recording.wav: ALTERED (sha256 ") and "≠ manifest" in line
               for line in report.lines)
    assert report.summary.startswith("The package was altered: recording.wav altered")
    assert "manifest.sig: OK" in "\n".join(report.lines)  # the manifest itself is genuine


def test_a_transcript_edited_with_its_manifest_updated_is_caught_by_the_signature(
        stored, key, tmp_path):
    db, cid = stored
    out = export(db, cid, tmp_path / "call.zip", key)
    transcript = json.loads(members(out)["transcript.json"])
    transcript["utterances"][0]["text"] = "안녕하세요"  # the caller "never swore"
    transcript["utterances"][0]["hits"] = []
    forged = rewrite(out, tmp_path / "forged.zip", fix_manifest=True, replace={
        "transcript.json": json.dumps(transcript, ensure_ascii=False).encode("utf-8")})
    without_key = verify_package(forged)
    assert without_key.ok  # every hash matches: only the key can tell
    assert "NOT checked" in without_key.summary
    report = verify_package(forged, key)
    assert not report.ok and report.exit_code == 1
    assert "manifest.sig: INVALID (manifest.json was changed after it was signed)" in report.lines
    assert "transcript.json: OK" in report.lines


def test_a_replaced_recording_with_its_manifest_updated_is_caught_by_the_sealed_hash(
        stored, key, tmp_path):
    db, cid = stored
    out = export(db, cid, tmp_path / "call.zip", key)
    wav = bytearray(members(out)["recording.wav"])
    wav[-2000:] = bytes(2000)  # the end of the call silenced
    forged = rewrite(out, tmp_path / "forged.zip", {"recording.wav": bytes(wav)},
                     fix_manifest=True)
    report = verify_package(forged)  # even without the key
    assert not report.ok
    assert any(line.startswith("recording.wav: ALTERED (sha256 ")
               and "≠ sealed at close" in line for line in report.lines)
    assert not verify_package(forged, key).ok


def test_rules_swapped_with_the_manifest_updated_do_not_match_their_version(
        stored, tmp_path):
    db, cid = stored
    out = export(db, cid, tmp_path / "call.zip", None)
    forged = rewrite(out, tmp_path / "forged.zip", {"rules.toml": b"format = 1\n"},
                     fix_manifest=True)
    report = verify_package(forged)
    assert not report.ok
    assert any(line.startswith("rules.toml: ALTERED") and "rules_version" in line
               for line in report.lines)


def test_an_extra_file_and_a_missing_file_are_named(stored, key, tmp_path):
    db, cid = stored
    out = export(db, cid, tmp_path / "call.zip", key)
    extra = rewrite(out, tmp_path / "extra.zip", add={"note.txt": b"added later"})
    report = verify_package(extra, key)
    assert not report.ok and "note.txt: EXTRA (not listed in the manifest)" in report.lines
    missing = rewrite(out, tmp_path / "missing.zip", {"events.json": None})
    report = verify_package(missing, key)
    assert not report.ok
    assert "events.json: MISSING (listed in the manifest, not in the package)" in report.lines
    assert report.summary == "The package was altered: events.json missing."


def test_a_second_copy_appended_under_the_same_name_is_caught(stored, tmp_path):
    db, cid = stored
    out = export(db, cid, tmp_path / "call.zip", None)
    dup = tmp_path / "dup.zip"
    dup.write_bytes(out.read_bytes())
    with pytest.warns(UserWarning, match="Duplicate name"), zipfile.ZipFile(dup, "a") as zf:
        zf.writestr("recording.wav", b"RIFF....")
    report = verify_package(dup)
    assert not report.ok
    assert "recording.wav: ALTERED (the package holds 2 files by this name)" in report.lines


def test_not_a_package_is_a_clear_error_not_a_traceback(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    report = verify_package(text)
    assert not report.readable and report.exit_code == 2
    assert report.summary.startswith("The file cannot be checked: it is not a zip file")
    nothing = verify_package(tmp_path / "nope.zip")
    assert nothing.exit_code == 2 and nothing.summary == "The file cannot be checked: no such file."
    plain = tmp_path / "plain.zip"
    with zipfile.ZipFile(plain, "w") as zf:
        zf.writestr("a.txt", "x")
    report = verify_package(plain)
    assert report.exit_code == 2 and "no manifest.json" in report.summary
    broken = tmp_path / "broken.zip"
    with zipfile.ZipFile(broken, "w") as zf:
        zf.writestr("manifest.json", "{not json")
    assert "not valid JSON" in verify_package(broken).summary


def test_a_call_still_going_on_or_with_its_audio_deleted_is_not_exported(tmp_path):
    db = tmp_path / "calls.db"

    async def go():
        async with Store.open(db) as store:
            cid = await abusive_call(store)
            running = await store.create_call("inbound", REMOTE, "sip", T0, None)
            errors = []
            for call_id in (running, cid):
                if call_id == cid:
                    await store.delete_recording(cid, "admin", "admin")
                try:
                    await export_package(store, call_id, tmp_path / "x.zip", "lee", None)
                except EvidenceError as exc:
                    errors.append(str(exc))
            return errors, await store.audit_log(kind="evidence_exported")

    errors, audit = run(go())
    assert "has not ended" in errors[0]
    assert "no longer matches the SHA-256 sealed" in errors[1]
    assert audit == [] and not (tmp_path / "x.zip").exists()


def test_the_site_key_is_created_once_private_and_reused(tmp_path):
    path = tmp_path / "site" / "evidence.key"
    key = load_or_create_key(path)
    assert len(key) == 32 and path.read_bytes() == key
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(path) == key == read_key(path)
    assert [p.name for p in path.parent.iterdir()] == ["evidence.key"]
    (tmp_path / "short.key").write_bytes(b"abc")
    with pytest.raises(KeyFileError, match="expected 32 bytes, found 3"):
        read_key(tmp_path / "short.key")
    with pytest.raises(KeyFileError, match="no such key file"):
        read_key(tmp_path / "none.key")


def cli(*argv: str) -> int:
    """``callguard export|verify ...`` through this module's own argparse registration."""
    parser = argparse.ArgumentParser(prog="callguard")
    evidence_cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args([str(a) for a in argv])
    return args.func(args)


def test_cli_export_signs_with_the_site_key_beside_the_store_and_verify_exits(
        stored, tmp_path, capsys):
    db, cid = stored
    out = tmp_path / "call.zip"
    assert cli("export", cid, "--out", out, "--store", db, "--by", "park") == 0
    said = capsys.readouterr().out
    site_key = db.parent / "evidence.key"
    assert f"call {cid} exported to {out}, signed with {site_key}" in said
    assert "The package is intact" in said
    assert json.loads(members(out)["manifest.json"])["exported_by"] == "park"

    assert cli("verify", out, "--key", site_key) == 0
    said = capsys.readouterr().out
    assert "manifest.sig: OK" in said and said.rstrip().endswith(
        "The signature is valid: the site key holder made this package.")

    other = tmp_path / "other.key"
    load_or_create_key(other)
    assert cli("verify", out, "--key", other) == 1
    assert "manifest.sig: INVALID (manifest.json was changed, or signed with another key" in (
        capsys.readouterr().out)

    wav = bytearray(members(out)["recording.wav"])
    wav[-1] ^= 1
    bad = rewrite(out, tmp_path / "bad.zip", {"recording.wav": bytes(wav)})
    assert cli("verify", bad) == 1
    assert "The package was altered: recording.wav altered" in capsys.readouterr().out

    (tmp_path / "junk.zip").write_bytes(b"PK\x03\x04 not really")
    assert cli("verify", tmp_path / "junk.zip") == 2
    assert "The file cannot be checked: it is not a zip file" in capsys.readouterr().out
    assert cli("verify", out, "--key", tmp_path / "absent.key") == 2
    assert "no such key file" in capsys.readouterr().err


def test_cli_export_errors(stored, tmp_path, capsys):
    db, cid = stored
    assert cli("export", cid, "--out", tmp_path / "a.zip", "--store", tmp_path / "no.db") == 2
    assert "no call store at" in capsys.readouterr().err
    assert not (tmp_path / "no.db").exists()
    assert cli("export", 999, "--out", tmp_path / "a.zip", "--store", db, "--unsigned") == 1
    assert "no call with id 999" in capsys.readouterr().err
    assert cli("export", cid, "--out", tmp_path / "a.zip", "--store", db,
               "--key", tmp_path / "typo.key") == 2
    assert "no such key file" in capsys.readouterr().err
    assert not (tmp_path / "typo.key").exists() and not (tmp_path / "a.zip").exists()
    assert cli("export", cid, "--out", tmp_path / "u.zip", "--store", db, "--unsigned") == 0
    said = capsys.readouterr().out
    assert "unsigned" in said and "It is not signed" in said
    assert not (db.parent / "evidence.key").exists()
