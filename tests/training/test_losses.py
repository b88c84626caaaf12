"""Losses against values worked out by hand (log σ(x) = −log(1 + e^−x))."""

from __future__ import annotations

import math

import pytest
import torch

from rewardlab.training.losses import (
    bradley_terry,
    build_comparisons,
    center_penalty,
    comparison_loss,
    kwise_loss,
)

LOG2 = math.log(2.0)  # −log σ(0)
L1 = math.log(1 + math.exp(-1))  # −log σ(1) = 0.3132617
L2 = math.log(1 + math.exp(-2))  # −log σ(2) = 0.1269280


def t(*xs):
    return torch.tensor(xs, dtype=torch.float32)


def test_bradley_terry_values():
    assert bradley_terry(t(0.0, 1.0, 2.0, -1.0)).tolist() == pytest.approx([LOG2, L1, L2, L1 + 1.0], abs=1e-6)


def test_margin_shifts_the_difference():
    # Δ = 1 with margin 1 -> −log σ(0) = log 2; margin 0 leaves plain BT
    assert bradley_terry(t(1.0, 1.0), t(1.0, 0.0)).tolist() == pytest.approx([LOG2, L1], abs=1e-6)


def test_label_smoothing_conservative_bt():
    # ε = 0.1, Δ = 2: 0.9 · (−log σ(2)) + 0.1 · (−log σ(−2)) = 0.9 · 0.126928 + 0.1 · 2.126928 = 0.326928
    assert bradley_terry(t(2.0), label_smoothing=0.1).item() == pytest.approx(
        0.9 * L2 + 0.1 * (L2 + 2), abs=1e-6
    )
    assert bradley_terry(t(2.0), label_smoothing=0.1).item() == pytest.approx(0.326928, abs=1e-6)


def test_center_penalty_and_pair_batch_mean():
    # rewards [1, -0.5, 0.3, 0.3]: pair 1 Δ = 1.5, pair 2 Δ = 0 (both chosen-first)
    rewards = t(1.0, -0.5, 0.3, 0.3)
    comps = build_comparisons([2, 2], [[1, 0], [1, 0]])
    bt = (math.log(1 + math.exp(-1.5)) + LOG2) / 2
    assert comparison_loss(rewards, comps).item() == pytest.approx(bt, abs=1e-6)
    # centring: ((1 − 0.5)² + (0.3 + 0.3)²) / 2 = (0.25 + 0.36) / 2 = 0.305, times c = 0.01
    assert center_penalty(t(1.0), t(-0.5)).item() == pytest.approx(0.25)
    assert comparison_loss(rewards, comps, center=0.01).item() == pytest.approx(bt + 0.01 * 0.305, abs=1e-6)


def test_kwise_instructgpt():
    # rewards [1, 0, −1] ranked [3, 2, 1]: comparisons Δ = 1, 2, 1 -> mean (L1 + L2 + L1) / 3 = 0.251151
    loss = kwise_loss(t(1.0, 0.0, -1.0), [3, 2, 1])
    assert loss.item() == pytest.approx((2 * L1 + L2) / 3, abs=1e-6)
    assert loss.item() == pytest.approx(0.251151, abs=1e-6)
    # the same list given in another order gives the same loss
    assert kwise_loss(t(-1.0, 1.0, 0.0), [1, 3, 2]).item() == pytest.approx(loss.item(), abs=1e-6)


def test_groups_weigh_equally_and_ties_are_not_compared():
    comps = build_comparisons([3, 2], [[2, 1, 1], [0, 1]], [None, 0.5])
    # list 1: 0>1, 0>2 (1 and 2 tie); pair 2: index 4 beats 3, margin 0.5
    assert comps.better.tolist() == [0, 0, 4] and comps.worse.tolist() == [1, 2, 3]
    assert comps.margin.tolist() == [0.0, 0.0, 0.5]
    assert comps.weight.tolist() == pytest.approx([0.25, 0.25, 0.5])


def test_swapping_chosen_and_rejected_flips_the_margin():
    rewards = t(0.7, -0.2)
    fwd = build_comparisons([2], [[1, 0]])
    back = build_comparisons([2], [[0, 1]])
    d_fwd = rewards[fwd.better] - rewards[fwd.worse]
    d_back = rewards[back.better] - rewards[back.worse]
    assert d_back.item() == pytest.approx(-d_fwd.item())
    assert comparison_loss(rewards, back).item() == pytest.approx(bradley_terry(-d_fwd).item())


def test_margin_can_be_ignored():
    rewards = t(1.0, 0.0)
    comps = build_comparisons([2], [[1, 0]], [1.0])
    assert comparison_loss(rewards, comps).item() == pytest.approx(LOG2, abs=1e-6)
    assert comparison_loss(rewards, comps, use_margin=False).item() == pytest.approx(L1, abs=1e-6)
