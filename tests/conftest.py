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


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tiers: `unit` is the fast tier (`pytest -m unit`, under 20 s). A test marked `slow` (real models over
    many photos) or `integration` (moto, subprocesses, sockets) is never in it, even in a module marked `unit`
    as a whole: the module's mark moves onto its other tests. `make test` runs every tier."""
    inherited = [
        item for item in items if any(m.name == "unit" for node in item.listchain()[:-1] for m in node.own_markers)
    ]
    for item in inherited:
        for node in item.listchain()[:-1]:
            node.own_markers[:] = [m for m in node.own_markers if m.name != "unit"]
    for item in inherited:
        if item.get_closest_marker("slow") is None and item.get_closest_marker("integration") is None:
            item.add_marker(pytest.mark.unit)
