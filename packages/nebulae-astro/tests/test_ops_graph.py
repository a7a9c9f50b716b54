"""Sparse and graph-convolution crafts (issue 6)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nebulae.astro import dock


def test_d2s_and_s2d_round_trip():
    x = torch.tensor([[0.0, 1.5], [0.0, 0.0]])
    s = dock.D2S()(x)
    assert s.is_sparse and s._nnz() == 1
    assert dock.D2S()(s) is s
    back = dock.S2D()(s)
    assert not back.is_sparse and torch.equal(back, x)
    assert dock.S2D()(x) is x


def test_spdot_hand_computed_sparse_left_and_right():
    a = torch.tensor([[0.0, 2.0], [0.0, 0.0]]).to_sparse()
    assert dock.SpDot()(a, torch.tensor([[1.0], [3.0]])).tolist() == [[6.0], [0.0]]
    assert dock.SpDot()(torch.tensor([[1.0, 3.0]]), a).tolist() == [[0.0, 2.0]]


def test_spdot_agrees_with_dense_products_and_batches():
    x = torch.randn(4, 5) * (torch.rand(4, 5) > 0.6)
    y = torch.randn(5, 3)
    torch.testing.assert_close(dock.SpDot()(x.to_sparse(), y), x @ y)
    torch.testing.assert_close(dock.SpDot()(y.T, x.T.to_sparse()), y.T @ x.T)
    xb = torch.randn(2, 4, 5) * (torch.rand(2, 4, 5) > 0.6)
    yb = torch.randn(2, 5, 3)
    torch.testing.assert_close(dock.SpDot()(xb.to_sparse(), yb, in_batch=True), xb @ yb)
    torch.testing.assert_close(dock.SpDot()(yb.mT, xb.mT.to_sparse(), in_batch=True), yb.mT @ xb.mT)


def test_spdot_gradient_reaches_the_dense_operand():
    a = torch.eye(3).to_sparse()
    y = torch.randn(3, 2, requires_grad=True)
    dock.SpDot()(a, y).sum().backward()
    assert y.grad.tolist() == [[1.0, 1.0]] * 3


def test_spdot_needs_a_sparse_operand_and_chaining_shapes():
    with pytest.raises(ValueError, match="SPDOT: one of 'x' and 'y' must be a sparse tensor"):
        dock.SpDot()(torch.zeros(2, 2), torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"SPDOT: x \(2, 3\) and y \(2, 2\) do not chain"):
        dock.SpDot()(torch.zeros(2, 3).to_sparse(), torch.zeros(2, 2))


def _path_graph_laplacian(n: int) -> torch.Tensor:
    adj = torch.zeros(n, n)
    for i in range(n - 1):
        adj[i, i + 1] = adj[i + 1, i] = 1.0
    return torch.diag(adj.sum(1)) - adj


def test_graph_conv_eig_matches_the_formula_and_its_gradients():
    lap = _path_graph_laplacian(5)
    _, eigm = torch.linalg.eigh(lap)
    conv = dock.GraphConvEig(3, 4, eigm, b_init=dock.Normal())
    x = torch.randn(2, 5, 3, requires_grad=True)
    y = conv(x)
    assert y.shape == (2, 5, 4) and conv.scope == "GRAPHCONVEIG"
    expected = eigm @ (conv.filter * (eigm.T @ (x @ conv.proj.weight.T))) + conv.bias
    torch.testing.assert_close(y, expected)
    y.square().sum().backward()
    for name, p in conv.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert conv.weights() is conv.proj.weight


def test_graph_conv_eig_hand_computed_identity_basis():
    # U = I: y = θ ⊙ (x W) + b per node
    conv = dock.GraphConvEig(1, 1, np.eye(2), b_init=dock.Void())
    with torch.no_grad():
        conv.proj.weight.fill_(2.0)
        conv.filter.copy_(torch.tensor([[1.0], [-3.0]]))
    assert conv.bias is None
    assert conv(torch.tensor([[1.0], [2.0]])).tolist() == [[2.0], [-12.0]]


def test_graph_conv_lap_hand_computed_polynomial():
    lap = torch.tensor([[1.0, -1.0], [-1.0, 1.0]])
    conv = dock.GraphConvLap(2, 1, 1, lap)
    with torch.no_grad():
        conv.proj.weight.fill_(1.0)
        conv.filter.copy_(torch.tensor([[2.0], [1.0]]))
        conv.bias.fill_(0.5)
    # (2 I + L) x + 0.5 with x = (1, 3): (2 + 1 - 3, 6 - 1 + 3) + 0.5
    assert conv(torch.tensor([[1.0], [3.0]])).tolist() == [[0.5], [8.5]]


def test_graph_conv_lap_accepts_sparse_laplacian_and_batches():
    lap = _path_graph_laplacian(4)
    conv = dock.GraphConvLap(3, 2, 5, lap.to_sparse())
    x = torch.randn(3, 4, 2)
    y = conv(x)
    mix = conv.filter[0] * torch.eye(4) + conv.filter[1] * lap + conv.filter[2] * lap @ lap
    torch.testing.assert_close(y, mix @ conv.proj(x) + conv.bias, rtol=1e-5, atol=1e-5)
    y.sum().backward()
    assert conv.filter.grad is not None and conv.proj.weight.grad is not None


def test_graph_conv_adj_agrees_with_the_dense_product():
    adj = torch.tensor([[0.5, 0.5, 0.0], [0.5, 0.0, 0.5], [0.0, 1.0, 0.0]])
    conv = dock.GraphConvAdj(2, 3, adj)
    assert conv.adj.is_sparse
    x = torch.randn(4, 3, 2, requires_grad=True)
    y = conv(x)
    torch.testing.assert_close(y, adj @ conv.proj(x) + conv.bias)
    torch.testing.assert_close(conv(x[0]), y[0])
    y.sum().backward()
    assert x.grad is not None and conv.proj.weight.grad is not None and conv.bias.grad is not None


def test_graph_conv_adj_hand_computed():
    conv = dock.GraphConvAdj(1, 1, torch.tensor([[0.0, 1.0], [1.0, 0.0]]).to_sparse(), b_init=dock.Void())
    with torch.no_grad():
        conv.proj.weight.fill_(10.0)
    assert conv(torch.tensor([[1.0], [2.0]])).tolist() == [[20.0], [10.0]]


def test_graph_convs_state_dict_holds_only_parameters():
    conv = dock.GraphConvAdj(2, 3, torch.eye(3))
    assert set(conv.state_dict()) == {"proj.weight", "bias"}


def test_graph_convs_report_shape_errors():
    conv = dock.GraphConvAdj(2, 3, torch.eye(3))
    with pytest.raises(
        ValueError, match=r"GRAPHCONVADJ: 'x' must be V×C or N×V×C with V=3 nodes and C=2 .*\(got \(3, 4\)\)"
    ):
        conv(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="GRAPHCONVEIG: 'eigm' must be a square"):
        dock.GraphConvEig(1, 1, torch.zeros(2, 3))
    with pytest.raises(TypeError, match=r"GRAPHCONVLAP: 'lap' must be a torch.Tensor or a NumPy array"):
        dock.GraphConvLap(2, 1, 1, [[1.0]])
    with pytest.raises(ValueError, match="GRAPHCONVLAP: 'order' must be an int >= 1"):
        dock.GraphConvLap(0, 1, 1, torch.eye(2))


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 6),
    m=st.integers(1, 6),
    p=st.integers(1, 6),
    density=st.floats(0.0, 1.0),
    sparse_left=st.booleans(),
)
def test_spdot_equals_the_dense_product_property(n, m, p, density, sparse_left):
    gen = torch.Generator().manual_seed(n * 100 + m * 10 + p)
    x = torch.randn(n, m, generator=gen, dtype=torch.float64)
    x = x * (torch.rand(n, m, generator=gen, dtype=torch.float64) < density)
    y = torch.randn(m, p, generator=gen, dtype=torch.float64)
    if sparse_left:
        torch.testing.assert_close(dock.SpDot()(x.to_sparse(), y), x @ y)
    else:
        torch.testing.assert_close(dock.SpDot()(y.T, x.T.to_sparse()), y.T @ x.T)


def test_graph_conv_input_gradients_pass_gradcheck():
    lap = _path_graph_laplacian(3).double()
    x = torch.randn(2, 3, 2, dtype=torch.float64, requires_grad=True)
    for conv in (
        dock.GraphConvLap(2, 2, 2, lap),
        dock.GraphConvEig(2, 2, torch.linalg.eigh(lap)[1]),
        dock.GraphConvAdj(2, 2, lap),
    ):
        conv = conv.double()
        assert torch.autograd.gradcheck(conv, (x,)), conv.scope
