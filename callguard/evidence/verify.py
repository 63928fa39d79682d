"""Check an evidence package (see :mod:`callguard.evidence.package`) without the call store.

:func:`verify_package` never raises for a bad package: an unreadable file, a missing
manifest or a malformed one is reported as such (``readable`` false, exit code 2).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from callguard.evidence.keys import key_id
from callguard.evidence.package import (
    CALL,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    RECORDING,
    RULES,
    SIGNATURE,
    sign,
)

_HEX64 = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 20
_MAX_JSON = 64 << 20  # bytes: manifest.json / call.json larger than this are not parsed

# Statuses of a finding; the first group means the package cannot be trusted.
BAD = ("ALTERED", "MISSING", "EXTRA", "INVALID")
# OK, and for the signature: NOT CHECKED (no key given), UNSIGNED (none made).


@dataclass(frozen=True, slots=True)
class Finding:
    """One check's outcome: ``name`` is a file in the package, ``status`` one of OK,
    ALTERED, MISSING, EXTRA, INVALID, NOT CHECKED, UNSIGNED; ``detail`` says why."""

    name: str
    status: str
    detail: str = ""

    @property
    def bad(self) -> bool:
        return self.status in BAD

    def __str__(self) -> str:
        return f"{self.name}: {self.status}" + (f" ({self.detail})" if self.detail else "")


@dataclass(slots=True)
class VerifyReport:
    """What :func:`verify_package` found. ``ok``: readable and nothing altered, missing or
    extra, and the signature valid if a key was given. ``lines``: one per check and a final
    plain sentence. ``exit_code``: 0 intact, 1 altered, 2 unreadable."""

    path: Path
    findings: list[Finding] = field(default_factory=list)
    error: str | None = None  # why the file could not be checked at all
    signature: str = "not checked"  # valid, invalid, missing, not checked, unsigned
    call_id: int | None = None
    exported_at_iso: str | None = None
    exported_by: str | None = None

    @property
    def readable(self) -> bool:
        return self.error is None

    @property
    def ok(self) -> bool:
        return self.readable and not any(f.bad for f in self.findings)

    @property
    def exit_code(self) -> int:
        return 2 if not self.readable else 0 if self.ok else 1

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.bad]

    @property
    def summary(self) -> str:
        if not self.readable:
            return f"The file cannot be checked: {self.error}."
        if not self.ok:
            seen = dict.fromkeys(f"{f.name} {f.status.lower()}" for f in self.problems)
            what = "; ".join(seen)
            return f"The package was altered: {what}."
        intact = ("The package is intact: every file matches its manifest and the recording "
                  "matches the hash sealed when the call ended.")
        if self.signature == "valid":
            return intact + " The signature is valid: the site key holder made this package."
        if self.signature == "unsigned":
            return intact + (" It is not signed, so nothing shows who made it: someone able to"
                             " rewrite manifest.json and call.json could have made it.")
        return intact + (" The signature was NOT checked (no key given): someone able to"
                         " rewrite manifest.json and call.json could have made it.")

    @property
    def lines(self) -> list[str]:
        head = []
        if self.call_id is not None:
            head.append(f"{self.path}: call {self.call_id}, exported {self.exported_at_iso} "
                        f"by {self.exported_by}")
        return [*head, *(str(f) for f in self.findings), self.summary]

    def __str__(self) -> str:
        return "\n".join(self.lines)


def _short(digest: str) -> str:
    return digest[:12] + "…"


def _hash_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with zf.open(info) as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def _read_manifest(zf: zipfile.ZipFile) -> tuple[bytes, dict[str, Any]]:
    """manifest.json's bytes and content; ValueError saying what is wrong."""
    names = zf.namelist()
    if MANIFEST not in names:
        raise ValueError(f"it holds no {MANIFEST}: not a callguard evidence package")
    if names.count(MANIFEST) > 1:
        raise ValueError(f"it holds {MANIFEST} {names.count(MANIFEST)} times")
    if zf.getinfo(MANIFEST).file_size > _MAX_JSON:
        raise ValueError(f"{MANIFEST} is implausibly large")
    raw = zf.read(MANIFEST)
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{MANIFEST} is not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{MANIFEST} is not a callguard evidence manifest")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(f"package format version {version!r} is newer than this callguard "
                         f"understands ({FORMAT_VERSION}); upgrade callguard")
    files = manifest.get("files")
    if not isinstance(files, list) or not all(
            isinstance(e, dict) and isinstance(e.get("name"), str)
            and isinstance(e.get("sha256"), str) and isinstance(e.get("size"), int)
            for e in files):
        raise ValueError(f"{MANIFEST} has no valid file list")
    return raw, manifest


def verify_package(path: str | os.PathLike[str], key: bytes | None = None) -> VerifyReport:
    """Check the package at ``path``; with ``key`` (the site key) also its signature.

    Checks, each a line of the report: every file the manifest lists is there once with
    the SHA-256 and size it gives (OK / ALTERED / MISSING); no other file is (EXTRA);
    recording.wav's SHA-256 equals ``recording_sha256`` in call.json, the hash the store
    sealed when the call ended; rules.toml's SHA-256 equals call.json's ``rules_version``;
    with a key, manifest.sig is the HMAC-SHA256 of manifest.json (OK / INVALID / MISSING),
    without one the report says the signature was not checked.
    """
    report = VerifyReport(Path(path))
    try:
        zf = zipfile.ZipFile(report.path)
    except FileNotFoundError:
        report.error = "no such file"
        return report
    except IsADirectoryError:
        report.error = "it is a directory"
        return report
    except (zipfile.BadZipFile, OSError) as exc:
        report.error = f"it is not a zip file ({exc})"
        return report
    with zf:
        try:
            manifest_raw, manifest = _read_manifest(zf)
            _check(zf, manifest_raw, manifest, key, report)
        except (ValueError, zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            report.error = str(exc) or type(exc).__name__
    return report


def _check(zf: zipfile.ZipFile, manifest_raw: bytes, manifest: dict[str, Any],
           key: bytes | None, report: VerifyReport) -> None:
    call_id = manifest.get("call_id")
    report.call_id = call_id if isinstance(call_id, int) else None
    report.exported_at_iso = str(manifest.get("exported_at_iso"))
    report.exported_by = str(manifest.get("exported_by"))
    add = report.findings.append
    infos: dict[str, zipfile.ZipInfo] = {}
    counts = Counter(zf.namelist())
    for info in zf.infolist():
        infos[info.filename] = info  # the last of duplicates: what zipfile.read would return
    hashes: dict[str, str] = {}  # actual SHA-256 of each file read

    listed = set()
    for entry in manifest["files"]:
        name, want, size = entry["name"], entry["sha256"].lower(), entry["size"]
        listed.add(name)
        if name not in infos:
            add(Finding(name, "MISSING", "listed in the manifest, not in the package"))
            continue
        if counts[name] > 1:  # a second copy appended to the zip: which one is "the" file?
            add(Finding(name, "ALTERED", f"the package holds {counts[name]} files by this name"))
            continue
        try:
            got, got_size = _hash_member(zf, infos[name])
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            add(Finding(name, "ALTERED", f"cannot be read: {exc}"))
            continue
        hashes[name] = got
        if got != want:
            add(Finding(name, "ALTERED", f"sha256 {_short(got)} ≠ manifest {_short(want)}"))
        elif got_size != size:
            add(Finding(name, "ALTERED", f"{got_size} bytes ≠ manifest {size}"))
        else:
            add(Finding(name, "OK"))
    for name in counts:
        if name not in listed and name not in (MANIFEST, SIGNATURE):
            add(Finding(name, "EXTRA", "not listed in the manifest"))

    _check_seal(zf, infos, hashes, report)
    _check_signature(zf, infos, counts, manifest_raw, manifest, key, report)


def _check_seal(zf: zipfile.ZipFile, infos: dict[str, zipfile.ZipInfo],
                hashes: dict[str, str], report: VerifyReport) -> None:
    """recording.wav against the hash sealed at close, rules.toml against its version."""
    if CALL not in hashes:  # missing or unreadable: already reported
        return
    try:
        if infos[CALL].file_size > _MAX_JSON:
            raise ValueError("implausibly large")
        call = json.loads(zf.read(CALL).decode("utf-8"))
    except ValueError:  # also UnicodeDecodeError and JSONDecodeError
        call = None
    if not isinstance(call, dict):
        report.findings.append(Finding(CALL, "ALTERED", "not a valid call description"))
        return
    sealed = call.get("recording_sha256")
    if not isinstance(sealed, str) or not _HEX64.fullmatch(sealed):
        report.findings.append(
            Finding(CALL, "ALTERED", "no valid recording_sha256 (the hash sealed at close)"))
    elif RECORDING in hashes:
        got = hashes[RECORDING]
        _merge(report, Finding(RECORDING, "OK", "matches the manifest and the hash sealed "
                                                "when the call ended")
               if got == sealed else
               Finding(RECORDING, "ALTERED",
                       f"sha256 {_short(got)} ≠ sealed at close {_short(sealed)} in call.json"))
    version = call.get("rules_version")
    if version is None:
        if RULES in infos:
            report.findings.append(
                Finding(RULES, "EXTRA", "call.json says the call ran without rules"))
    elif RULES not in infos:
        report.findings.append(
            Finding(RULES, "MISSING", f"call.json names rules version {_short(str(version))}"))
    elif RULES in hashes:
        got = hashes[RULES]
        _merge(report, Finding(RULES, "OK", "matches the manifest and the rules_version in "
                                            "call.json")
               if got == version else
               Finding(RULES, "ALTERED", f"sha256 {_short(got)} ≠ rules_version "
                                         f"{_short(str(version))} in call.json"))


def _merge(report: VerifyReport, finding: Finding) -> None:
    """Put a second check of a file on its manifest line if that one said OK (one line per
    file when all is well), else add it as its own line."""
    for i, f in enumerate(report.findings):
        if f.name == finding.name and f.status == "OK" and not f.detail:
            report.findings[i] = finding
            return
    report.findings.append(finding)


def _check_signature(zf: zipfile.ZipFile, infos: dict[str, zipfile.ZipInfo],
                     counts: Counter[str], manifest_raw: bytes, manifest: dict[str, Any],
                     key: bytes | None, report: VerifyReport) -> None:
    add = report.findings.append
    declared = manifest.get("signature")
    declared_id = declared.get("key_id") if isinstance(declared, dict) else None
    if SIGNATURE not in infos:
        if key is not None:
            report.signature = "missing"
            add(Finding(SIGNATURE, "MISSING", "the package is not signed: it cannot be "
                        "authenticated with the key"))
        elif declared:
            report.signature = "missing"
            add(Finding(SIGNATURE, "MISSING", "manifest.json says the package was signed"))
        else:
            report.signature = "unsigned"
            add(Finding(SIGNATURE, "UNSIGNED", "the package was exported without a key"))
        return
    if key is None:
        report.signature = "not checked"
        add(Finding(SIGNATURE, "NOT CHECKED", "no key given"))
        return
    raw = (zf.read(SIGNATURE) if counts[SIGNATURE] == 1
           and infos[SIGNATURE].file_size <= 1024 else b"")
    got = raw.decode("ascii", "replace").strip().lower()
    if hmac.compare_digest(got, sign(manifest_raw, key)):
        report.signature = "valid"
        add(Finding(SIGNATURE, "OK", f"HMAC-SHA256 of manifest.json valid, key id {key_id(key)}"))
        return
    report.signature = "invalid"
    if counts[SIGNATURE] > 1:
        why = f"the package holds {counts[SIGNATURE]} signatures"
    elif declared_id and declared_id != key_id(key):
        why = (f"manifest.json was changed, or signed with another key (key id {declared_id};"
               f" this key is {key_id(key)})")
    else:
        why = "manifest.json was changed after it was signed"
    add(Finding(SIGNATURE, "INVALID", why))
