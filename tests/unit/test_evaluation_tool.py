"""The arithmetic of tools/evaluate.py: pairs, thresholds at a FAR, and the held-out split (scores are synthetic)."""

import numpy as np
import pytest
from evaluate import held_out, make_pairs, metrics

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
