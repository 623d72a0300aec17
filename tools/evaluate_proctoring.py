"""Evaluate proctoring incidents on composed sessions (tools/compose_sessions.py) and clean clips; the last line
printed is JSON.

Usage: python tools/evaluate_proctoring.py [../shared] [--seeds 4] [--dense-seeds 2] [--quick]

* Composed sessions (session_a with every kind of segment planted, seeded), at the capture policy (one frame every
  2 s, batches of 5 frames) and at every frame of 5 fps (batches of 25): per incident type, precision (found
  incidents that match a planted one) and recall (planted incidents found). A found incident matches a planted
  one when both have the same type and overlap in time (within one capture interval).
* Clean sessions: session_a alone and every other bona fide clip alone (its own person enrolled), every frame and
  one frame every 2 s: incidents per hour (all, and those that blame the candidate, i.e. not TECHNICAL), and
  different_person found (the target is none).
* The machine (CPU model, cores) and ms per frame.
The state goes through JSON between batches, as the service stores it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "layers" / "model"))
sys.path.insert(0, str(REPO / "tools"))

from compose_sessions import Session, clean_sessions, compose  # noqa: E402

from faceengine import FaceEngine  # noqa: E402
from faceengine.proctor import INCIDENT_TYPES, TECHNICAL, Incident, merge_incidents  # noqa: E402


def machine() -> dict[str, Any]:
    """CPU model and core count of this machine."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version()}


def run_session(engine: FaceEngine, session: Session, batch: int) -> tuple[list[Incident], float]:
    """Proctor a whole session in batches (state through JSON); its incidents and the ms per frame."""
    template = engine.enrol(session.enrolment)
    state: dict[str, Any] | None = None
    incidents: list[Incident] = []
    started = time.perf_counter()
    for b in range(0, len(session.frames), batch):
        update = engine.proctor(state, session.frames[b : b + batch], session.timestamps_ms[b : b + batch], template)
        state = json.loads(json.dumps(update.state, allow_nan=False))
        incidents = merge_incidents(incidents, update.incidents)
    assert state is not None
    incidents = merge_incidents(incidents, engine.end_proctoring(state))
    ms = (time.perf_counter() - started) * 1000.0 / max(1, len(session.frames))
    return incidents, ms


def overlaps(found: Incident, planted: dict[str, Any], tolerance_ms: float) -> bool:
    """Same type and overlapping in time (within the tolerance)."""
    return (
        found.type == planted["type"]
        and found.start_ts <= planted["end_ts"] + tolerance_ms
        and planted["start_ts"] <= found.end_ts + tolerance_ms
    )


def score(results: list[tuple[Session, list[Incident]]], tolerance_ms: float) -> dict[str, dict[str, Any]]:
    """Per type: planted, found, matched both ways, precision and recall (None when undefined)."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    misses: list[dict[str, Any]] = []
    extras: list[dict[str, Any]] = []
    for session, found in results:
        for p in session.planted:
            counts[p["type"]]["planted"] += 1
            if any(overlaps(f, p, tolerance_ms) for f in found):
                counts[p["type"]]["recalled"] += 1
            else:
                misses.append({"session": session.name, **p})
        for f in found:
            counts[f.type]["found"] += 1
            if any(overlaps(f, p, tolerance_ms) for p in session.planted):
                counts[f.type]["correct"] += 1
            else:
                extras.append({"session": session.name, **f.to_dict()})
    out: dict[str, dict[str, Any]] = {}
    for kind in INCIDENT_TYPES:
        c = counts[kind]
        out[kind] = {
            "planted": c["planted"],
            "found": c["found"],
            "precision": round(c["correct"] / c["found"], 3) if c["found"] else None,
            "recall": round(c["recalled"] / c["planted"], 3) if c["planted"] else None,
        }
    out["_misses"] = {"list": misses}
    out["_false"] = {"list": extras}
    return out


def print_table(title: str, table: dict[str, dict[str, Any]]) -> None:
    print(f"\n{title}")
    print(f"  {'type':28s} {'planted':>7s} {'found':>6s} {'precision':>9s} {'recall':>7s}")
    for kind in INCIDENT_TYPES:
        r = table[kind]
        fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
        print(f"  {kind:28s} {r['planted']:7d} {r['found']:6d} {fmt(r['precision']):>9s} {fmt(r['recall']):>7s}")
    for m in table["_misses"]["list"]:
        print(
            f"  MISSED {m['session']} {m['type']} {m['start_ts'] / 1000:.0f}-{m['end_ts'] / 1000:.0f} s ({m['kind']})"
        )
    for f in table["_false"]["list"]:
        print(f"  UNPLANTED {f['session']} {f['type']} {f['start_ts'] / 1000:.0f}-{f['end_ts'] / 1000:.0f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("shared", nargs="?", type=Path, default=REPO.parent / "shared")
    ap.add_argument("--seeds", type=int, default=4, help="composed sessions at one frame every 2 s")
    ap.add_argument("--dense-seeds", type=int, default=2, help="composed sessions at every frame (5 fps)")
    ap.add_argument("--first-seed", type=int, default=0, help="seeds first-seed, first-seed + 1, ...")
    ap.add_argument("--no-clean", action="store_true", help="skip the clean sessions")
    ap.add_argument("--quick", action="store_true", help="2 sparse and 0 dense composed sessions")
    args = ap.parse_args()
    if args.quick:
        args.seeds, args.dense_seeds = 2, 0
    engine = FaceEngine.load()
    info = machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores, Python {info['python']}; one thread")
    print(f"engine {engine.model_id}@{engine.model_version}; proctoring thresholds: manifest `proctoring`")
    summary: dict[str, Any] = {
        "machine": info,
        "model": f"{engine.model_id}@{engine.model_version}",
        "seeds": [args.first_seed, args.first_seed + max(args.seeds, args.dense_seeds) - 1],
    }
    ms_all: list[float] = []
    for label, seeds, step, batch in (("every_2s", args.seeds, 10, 5), ("every_frame_5fps", args.dense_seeds, 1, 25)):
        if seeds <= 0:
            continue
        results = []
        for seed in range(args.first_seed, args.first_seed + seeds):
            session = compose(args.shared, engine, seed, step)
            found, ms = run_session(engine, session, batch)
            ms_all.append(ms)
            results.append((session, found))
        table = score(results, tolerance_ms=step * 200.0)
        print_table(f"composed sessions, {label}: {seeds} x 200 s, batches of {batch}", table)
        summary[f"composed_{label}"] = {k: v for k, v in table.items() if not k.startswith("_")}
        summary[f"composed_{label}"]["missed"] = len(table["_misses"]["list"])
        summary[f"composed_{label}"]["unplanted"] = len(table["_false"]["list"])
    clean: dict[str, Any] = {"sessions": [], "hours": 0.0, "incidents": 0, "blaming": 0, "different_person": 0}
    for step_s, batch in () if args.no_clean else ((None, 25), (2.0, 5)):
        for session in clean_sessions(args.shared, engine, step_s):
            found, ms = run_session(engine, session, batch)
            ms_all.append(ms)
            blaming = [f for f in found if f.type not in TECHNICAL]
            clean["sessions"].append(
                {"name": session.name, "seconds": round(session.duration_s, 1), "incidents": [f.type for f in found]}
            )
            clean["hours"] += session.duration_s / 3600.0
            clean["incidents"] += len(found)
            clean["blaming"] += len(blaming)
            clean["different_person"] += sum(f.type == "different_person" for f in found)
    hours = max(clean["hours"], 1e-9)
    clean["per_hour"] = round(clean["incidents"] / hours, 2)
    clean["blaming_per_hour"] = round(clean["blaming"] / hours, 2)
    clean["hours"] = round(clean["hours"], 4)
    print(f"\nclean sessions ({clean['hours'] * 3600:.0f} s of footage in {len(clean['sessions'])} sessions):")
    for s in clean["sessions"]:
        print(f"  {s['name']:28s} {s['seconds']:6.1f} s  incidents: {', '.join(s['incidents']) or 'none'}")
    print(
        f"  false alarms per hour: {clean['per_hour']} (all), {clean['blaming_per_hour']} (blaming the candidate); "
        f"different_person: {clean['different_person']}"
    )
    print(f"ms per frame (whole sessions, decode included): mean {sum(ms_all) / max(1, len(ms_all)):.1f}")
    summary["clean"] = clean
    summary["ms_per_frame_mean"] = round(sum(ms_all) / max(1, len(ms_all)), 2)
    print(json.dumps(summary, separators=(",", ":")))


if __name__ == "__main__":
    main()
