"""The arithmetic and parsing of tools/bench_coldstart.py: phases from monotonic stamps, p50 / max, the
rotation of functions across runs, `python -X importtime` rows and import chains, cProfile summaries."""

from __future__ import annotations

import subprocess
import sys

import pytest
from bench_coldstart import (
    CPU,
    FUNCTIONS,
    IMPORTED_MARKER,
    IMPORTING_MARKER,
    WALL,
    ImportRow,
    format_table,
    import_chain,
    parse_importtime,
    per_package,
    phases_ms,
    profile_summary,
    rotated,
    split_phases,
    summarise,
    top_cumulative,
    top_self,
)

pytestmark = pytest.mark.unit

MS = 1_000_000  # ns

# As CPython prints it: a module after the modules it imported, two spaces of indent per level.
IMPORTTIME = """\
import time: self [us] | cumulative | imported package
import time:       100 |        100 |   _json
import time:       300 |        400 | json
import time:      5000 |       5000 |       numpy._core
import time:      2000 |       7000 |     numpy
import time:       700 |       7700 |   facegate.services.gallery
import time:       300 |       8000 | facegate.wiring
import time:       900 |        900 | boto3
"""


def test_phases_are_read_from_the_stamps_of_one_clock_and_total_is_their_sum() -> None:
    # Given a child spawned at 1000 ms that started at 1020, imported by 1520, loaded the engine by 1720,
    # answered the first request by 2020 and a second one 50 ms later; its CPU clock ([1] of each stamp)
    # ran slower (it waited for the emulator)
    result = {
        "started": [1020 * MS, 15 * MS],
        "imported": [1520 * MS, 415 * MS],
        "engine": [[1520 * MS, 415 * MS], [1720 * MS, 600 * MS]],
        "requests": [[[1720 * MS, 600 * MS], [2020 * MS, 700 * MS]], [[2020 * MS, 700 * MS], [2070 * MS, 710 * MS]]],
    }
    # When the phases are computed on either clock
    wall = phases_ms(1000 * MS, result, WALL)
    cpu = phases_ms(0, result, CPU)
    # Then each is the difference of its stamps, the warm request is apart, and total adds the cold phases
    assert wall == {
        "interpreter": 20.0,
        "import": 500.0,
        "engine": 200.0,
        "first_request": 300.0,
        "warm_request": 50.0,
        "total": 1020.0,
    }
    # A process's CPU time starts at 0 when it starts.
    assert cpu == {
        "interpreter": 15.0,
        "import": 400.0,
        "engine": 185.0,
        "first_request": 100.0,
        "warm_request": 10.0,
        "total": 700.0,
    }


def test_a_function_without_the_engine_has_no_engine_phase() -> None:
    result = {
        "started": [5 * MS, 0],
        "imported": [105 * MS, 0],
        "engine": None,
        "requests": [[[106 * MS, 0], [206 * MS, 0]]],
    }
    phases = phases_ms(0, result)
    assert phases["engine"] is None and phases["warm_request"] is None
    assert phases["total"] == 205.0  # 5 + 100 + 100: the event read between import and request is left out


def test_summary_is_the_median_and_the_maximum_of_each_phase() -> None:
    samples = [{"interpreter": v, "import": 10 * v, "engine": None} for v in (30.0, 10.0, 20.0, 90.0)]
    summary = summarise(samples)
    assert summary["interpreter"] == {"p50_ms": 25.0, "max_ms": 90.0}  # median of 10, 20, 30, 90
    assert summary["import"] == {"p50_ms": 250.0, "max_ms": 900.0}
    assert summary["engine"] is None and summary["total"] is None  # never measured


def test_every_function_takes_every_position_once_over_as_many_runs() -> None:
    orders = [rotated(FUNCTIONS, run) for run in range(len(FUNCTIONS))]
    assert all(sorted(order) == sorted(FUNCTIONS) for order in orders)
    for position in range(len(FUNCTIONS)):
        assert sorted(order[position] for order in orders) == sorted(FUNCTIONS)
    assert rotated(FUNCTIONS, len(FUNCTIONS)) == list(FUNCTIONS)


def test_importtime_rows_keep_times_and_nesting() -> None:
    rows = parse_importtime(IMPORTTIME)
    assert rows[0] == ImportRow("_json", 100, 100, 1)
    assert rows[2] == ImportRow("numpy._core", 5000, 5000, 3)
    assert [r.module for r in rows if r.depth == 0] == ["json", "facegate.wiring", "boto3"]
    assert len(rows) == 7  # the header is not a row


def test_import_chain_names_who_pulled_a_module_in() -> None:
    rows = parse_importtime(IMPORTTIME)
    assert import_chain(rows, "numpy") == ["facegate.wiring", "facegate.services.gallery", "numpy"]
    assert import_chain(rows, "numpy._core") == ["facegate.wiring", "facegate.services.gallery", "numpy", "numpy._core"]
    assert import_chain(rows, "boto3") == ["boto3"]
    assert import_chain(rows, "onnxruntime") is None


def test_import_chain_of_real_importtime_output() -> None:
    # Guards the parser against the format of the interpreter that runs the benchmark.
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import json"], capture_output=True, text=True, check=True
    )
    rows = parse_importtime(out.stderr)
    assert import_chain(rows, "json.decoder") == ["json", "json.decoder"]
    json_row = next(r for r in rows if r.module == "json")
    assert json_row.cumulative_us >= json_row.self_us > 0


def test_heaviest_imports_cumulative_self_and_per_package() -> None:
    rows = parse_importtime(IMPORTTIME)
    assert [r.module for r in top_cumulative(rows, 3)] == ["facegate.wiring", "facegate.services.gallery", "numpy"]
    assert [r.module for r in top_self(rows, 2)] == ["numpy._core", "numpy"]
    # Self times add up per top-level package without counting a child twice.
    assert per_package(rows, 3) == [("numpy", 7000), ("facegate", 1000), ("boto3", 900)]


def test_stderr_splits_into_startup_handler_import_and_requests() -> None:
    stderr = f"import time: 1 | 1 | site\n{IMPORTING_MARKER}\nimport time: 2 | 2 | boto3\n{IMPORTED_MARKER}\nwarning\n"
    startup, handler, requests = split_phases(stderr)
    assert [r.module for r in parse_importtime(startup)] == ["site"]
    assert [r.module for r in parse_importtime(handler)] == ["boto3"]
    assert parse_importtime(requests) == [] and "warning" in requests
    with pytest.raises(ValueError, match="never finished"):
        split_phases(f"{IMPORTING_MARKER}\ncrashed")


def test_profile_summary_counts_sessions_clients_and_service_models() -> None:
    # cProfile's table: (file, line, function) -> (primitive calls, calls, self s, cumulative s, callers)
    botocore = "/venv/site-packages/botocore"
    stats = {
        ("/x/functions/fallback/app.py", 161, "lambda_handler"): (1, 1, 0.0, 0.9, {}),
        (f"{botocore}/session.py", 163, "_register_components"): (3, 3, 0.0, 0.01, {}),
        (f"{botocore}/session.py", 847, "create_client"): (4, 4, 0.0, 0.6, {}),
        (f"{botocore}/loaders.py", 376, "load_service_model"): (8, 8, 0.0, 0.3, {}),
        ("/x/layers/shared/facegate/fallback/services.py", 319, "start"): (1, 1, 0.0, 0.7, {}),
        ("/x/layers/shared/facegate/hashing.py", 10, "ref"): (2, 2, 0.0, 0.001, {}),
    }
    found = profile_summary(stats, n=1)
    assert found["total_ms"] == pytest.approx(900.0)
    assert (found["botocore_sessions"], found["clients_created"], found["service_models_loaded"]) == (3, 4, 8)
    assert found["clients_ms"] == pytest.approx(600.0)
    assert found["service_models_ms"] == pytest.approx(300.0)
    assert found["own_top_cumulative"] == [{"function": "fallback/services.py:start", "cumulative_ms": 700.0}]


def test_table_marks_phases_a_function_does_not_have() -> None:
    summary = {p: {"p50_ms": 12.3, "max_ms": 45.6} for p in ("interpreter", "import", "first_request", "total")}
    table = format_table({"consent": {**summary, "engine": None, "warm_request": None}})
    assert table.splitlines()[-1] == "| consent | 12 / 46 | 12 / 46 | - | 12 / 46 | 12 / 46 | - |"
