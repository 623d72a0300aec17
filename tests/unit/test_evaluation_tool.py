"""The arithmetic of tools/evaluate.py: pairs, thresholds at a FAR, populations, per-level figures, the worst-case
calibration and the held-out split (scores are synthetic; no model runs here)."""

import json
from pathlib import Path

import numpy as np
import pytest
from calibrate import thresholds_at
from evaluate import (
    POPULATIONS_FILE,
    all_pairs,
    cosine,
    det_plot,
    held_out,
    held_out_populations,
    held_out_repeated,
    level_figures,
    list_populations,
    make_pairs,
    metrics,
    pair_scores,
    promise_failures,
    tar_interval,
    worst_case_thresholds,
)

pytestmark = pytest.mark.unit

LABELS = [f"p{i // 4:02d}" for i in range(160)]  # 40 people with 4 photos each


def test_pairs_are_every_same_person_pair_and_distinct_seeded_impostors() -> None:
    genuine, impostor = make_pairs(LABELS, 5_000, seed=0)
    assert len(genuine) == 40 * 6  # C(4, 2) per person
    assert all(LABELS[i] == LABELS[j] and i < j for i, j in genuine.tolist())
    assert len(impostor) == 5_000
    assert len({tuple(p) for p in impostor.tolist()}) == 5_000
    assert all(LABELS[i] != LABELS[j] and i < j for i, j in impostor.tolist())
    again = make_pairs(LABELS, 5_000, seed=0)[1]
    assert np.array_equal(impostor, again)
    assert not np.array_equal(impostor, make_pairs(LABELS, 5_000, seed=1)[1])


def test_tar_is_read_at_the_threshold_that_lets_through_at_most_the_target_far() -> None:
    # Given 10,000 impostor scores spread evenly over [0, 1) and genuine scores at known places
    impostor = np.arange(10_000) / 10_000
    genuine = np.array([0.9995, 0.9985, 0.995, 0.5, -np.inf])  # -inf: a photo that failed to enrol
    m = metrics(genuine, impostor)
    # Then 1e-2 admits 100 impostors (>= 0.99), 1e-3 admits 10 (>= 0.999), 1e-4 admits 1 (>= 0.9999)
    assert m["tar_at_far_1e-2"] == pytest.approx(3 / 5)
    assert m["tar_at_far_1e-3"] == pytest.approx(1 / 5)
    assert m["tar_at_far_1e-4"] == pytest.approx(0.0)


def test_held_out_thresholds_are_fitted_on_other_people_and_report_the_far_they_reach() -> None:
    # Given well separated genuine (around 0.9) and impostor (around 0.1) scores
    genuine_pairs, impostor_pairs = make_pairs(LABELS, 20_000, seed=0)
    rng = np.random.default_rng(0)
    genuine = rng.normal(0.9, 0.02, len(genuine_pairs))
    impostor = rng.normal(0.1, 0.1, len(impostor_pairs))
    out = held_out(LABELS, (genuine_pairs, impostor_pairs), genuine, impostor, seed=0)
    # Then every target gets a TAR near 1 and a reached FAR of the right order on the unseen half
    assert set(out) == {"1e-02", "1e-03", "1e-04"}
    for key, target in (("1e-02", 1e-2), ("1e-03", 1e-3)):
        assert out[key]["tar"] == pytest.approx(1.0)
        assert 0 < out[key]["far"] <= 3 * target


def test_rounded_thresholds_never_let_through_more_impostors_than_the_target_allows() -> None:
    # Given 12,892 impostor scores (the East Asian set's count) whose second highest is 0.6390264: at FAR 1e-4 at
    # most one impostor may pass, so the threshold must lie above 0.6390264 (rounding to nearest gave 0.639026)
    rng = np.random.default_rng(0)
    impostor = np.concatenate([[0.7, 0.6390264, 0.6390263], rng.uniform(-0.2, 0.5, 12_889)])
    th = thresholds_at(np.array([0.9]), impostor)
    # Then at every level no more impostors pass than floor(FAR * n)
    for key, far in (("1e-02", 1e-2), ("1e-03", 1e-3), ("1e-04", 1e-4)):
        assert int(np.sum(impostor >= th[key])) <= int(np.floor(far * len(impostor))), key
    assert th["1e-04"] > 0.6390264


def test_level_figures_count_false_matches_and_say_when_the_rate_cannot_be_measured() -> None:
    # Given 20,000 impostor scores of which 30 sit above 0.9, and 4 genuine scores of which 3 are above 0.9
    impostor = np.concatenate([np.full(30, 0.95), np.zeros(19_970)])
    genuine = np.array([0.99, 0.98, 0.97, 0.5])
    figures = level_figures(genuine, impostor, {"1e-02": 0.9, "1e-03": 0.9, "1e-04": 0.9})
    # Then each level reports the rate, the counts behind it and the TAR at the threshold
    high = figures["high"]
    assert (high["false_matches"], high["impostor_pairs"], high["genuine_pairs"]) == (30, 20_000, 4)
    assert high["fmr"] == pytest.approx(1.5e-3) and high["tar"] == pytest.approx(0.75)
    # 20,000 x 1e-3 = 20 expected impostors: measurable, and 1.5e-3 is within 2x the promise
    assert high["fmr_measurable"] and high["within_2x_promise"]
    # 20,000 x 1e-2 = 200: measurable, within
    assert figures["standard"]["within_2x_promise"]
    # 20,000 x 1e-4 = 2 expected impostors: below 10, so the rate cannot be measured (and is not judged)
    assert not figures["very_high"]["fmr_measurable"] and figures["very_high"]["within_2x_promise"] is None


def test_the_worst_population_decides_each_threshold() -> None:
    # Given one population whose impostors score low and one whose impostors score high
    rng = np.random.default_rng(1)
    low = (np.ones(10), rng.uniform(0.0, 0.3, 50_000))
    high = (np.ones(10), rng.uniform(0.2, 0.6, 50_000))
    th = worst_case_thresholds({"a": low, "b": high})
    # Then every threshold is the higher population's, and both populations stay within each promise
    assert th == thresholds_at(*high)
    for key, far in (("1e-02", 1e-2), ("1e-03", 1e-3), ("1e-04", 1e-4)):
        for _, imp in (low, high):
            assert np.mean(imp >= th[key]) <= far


def test_populations_take_named_people_and_one_frame_per_sequence(tmp_path: Path) -> None:
    # Given a shared folder with two people in faces/ (one East Asian by name), a crop set and webcam sequences
    def touch(rel: str) -> None:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")

    for rel in ("faces/Ann_A/1.jpg", "faces/Ann_A/2.jpg", "faces/Yao_Ming/1.jpg", "faces_asia/casia5_000/1.png"):
        touch(rel)
    for seq in ("0001_00_00_01", "0001_00_00_02"):
        for frame in ("00.jpg", "01.jpg", "02.jpg"):
            touch(f"pad/bona_fide/0001/{seq}/{frame}")
    spec = tmp_path / "populations.json"
    spec.write_text(json.dumps(json.loads(POPULATIONS_FILE.read_text()) | {"east_asian_in_faces": ["Yao_Ming"]}))
    items = list_populations(tmp_path, spec)
    by_pop = {p: sorted((i, f.relative_to(tmp_path).as_posix()) for q, i, f in items if q == p) for p, _, _ in items}
    # Then Western holds faces/ minus the named East Asian people; East Asian the rest, one (middle) frame a sequence
    assert by_pop["Western"] == [("Ann_A", "faces/Ann_A/1.jpg"), ("Ann_A", "faces/Ann_A/2.jpg")]
    assert by_pop["East Asian"] == [
        ("Yao_Ming", "faces/Yao_Ming/1.jpg"),
        ("casia5_000", "faces_asia/casia5_000/1.png"),
        ("nuaa_0001", "pad/bona_fide/0001/0001_00_00_01/01.jpg"),
        ("nuaa_0001", "pad/bona_fide/0001/0001_00_00_02/01.jpg"),
    ]


def test_held_out_populations_fit_on_other_people_and_det_plot_draws_each_population(tmp_path: Path) -> None:
    # Given two populations with separated synthetic scores
    pops = _two_populations(seed=2, genuine=(0.9, 0.02), impostor=(0.1, 0.1), shift=0.1)
    out = held_out_populations(pops, seed=0)
    # Then each population gets a FMR and TAR per level, of the right order
    assert set(out) == {"Western", "East Asian"} and set(out["Western"]) == {"standard", "high", "very_high"}
    assert out["East Asian"]["standard"]["fmr"] <= 3e-2 and out["Western"]["standard"]["tar"] == pytest.approx(1.0)
    # And the DET plot is written with one curve per population
    path = tmp_path / "det.png"
    det_plot([{"label": n, "scores": p["scores"]} for n, p in pops.items()], path, {"1e-03": 0.6})
    assert path.stat().st_size > 10_000


def test_the_tar_interval_resamples_people_not_pairs() -> None:
    # Given 40 people with 6 genuine pairs each: 30 people pass all their pairs, 10 pass none (TAR 0.75)
    genuine_pairs, _ = all_pairs(LABELS)
    person = np.array([int(LABELS[i][1:]) for i in genuine_pairs[:, 0]])
    genuine = np.where(person < 30, 0.9, 0.1)
    lo, hi = tar_interval(genuine, genuine_pairs, LABELS, 0.5, seed=0)
    # Then the interval holds the TAR and is as wide as 40 independent people make it (binomial sd of a mean of
    # 40 people ~ 0.068, so the 90 % interval spans about 0.22), not as narrow as 240 independent pairs (~0.09)
    assert lo < 0.75 < hi
    assert 0.15 < hi - lo < 0.30
    # And a TAR of 1 has no spread, and a threshold nobody reaches gives 0
    assert tar_interval(genuine, genuine_pairs, LABELS, 0.0, seed=0) == (1.0, 1.0)
    assert tar_interval(genuine, genuine_pairs, LABELS, 0.95, seed=0) == (0.0, 0.0)


def test_repeated_held_out_averages_halvings_and_keeps_the_worst() -> None:
    # Given two populations with overlapping synthetic scores (so that halvings differ)
    pops = _two_populations(seed=3, genuine=(0.7, 0.1), impostor=(0.1, 0.15), shift=0.15)
    out = held_out_repeated(pops, splits=5, seed=0)
    # Then each figure is the mean of the 5 halvings held_out_populations gives, and fmr_max their worst FMR
    singles = [held_out_populations(pops, seed=k) for k in range(5)]
    for name in pops:
        assert out[name]["splits"] == 5
        for level in ("standard", "high", "very_high"):
            fmrs = [r[name][level]["fmr"] for r in singles]
            assert out[name][level]["fmr"] == pytest.approx(np.mean(fmrs))
            assert out[name][level]["fmr_max"] == pytest.approx(max(fmrs))
            assert out[name][level]["tar"] == pytest.approx(np.mean([r[name][level]["tar"] for r in singles]))
    assert len({round(r["East Asian"]["standard"]["fmr"], 9) for r in singles}) > 1


def test_scores_are_compared_with_thresholds_as_the_engine_compares_them() -> None:
    # Given a float32 impostor score just below a six-decimal threshold, which rounds onto it in float32
    score = np.float32(0.575982)
    assert float(score) < 0.575982 and score >= np.float32(0.575982)
    emb = np.array([[1.0, 0.0], [float(score), float(np.sqrt(1 - float(score) ** 2))]], dtype=np.float32)
    ok = np.array([True, True])
    scores = pair_scores(emb, ok, np.array([[0, 1]]), cosine)
    # Then the evaluation keeps the score in float64 and does not count it as a false match, like the engine
    # (Template.similarity: a Python float against the float64 threshold)
    assert scores.dtype == np.float64
    th = {"1e-02": 0.575982, "1e-03": 0.575982, "1e-04": 0.575982}
    assert level_figures(np.array([]), np.array([score]), th)["high"]["false_matches"] == 0
    assert float(np.dot(emb[0], emb[1])) < th["1e-03"]


def _two_populations(
    seed: int, genuine: tuple[float, float], impostor: tuple[float, float], shift: float
) -> dict[str, dict[str, object]]:
    """Western and East Asian, 30 people x 4 photos each, normal synthetic scores (mean, sd); the East Asian
    impostor scores are `shift` higher."""
    rng = np.random.default_rng(seed)
    pops: dict[str, dict[str, object]] = {}
    for name, extra in (("Western", 0.0), ("East Asian", shift)):
        labels = [f"{name}{i // 4:02d}" for i in range(120)]
        pairs = all_pairs(labels)
        scores = (rng.normal(*genuine, len(pairs[0])), rng.normal(impostor[0] + extra, impostor[1], len(pairs[1])))
        pops[name] = {"labels": labels, "pairs": pairs, "scores": scores}
    return pops


def test_the_promise_check_names_each_measurable_rate_above_twice_its_promise() -> None:
    # Given two populations at the same thresholds: one keeps every promise, one lets 4 % through at 1e-2
    rng = np.random.default_rng(4)
    impostor = np.arange(10_000) / 10_000  # 1 % at >= 0.99, 0.1 % at >= 0.999
    th = {"1e-02": 0.99, "1e-03": 0.999, "1e-04": 0.9999}
    kept = level_figures(rng.uniform(0.99, 1.0, 50), impostor, th)
    broken = level_figures(rng.uniform(0.99, 1.0, 50), np.where(np.arange(10_000) < 300, 0.995, impostor), th)
    failures = promise_failures({"Western": {"levels": kept}, "East Asian": {"levels": broken}})
    # Then only the measurable level above 2x is named (very_high on 10,000 pairs cannot be measured)
    assert len(failures) == 1 and failures[0].startswith("East Asian standard: FMR 4.0e-02 (400/10000)")
    assert promise_failures({"Western": {"levels": kept}}) == []
