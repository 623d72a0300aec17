"""Fixtures shared by every test: where the third-party test photos live (never copied into the repo), the
people among them the real engine can enrol, and DynamoDB's atomicity for tests that race conditional
writes against moto."""

from __future__ import annotations

import os
from collections.abc import Iterator
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


@pytest.fixture(scope="session")
def enrollable_people(faces_dir: Path) -> list[list[Path]]:
    """Eight people with at least three photos the real engine accepts (some LFW photos rightly show a
    second face and are refused), in a stable order."""
    from faceengine import FaceEngine
    from faceengine.errors import FaceEngineError

    engine = FaceEngine.load()
    chosen = []
    for folder in sorted(p for p in faces_dir.iterdir() if p.is_dir()):
        good = []
        for photo in sorted(folder.iterdir()):
            try:
                engine.enrol(photo.read_bytes())
            except FaceEngineError:
                continue
            good.append(photo)
        if len(good) >= 3:
            chosen.append(good)
        if len(chosen) == 8:
            return chosen
    raise AssertionError("not enough people with three usable photos")


@pytest.fixture
def atomic_dynamodb() -> Iterator[None]:
    """DynamoDB applies each request atomically (a conditional write's condition and the write are one
    step; a transaction is all or nothing); moto's backend does not lock, so two threads could both pass
    one condition, a moto artefact. For the test's duration moto handles one DynamoDB request at a time,
    in-process as in the emulator of `make run` (the one mechanism: localcloud.emulator). Our own code
    still interleaves freely between its requests (a read, then a write), as on AWS."""
    from localcloud.emulator import dynamodb_requests_one_at_a_time

    with dynamodb_requests_one_at_a_time():
        yield


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
