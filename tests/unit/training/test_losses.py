"""TAD (12)-(14), mean-output CE and TET against explicit computations."""

import math

import pytest
import torch

from training.losses import mean_output_cross_entropy, tad_loss, tad_weights, tet_loss

OUT = [  # O, the output currents [T=2, B=2, C=3]
    [[2.0, 0.0, -1.0], [0.5, 0.4, 0.3]],
    [[1.0, 1.0, 0.0], [0.0, 3.0, -2.0]],
]
Y = [0, 1]


def _softmax(row):
    exps = [math.exp(v) for v in row]
    return [e / sum(exps) for e in exps]


def _explicit_tad(temperature):
    total = 0.0
    for b, label in enumerate(Y):
        confidences, losses = [], []
        for t in range(2):
            z = _softmax(OUT[t][b])
            entropy = -sum(p * math.log(p) for p in z)
            confidences.append(1 - entropy / math.log(3))  # (12)
            losses.append(-math.log(z[label]))
        exps = [math.exp(c / temperature) for c in confidences]
        weights = [e / sum(exps) for e in exps]  # (13)
        total += sum(w * loss for w, loss in zip(weights, losses))  # (14)
    return total / len(Y)


@pytest.mark.parametrize("temperature", [2.0, 0.5])
def test_tad_matches_equations_12_to_14(temperature):
    current = torch.tensor(OUT)
    assert tad_loss(current, torch.tensor(Y), temperature).item() == pytest.approx(
        _explicit_tad(temperature), rel=1e-6
    )


def test_tad_weights_sum_to_one_over_time_and_favour_confident_steps():
    weights = tad_weights(torch.tensor(OUT), 2.0)
    assert weights.sum(dim=0).tolist() == pytest.approx([1.0, 1.0])
    assert weights[1, 1] > weights[0, 1]  # sample 1 is far more confident at t=2


def test_tad_detached_weights_give_the_same_value_but_a_different_gradient():
    current = torch.tensor(OUT, requires_grad=True)
    tad_loss(current, torch.tensor(Y)).backward()
    full = current.grad.clone()
    current.grad = None
    detached = tad_loss(current, torch.tensor(Y), detach_weights=True)
    assert detached.item() == pytest.approx(_explicit_tad(2.0), rel=1e-6)
    detached.backward()
    assert not torch.allclose(full, current.grad)


def test_mean_output_cross_entropy():
    expected = 0.0
    for b, label in enumerate(Y):
        mean = [(OUT[0][b][k] + OUT[1][b][k]) / 2 for k in range(3)]
        expected += -math.log(_softmax(mean)[label])
    assert mean_output_cross_entropy(torch.tensor(OUT), torch.tensor(Y)).item() == pytest.approx(
        expected / 2, rel=1e-6
    )


def test_tet_is_the_mean_per_step_cross_entropy_plus_regulariser():
    ce = sum(-math.log(_softmax(OUT[t][b])[Y[b]]) for t in range(2) for b in range(2)) / 4
    mse = sum((v - 1.0) ** 2 for t in OUT for row in t for v in row) / 12
    value = tet_loss(torch.tensor(OUT), torch.tensor(Y), reg_weight=0.1, reg_target=1.0).item()
    assert value == pytest.approx(0.9 * ce + 0.1 * mse, rel=1e-6)
    assert tet_loss(torch.tensor(OUT), torch.tensor(Y), reg_weight=0.0).item() == pytest.approx(ce, rel=1e-6)
