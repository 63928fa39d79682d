"""Shared fixtures. Kiwi loads once per test session (1-2.5 s)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

# The central server's fixtures: a private PostgreSQL per module and the real server process.
from centralkit import pg, server  # noqa: F401

from callguard.text.analyzer import KiwiAnalyzer, kiwi_analyzer

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DATA = SHARED / "data"
DEFAULT_RULES = ROOT / "rules" / "default.toml"


@pytest.fixture(scope="session")
def kiwi() -> KiwiAnalyzer:
    return kiwi_analyzer()


@pytest.fixture
def write_rules(tmp_path: Path):
    """Write a rules file from an indented TOML snippet; returns its path."""

    def write(body: str, name: str = "rules.toml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(body).lstrip("\n"), encoding="utf-8")
        return path

    return write


def require_shared() -> None:
    """Skip with a clear reason when ../shared/data is not beside the checkout."""
    if not DATA.is_dir():
        pytest.skip(f"test data not found at {DATA} (clone next to ../shared)")
