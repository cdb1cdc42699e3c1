"""Noise-aware keep policies: pooled sigma and the decisions of each policy on hand-made numbers."""

from __future__ import annotations

import math
import random
import sys
from pathlib import Path

import pytest

from autoresearch_tui.engine.noise import BEST_WINDOW, CONFIRM_Z, DEFAULT_MAX_RUNS, NoiseModel, Verdict, improvement, judge


# -- NoiseModel ------------------------------------------------------------------------------

def test_sigma_unknown_until_a_commit_repeats() -> None:
    model = NoiseModel()
    assert model.sigma is None and model.count == 0
    assert "unknown" in model.describe()
    model.add("a", 1.0)
    model.add("b", 2.0)
    assert model.sigma is None and model.count == 0
    model.add("a", 1.2)
    assert model.count == 1
    assert model.sigma == pytest.approx(math.sqrt(0.02))  # sd of (1.0, 1.2)


def test_pooled_sigma_on_known_groups() -> None:
    model = NoiseModel()
    for v in (1.0, 2.0, 3.0):  # mean 2, SS 2
        model.add("a", v)
    for v in (10.0, 14.0):  # mean 12, SS 8
        model.add("b", v)
    model.add("c", 5.0)  # a single run: no degrees of freedom, no effect
    assert model.count == 3  # (3 - 1) + (2 - 1)
    assert model.sigma == pytest.approx(math.sqrt((2 + 8) / 3))
    text = model.describe()
    assert f"{model.sigma:.6f}" in text and "5 runs" in text and "2 repeated commits" in text and "3 degrees" in text
    assert model.runs("a") == [1.0, 2.0, 3.0] and model.runs("zzz") == []


def test_crashes_and_non_finite_values_are_ignored() -> None:
    model = NoiseModel()
    for v in (1.0, None, float("nan"), float("inf"), 1.5):
        model.add("a", v)
    assert model.runs("a") == [1.0, 1.5]


def test_pooled_sigma_recovers_the_true_noise() -> None:
    rng = random.Random(7)
    model = NoiseModel()
    for commit in range(300):
        for _ in range(rng.choice((2, 3))):
            model.add(str(commit), 1.0 + commit / 10 + rng.gauss(0, 0.03))
    assert model.sigma == pytest.approx(0.03, rel=0.08)


# -- judge: any / min_delta / sigma ----------------------------------------------------------

def test_improvement_sign() -> None:
    assert improvement(0.9, 1.0, "min") == pytest.approx(0.1)
    assert improvement(0.9, 1.0, "max") == pytest.approx(-0.1)


@pytest.mark.parametrize("direction,better,worse", [("min", 0.999, 1.001), ("max", 1.001, 0.999)])
def test_any_keeps_any_improvement(direction: str, better: float, worse: float) -> None:
    v = judge("any", [better], [1.0], direction, None)
    assert v == Verdict("keep", v.reason, None) and "improved" in v.reason and "1.000000" in v.reason
    assert judge("any", [worse], [1.0], direction, 0.5).action == "discard"
    assert "no change" in judge("any", [1.0], [1.0], direction, None).reason


def test_any_compares_with_the_mean_of_the_best_runs() -> None:
    # best runs 1.0 and 1.2 -> mean 1.1; 1.05 is better than the mean though worse than one run
    v = judge("any", [1.05], [1.0, 1.2], "min", None)
    assert v.action == "keep" and "mean of 2 runs" in v.reason


def test_first_measurement_keeps() -> None:
    assert judge("confirm", [3.0], [], "min", None).action == "keep"


@pytest.mark.parametrize("direction,sign", [("min", -1), ("max", 1)])
def test_min_delta_needs_a_fixed_margin(direction: str, sign: int) -> None:
    small = judge("min_delta", [1.0 + sign * 0.005], [1.0], direction, 0.001, min_delta=0.01)
    assert small.action == "discard" and small.threshold == 0.01 and "min_delta 0.010000" in small.reason
    big = judge("min_delta", [1.0 + sign * 0.02], [1.0], direction, None, min_delta=0.01)
    assert big.action == "keep" and "0.020000" in big.reason
    worse = judge("min_delta", [1.0 - sign * 0.02], [1.0], direction, None, min_delta=0.01)
    assert worse.action == "discard" and "not better" in worse.reason


@pytest.mark.parametrize("direction,sign", [("min", -1), ("max", 1)])
def test_sigma_policy_needs_z_sigmas(direction: str, sign: int) -> None:
    sigma = 0.01
    inside = judge("sigma", [1.0 + sign * 0.015], [1.0], direction, sigma)  # 1.5 sigma < 2 sigma
    assert inside.action == "discard" and inside.threshold == pytest.approx(0.02)
    assert "within noise" in inside.reason and "2 x sigma 0.010000" in inside.reason
    beyond = judge("sigma", [1.0 + sign * 0.025], [1.0], direction, sigma)
    assert beyond.action == "keep" and "0.025000" in beyond.reason
    lower_z = judge("sigma", [1.0 + sign * 0.015], [1.0], direction, sigma, z=1.0)
    assert lower_z.action == "keep" and lower_z.threshold == pytest.approx(0.01)


def test_sigma_never_asks_for_a_rerun() -> None:
    assert judge("sigma", [0.999], [1.0], "min", 0.01).action == "discard"


def test_sigma_without_an_estimate_falls_back_to_min_delta_and_says_so() -> None:
    v = judge("sigma", [0.995], [1.0], "min", None, min_delta=0.01)
    assert v.action == "discard" and v.threshold == 0.01
    assert "sigma unknown" in v.reason and "min_delta" in v.reason
    v = judge("sigma", [0.98], [1.0], "min", None, min_delta=0.01)
    assert v.action == "keep" and "sigma unknown" in v.reason
    v = judge("sigma", [0.999], [1.0], "min", None)  # min_delta 0: any improvement, said so
    assert v.action == "keep" and "any improvement" in v.reason


def test_min_delta_is_a_floor_under_the_noise_threshold() -> None:
    v = judge("sigma", [0.97], [1.0], "min", 0.001, min_delta=0.05)
    assert v.action == "discard" and v.threshold == 0.05 and "raised to min_delta" in v.reason


# -- judge: confirm --------------------------------------------------------------------------

def _se(sigma: float, k: int, m: int) -> float:
    return sigma * math.sqrt(1 / k + 1 / m)


@pytest.mark.parametrize("direction,sign", [("min", -1), ("max", 1)])
def test_confirm_never_keeps_on_one_run_and_keeps_past_z_standard_errors(direction: str, sign: int) -> None:
    sigma, best = 0.01, [1.0, 1.0]
    first = judge("confirm", [1.0 + sign * 0.05], best, direction, sigma)  # 5 sigma better, one run
    assert first.action == "rerun" and "promising" in first.reason and "re-running the best" in first.reason
    # Two runs each, gain 0.02: 0.02 > 1.9 x 0.01 x sqrt(1/2 + 1/2) = 0.019 -> keep
    kept = judge("confirm", [1.0 + sign * 0.02] * 2, best, direction, sigma)
    assert kept.action == "keep" and kept.threshold == pytest.approx(CONFIRM_Z * _se(sigma, 2, 2))
    assert "sqrt(1/2 + 1/2)" in kept.reason and CONFIRM_Z == 1.9
    # Gain 0.017 < 0.019 on two runs: neither -> one more round
    assert judge("confirm", [1.0 + sign * 0.017] * 2, best, direction, sigma).action == "rerun"


def test_confirm_screens_out_a_first_run_that_is_behind() -> None:
    best = [1.0, 1.0]
    # 0.5 sigma worse: below the screen (-0.25 standard errors) -> discarded on one run
    v = judge("confirm", [1.005], best, "min", 0.01)
    assert v.action == "discard" and "not better" in v.reason
    # Slightly worse, within the screen: worth a second look
    assert judge("confirm", [1.001], best, "min", 0.01).action == "rerun"


def test_confirm_discards_a_mean_that_falls_behind_after_two_runs() -> None:
    v = judge("confirm", [0.995, 1.01], [1.0, 1.0], "min", 0.01)
    assert v.action == "discard" and "after 2 runs" in v.reason and "not better" in v.reason


def test_confirm_compares_with_the_best_recent_runs_only() -> None:
    """Old runs of the best (a slow drift, or the lucky runs that made it the best) are outvoted:
    only the last BEST_WINDOW runs count."""
    old_lucky = [0.95] * 10  # the runs that kept it: lucky, or on a faster machine an hour ago
    recent = [1.0] * BEST_WINDOW  # its re-runs beside recent candidates
    candidate = [0.985, 0.985, 0.985]
    v = judge("confirm", candidate, old_lucky + recent, "min", 0.01)
    assert v.action == "keep" and f"last {BEST_WINDOW} runs" in v.reason
    # Against all its runs it would have been a regression
    assert judge("confirm", candidate, old_lucky, "min", 0.01).action == "discard"


def test_confirm_respects_max_runs() -> None:
    grey = [0.99, 0.995, 0.993]  # better, not enough to be sure
    assert judge("confirm", grey, [1.0, 1.0], "min", 0.01, max_runs=3).action == "discard"
    assert "after 3 runs" in judge("confirm", grey, [1.0, 1.0], "min", 0.01, max_runs=3).reason
    assert judge("confirm", grey, [1.0, 1.0], "min", 0.01, max_runs=4).action == "rerun"
    assert DEFAULT_MAX_RUNS == 6


def test_confirm_min_delta_is_a_floor() -> None:
    v = judge("confirm", [0.98, 0.98], [1.0, 1.0], "min", 0.001, min_delta=0.05)
    assert v.action != "keep" and v.threshold == 0.05 and "raised to min_delta" in v.reason


def test_confirm_with_a_deterministic_script_keeps_on_two_runs() -> None:
    """sigma 0 (identical re-runs): any real gain is certain, but still measured twice."""
    assert judge("confirm", [0.99], [1.0, 1.0], "min", 0.0).action == "rerun"
    assert judge("confirm", [0.99, 0.99], [1.0, 1.0, 1.0], "min", 0.0).action == "keep"
    assert judge("confirm", [1.0], [1.0, 1.0], "min", 0.0).action == "discard"


def test_confirm_without_sigma_falls_back_to_min_delta() -> None:
    v = judge("confirm", [0.995], [1.0], "min", None, min_delta=0.01)
    assert v.action == "discard" and "sigma unknown" in v.reason and v.threshold == 0.01
    v = judge("confirm", [0.98], [1.0], "min", None, min_delta=0.01)
    assert v.action == "rerun" and "sigma unknown" in v.reason
    v = judge("confirm", [0.98, 0.98], [1.0], "min", None, min_delta=0.01)
    assert v.action == "keep"


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="keep_policy"):
        judge("best", [1.0], [1.0], "min", None)
    with pytest.raises(ValueError, match="direction"):
        judge("any", [1.0], [1.0], "down", None)
    with pytest.raises(ValueError):
        judge("any", [], [1.0], "min", None)


def test_simulated_error_rates_of_the_chosen_rule() -> None:
    """The README's claim, small: over whole simulated sessions (interleaved best runs, sigma
    estimated as the engine does), at most ~5% false keeps and at least ~90% true keeps; the
    reference rule keeps far more no-op changes."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.noise_sim import chain

    false = chain("confirm", 0.0, sessions=40, seed=3, sigma_known=False)
    true = chain("confirm", 2.0, sessions=40, seed=4, sigma_known=False)
    assert false.keep_rate <= 0.06 and true.keep_rate >= 0.88  # 1,600 candidates each: about +-0.6%
    drift = chain("confirm", 0.0, sessions=40, seed=5, drift=1.0)
    assert drift.keep_rate <= 0.06
    any_false = chain("any", 0.0, sessions=40, seed=5)
    assert any_false.keep_rate > 0.07
