"""Fixtures shared by every test: where the third-party test photos live (never copied into the repo)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("FACEGATE_SHARED_DIR", REPO_ROOT.parent / "shared")).resolve()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED_DIR.is_dir():
        pytest.fail(f"test photos not found at {SHARED_DIR}; set FACEGATE_SHARED_DIR")
    return SHARED_DIR


@pytest.fixture(scope="session")
def faces_dir(shared_dir: Path) -> Path:
    """One folder per person, each holding several photos (labelled)."""
    return shared_dir / "faces"


@pytest.fixture(scope="session")
def faces_misc_dir(shared_dir: Path) -> Path:
    """noface_*, multi_* (several faces) and malformed_* files."""
    return shared_dir / "faces_misc"
