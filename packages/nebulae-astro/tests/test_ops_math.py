"""Math, reduction, product, indexing and autograd crafts (issue 6)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nebulae.astro import dock
from nebulae.astro._math import (
    Argmax,
    Argmin,
    Clip,
    Cos,
    Dot,
    Exp,
    Gather,
    Grad,
    Log,
    Max,
    Maxele,
    Mean,
    Min,
    Minele,
    Scatter,
    Sin,
    Sqrt,
    Sum,
)


@pytest.mark.parametrize(
    ("craft", "ref", "scope"),
    [
        (Sqrt, np.sqrt, "SQRT"),
        (Exp, np.exp, "EXP"),
        (Log, np.log, "LOG"),
        (Sin, np.sin, "SIN"),
        (Cos, np.cos, "COS"),
    ],
)
def test_elementwise_ops_agree_with_numpy_and_pass_gradients(craft, ref, scope):
    op = craft()
    assert op.scope == scope
    x = torch.rand(2, 3, 4, 5, dtype=torch.float64) + 0.5
    x.requires_grad_(True)
    y = op(x)
    assert y.shape == x.shape and y.dtype == torch.float64
    np.testing.assert_allclose(y.detach().numpy(), ref(x.detach().numpy()), rtol=1e-12)
    y.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_elementwise_ops_hand_computed_values():
    assert Sqrt()(torch.tensor([9.0, 0.25])).tolist() == [3.0, 0.5]
    assert Exp()(torch.tensor([0.0])).tolist() == [1.0]
    assert Log()(torch.tensor([1.0])).tolist() == [0.0]
    assert Sin()(torch.tensor([math.pi / 2])).item() == pytest.approx(1.0)
    assert Cos()(torch.tensor([math.pi])).item() == pytest.approx(-1.0)
    # d sqrt(x)/dx at 4 is 1/(2*2)
    x = torch.tensor([4.0], requires_grad=True)
    Sqrt()(x).sum().backward()
    assert x.grad.item() == pytest.approx(0.25)


def test_elementwise_rejects_non_tensors_naming_the_scope():
    with pytest.raises(TypeError, match=r"SQRT: 't' must be a torch.Tensor"):
        Sqrt()([1.0, 4.0])


def test_clip_scalar_range_is_symmetric_and_hand_computed():
    assert Clip()(torch.tensor([-3.0, 0.5, 3.0]), 1).tolist() == [-1.0, 0.5, 1.0]
    assert Clip()(torch.tensor([-3.0, 0.5, 3.0]), (0, 2)).tolist() == [0.0, 0.5, 2.0]
    assert Clip()(torch.tensor([-3.0, 5.0]), (None, 2)).tolist() == [-3.0, 2.0]


def test_clip_in_place_changes_the_input_and_out_of_place_does_not():
    x = torch.tensor([-3.0, 3.0])
    Clip()(x, 1)
    assert x.tolist() == [-3.0, 3.0]
    out = Clip()(x, 1, in_place=True)
    assert out is x and x.tolist() == [-1.0, 1.0]


def test_clip_gradient_is_zero_outside_the_range():
    x = torch.tensor([-3.0, 0.5, 3.0], requires_grad=True)
    Clip()(x, 1).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 0.0]


@pytest.mark.parametrize("ranges", [-1, (2, 1), "1", (1, 2, 3), (None, None)])
def test_clip_rejects_bad_ranges(ranges):
    with pytest.raises((TypeError, ValueError), match="CLIP: 'ranges'"):
        Clip()(torch.zeros(2), ranges)


REDUCTIONS = [
    (Mean, lambda a, ax, kd: np.mean(a, axis=ax, keepdims=kd)),
    (Sum, lambda a, ax, kd: np.sum(a, axis=ax, keepdims=kd)),
    (Max, lambda a, ax, kd: np.max(a, axis=ax, keepdims=kd)),
    (Min, lambda a, ax, kd: np.min(a, axis=ax, keepdims=kd)),
]


AXES = [(None, True), (0, True), (-1, True), ((1, 2), True), (0, False), (-1, False), ((1, 2), False)]


@pytest.mark.parametrize(("craft", "ref"), REDUCTIONS)
@pytest.mark.parametrize(("axis", "reduce"), AXES)
def test_reductions_agree_with_numpy(craft, ref, axis, reduce):
    x = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    y = craft()(x, axis=axis, reduce=reduce)
    expected = ref(x.detach().numpy(), axis, not reduce)
    assert tuple(y.shape) == np.shape(expected)
    np.testing.assert_allclose(y.detach().numpy(), expected, rtol=1e-12)
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_reductions_hand_computed():
    x = torch.tensor([[1.0, 2.0], [3.0, 5.0]])
    assert Mean()(x, axis=1).tolist() == [1.5, 4.0]
    assert Sum()(x).item() == 11.0
    assert Max()(x, axis=0).tolist() == [3.0, 5.0]
    assert Min()(x, axis=1, reduce=False).tolist() == [[1.0], [3.0]]
    assert Argmax()(x).item() == 3
    assert Argmin()(x, axis=0).tolist() == [0, 0]
    assert Argmax()(x, axis=1, reduce=False).tolist() == [[1], [1]]


@pytest.mark.parametrize("craft", [Argmax, Argmin])
def test_arg_reductions_agree_with_numpy(craft):
    x = torch.randn(4, 5)
    ref = np.argmax if craft is Argmax else np.argmin
    assert craft()(x, axis=1).tolist() == ref(x.numpy(), axis=1).tolist()
    assert craft()(x).item() == ref(x.numpy())


@pytest.mark.parametrize("craft", [Mean, Sum, Max, Min, Argmax, Argmin])
def test_reduce_false_needs_an_axis(craft):
    with pytest.raises(ValueError, match="reduce=False keeps the reduced axes"):
        craft()(torch.zeros(2, 2), reduce=False)


def test_reduction_axis_out_of_range_names_scope_and_shape():
    with pytest.raises(ValueError, match=r"MEAN: 'axis' 3 is out of range for a tensor of shape \(2, 2\)"):
        Mean()(torch.zeros(2, 2), axis=3)
    with pytest.raises(ValueError, match="ARGMAX: 'axis' must be a single int"):
        Argmax()(torch.zeros(2, 2), axis=(0, 1))


def test_maxele_minele_hand_computed_and_gradients():
    x = torch.tensor([1.0, 5.0], requires_grad=True)
    y = torch.tensor([3.0, 2.0], requires_grad=True)
    hi = Maxele()(x, y)
    lo = Minele()(x, y)
    assert hi.tolist() == [3.0, 5.0] and lo.tolist() == [1.0, 2.0]
    hi.sum().backward()
    assert x.grad.tolist() == [0.0, 1.0] and y.grad.tolist() == [1.0, 0.0]
    assert Maxele()(torch.tensor([-1.0, 2.0]), 0).tolist() == [0.0, 2.0]


def test_maxele_rejects_unbroadcastable_shapes():
    with pytest.raises(ValueError, match=r"MAXELE: 'x' \(2,\) and 'y' \(3,\) must broadcast"):
        Maxele()(torch.zeros(2), torch.zeros(3))


def test_dot_modes_agree_with_torch_and_hand_computed():
    a = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    b = torch.tensor([[5.0], [6.0]])
    assert Dot()(a, b).tolist() == [[17.0], [39.0]]
    x, y = torch.randn(3, 2, 4), torch.randn(3, 4, 5)
    torch.testing.assert_close(Dot()(x, y, in_batch=True), torch.bmm(x, y))
    u, v = torch.randn(2, 3, 4), torch.randn(4, 3, 6)
    torch.testing.assert_close(
        Dot()(u, v, axes=([1, 2], [1, 0])), torch.tensordot(u, v, dims=([1, 2], [1, 0]))
    )


def test_dot_gradients_reach_both_operands():
    x = torch.randn(2, 3, requires_grad=True)
    y = torch.randn(3, 4, requires_grad=True)
    Dot()(x, y).sum().backward()
    assert x.grad is not None and y.grad is not None


def test_dot_shape_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"DOT: x \(2, 3\) and y \(2, 3\) do not chain"):
        Dot()(torch.zeros(2, 3), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="in_batch needs"):
        Dot()(torch.zeros(2, 2, 3), torch.zeros(3, 3, 1), in_batch=True)


def test_scatter_and_gather_hand_computed():
    x = torch.zeros(2, 3)
    idx = torch.tensor([[2], [0]])
    out = Scatter()(x, torch.tensor([[7.0], [9.0]]), 1, idx)
    assert out.tolist() == [[0.0, 0.0, 7.0], [9.0, 0.0, 0.0]]
    assert x.abs().sum() == 0
    Scatter()(x, 1.0, 1, idx, in_place=True)
    assert x.tolist() == [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    src = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert Gather()(src, 1, torch.tensor([[2, 0], [1, 1]])).tolist() == [[3.0, 1.0], [5.0, 5.0]]


def test_gather_gradients_and_torch_agreement():
    src = torch.randn(3, 4, requires_grad=True)
    idx = torch.randint(0, 4, (3, 2))
    out = Gather()(src, 1, idx)
    torch.testing.assert_close(out, torch.gather(src, 1, idx))
    out.sum().backward()
    assert src.grad.sum().item() == pytest.approx(6.0)


def test_index_ops_reject_bad_indices():
    with pytest.raises(TypeError, match="GATHER: 'idx' must be an int64 tensor"):
        Gather()(torch.zeros(2, 2), 1, torch.zeros(2, 2))
    with pytest.raises(ValueError, match="SCATTER: 'idx' must have as many dimensions"):
        Scatter()(torch.zeros(2, 2), 1.0, 1, torch.zeros(2, dtype=torch.int64))


def test_grad_hand_computed_and_differentiable_twice():
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    g = Grad()(x, (x**3).sum())
    assert g.tolist() == [3.0, 12.0, 27.0]
    (g2,) = torch.autograd.grad(g.sum(), x)
    assert g2.tolist() == [6.0, 12.0, 18.0]


def test_grad_of_non_scalar_output_and_of_a_list_of_inputs():
    a = torch.tensor([2.0], requires_grad=True)
    b = torch.tensor([5.0], requires_grad=True)
    ga, gb = Grad()([a, b], torch.cat([a * b, a]))
    assert ga.tolist() == [6.0] and gb.tolist() == [2.0]


def test_grad_without_a_graph_explains_the_fix():
    with pytest.raises(RuntimeError, match=r"GRAD: .*Rudder\(\) or Prober\(\)"):
        Grad()(torch.ones(2), torch.ones(2).sum())


def test_math_ops_are_crafts_exported_by_dock():
    for name in ("Sqrt", "Clip", "Mean", "Argmax", "Maxele", "Dot", "Scatter", "Gather", "Grad"):
        craft = getattr(dock, name)
        assert issubclass(craft, dock.Craft)
        assert craft().scope == name.upper()
