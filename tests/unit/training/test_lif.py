"""LIF neuron (2)-(4) against hand-computed values."""

import math

import pytest
import torch

from training.neurons import (
    ArctanSurrogate,
    LIFParameters,
    LIFState,
    SigmoidSurrogate,
    lif_sequence,
    lif_step,
)
from training.neurons.lif import fire
from training.neurons.surrogate import heaviside


def test_several_steps_with_two_spikes_and_soft_reset():
    params = LIFParameters(leak=0.5, threshold=1.0)
    inputs = torch.tensor([0.6, 0.6, 1.5, 0.2, 2.5, 0.0])
    spikes, membranes, state = lif_sequence(inputs.view(6, 1), params)
    # U[t] = 0.5 * U_reset[t-1] + I[t]; spike when U >= 1; U_reset = U - S * 1
    # t1: 0.6            -> no spike, keeps 0.6
    # t2: 0.3 + 0.6 = 0.9 -> no spike, keeps 0.9
    # t3: 0.45 + 1.5 = 1.95 -> spike, keeps 0.95 (soft reset keeps the excess)
    # t4: 0.475 + 0.2 = 0.675 -> no spike
    # t5: 0.3375 + 2.5 = 2.8375 -> spike, keeps 1.8375
    # t6: 0.91875 -> no spike
    assert spikes.view(-1).tolist() == [0, 0, 1, 0, 1, 0]
    assert membranes.view(-1).tolist() == pytest.approx([0.6, 0.9, 1.95, 0.675, 2.8375, 0.91875])
    assert state.membrane.item() == pytest.approx(0.91875)


def test_soft_reset_lets_one_large_input_fire_on_later_steps():
    params = LIFParameters(leak=1.0, threshold=1.0)
    spikes, membranes, state = lif_sequence(torch.tensor([[2.5], [0.0], [0.0]]), params)
    assert spikes.view(-1).tolist() == [1, 1, 0]  # 2.5 -> 1.5 -> 0.5: the residue fires again
    assert membranes.view(-1).tolist() == pytest.approx([2.5, 1.5, 0.5])
    assert state.membrane.item() == pytest.approx(0.5)


def test_step_takes_and_returns_explicit_state():
    params = LIFParameters(leak=0.25, threshold=2.0)
    # The state is the previous U before its reset: 4.0 had fired, so (4) leaves 2.0; 1.0 had not.
    out = lif_step(torch.tensor([1.5, 3.0]), LIFState(torch.tensor([4.0, 1.0])), params)
    assert out.membrane.tolist() == pytest.approx([0.25 * 2.0 + 1.5, 0.25 * 1.0 + 3.0])  # [2.0, 3.25]
    assert out.spikes.tolist() == [1.0, 1.0]  # reaching the threshold exactly fires
    assert out.state.membrane.tolist() == pytest.approx([2.0, 3.25])  # handed on before its reset
    again = lif_step(torch.zeros(2), out.state, params)  # both fired: 2.0 -> 0.0, 3.25 -> 1.25
    assert again.membrane.tolist() == pytest.approx([0.0, 0.25 * 1.25])
    assert again.spikes.tolist() == [0.0, 0.0]


def test_steps_one_at_a_time_equal_the_sequence():
    params = LIFParameters(leak=0.5, threshold=1.0)
    inputs = torch.tensor([[0.6, 2.5], [0.6, 0.0], [1.5, 0.0], [0.2, 1.0]])
    spikes, membranes, final = lif_sequence(inputs, params)
    state = None
    for t, current in enumerate(inputs):
        out = lif_step(current, state, params)
        assert torch.equal(out.spikes, spikes[t]) and torch.equal(out.membrane, membranes[t])
        state = out.state
    assert torch.equal(state.membrane, final.membrane)


def test_a_step_from_rest_is_the_input_itself():
    params = LIFParameters(leak=0.5, threshold=1.0)
    inputs = torch.tensor([0.4, 1.0, 2.5, -0.3])
    out = lif_step(inputs, None, params)  # (2) with U[t-1] = 0: U = I
    assert out.membrane.tolist() == pytest.approx([0.4, 1.0, 2.5, -0.3])
    assert out.spikes.tolist() == [0.0, 1.0, 1.0, 0.0]
    assert out.state.membrane.tolist() == pytest.approx([0.4, 1.0, 2.5, -0.3])
    from_zero = lif_step(inputs, LIFState(torch.zeros(4)), params)
    assert all(
        torch.equal(a, b)
        for a, b in zip(
            (out.membrane, out.spikes, out.state.membrane),
            (from_zero.membrane, from_zero.spikes, from_zero.state.membrane),
        )
    )


def test_firing_without_gradients_is_the_same_step_function():
    params = LIFParameters(leak=0.5, threshold=1.0)
    one = torch.tensor(1.0)
    membranes = torch.stack(
        [
            torch.nextafter(one, torch.tensor(0.0)),
            one,
            torch.nextafter(one, torch.tensor(2.0)),
            torch.tensor(0.0),
            torch.tensor(-0.0),
            torch.tensor(3.5),
            torch.tensor(float("inf")),
            torch.tensor(float("-inf")),
            torch.tensor(float("nan")),
        ]
    )
    expected = heaviside(membranes - params.threshold)
    assert expected.tolist()[:3] == [0.0, 1.0, 1.0]  # reaching the threshold exactly fires
    with torch.no_grad():
        assert torch.equal(fire(membranes, params), expected)
    tracked = membranes.clone().requires_grad_(True)
    spikes = fire(tracked, params)  # through the surrogate: same values, and a gradient
    assert torch.equal(spikes.detach(), expected)
    spikes[:3].sum().backward()
    assert (tracked.grad[:3] > 0).all()


@pytest.mark.parametrize(
    "surrogate, x, expected",
    [
        (SigmoidSurrogate(4.0), 0.0, 1.0),  # alpha * s * (1 - s) = 4 * 0.25
        (SigmoidSurrogate(4.0), 0.5, 4 * (1 / (1 + math.exp(-2))) * (1 - 1 / (1 + math.exp(-2)))),
        (ArctanSurrogate(2.0), 0.0, 1.0),  # alpha / 2
        (ArctanSurrogate(2.0), 0.5, 1.0 / (1 + (math.pi / 2) ** 2)),
    ],
)
def test_surrogate_gradients(surrogate, x, expected):
    value = torch.tensor(x, requires_grad=True)
    spike = surrogate(value)
    spike.backward()
    assert spike.item() == (1.0 if x >= 0 else 0.0)
    assert value.grad.item() == pytest.approx(expected, rel=1e-6)


def test_gradient_flows_through_time():
    params = LIFParameters(leak=0.5, threshold=1.0, surrogate="sigmoid", surrogate_alpha=4.0)
    current = torch.tensor([[0.8], [0.8]], requires_grad=True)
    spikes, _, _ = lif_sequence(current, params)
    spikes.sum().backward()
    assert current.grad[0].item() != 0 and current.grad[1].item() != 0


@pytest.mark.parametrize("bad", [{"leak": 1.5}, {"threshold": 0.0}, {"surrogate": "tanh"}])
def test_invalid_parameters_are_refused(bad):
    with pytest.raises(ValueError):
        LIFParameters(**bad)
