"""dock layers: shape and dtype, gradients, agreement with plain torch, and one hand-computed case each."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nebulae.astro import dock


def grads_reach_every_parameter(craft: nn.Module, *inputs: object) -> torch.Tensor:
    out = craft(*inputs)
    torch.manual_seed(0)
    (out * torch.randn_like(out)).sum().backward()
    params = dict(craft.named_parameters())
    assert params, "the craft should have parameters"
    for name, p in params.items():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    return out


def copy_params(src: nn.Module, dst: nn.Module) -> None:
    with torch.no_grad():
        for (_, a), (_, b) in zip(src.named_parameters(), dst.named_parameters(), strict=True):
            b.copy_(a)


# -- initializers -----------------------------------------------------------------------------------------
def test_initializers_fill_then_scale() -> None:
    w = torch.empty(3, 4)
    assert torch.equal(dock.Ones(scale=2.5)(w), torch.full((3, 4), 2.5))
    assert torch.equal(dock.Zeros()(w), torch.zeros(3, 4))
    w.fill_(7)
    assert torch.equal(dock.Void()(w), torch.full((3, 4), 7.0))
    u = dock.Uniform(0.5, 1.0, scale=2)(torch.empty(1000))
    assert u.min() >= 1.0 and u.max() <= 2.0
    n = dock.Normal(mean=3, std=0.01)(torch.empty(1000))
    assert abs(n.mean().item() - 3) < 0.01
    q = dock.Orthog()(torch.empty(4, 4))
    assert torch.allclose(q @ q.T, torch.eye(4), atol=1e-5)
    torch.manual_seed(1)
    a = dock.XavierUnif(scale=3)(torch.empty(50, 50))
    bound = 3 * (6 / 100) ** 0.5
    assert a.abs().max() <= bound and a.abs().max() > bound * 0.9
    assert dock.XavierNorm()(torch.empty(64, 64)).std().item() == pytest.approx((2 / 128) ** 0.5, rel=0.1)
    with pytest.raises(ValueError, match="2 dimensions"):
        dock.XavierNorm()(torch.empty(5))


# -- Conv / TransConv -------------------------------------------------------------------------------------
@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_conv_matches_torch_and_trains(ndim: int) -> None:
    torch.manual_seed(ndim)
    conv = dock.Conv(4, 6, (3,) * ndim, stride=2, padding=1, dilation=1, group=2)
    ref = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[ndim](4, 6, 3, stride=2, padding=1, groups=2)
    copy_params(conv, ref)
    x = torch.randn(2, 4, *(7,) * ndim)
    out = grads_reach_every_parameter(conv, x)
    assert out.shape == (2, 6, *(4,) * ndim) and out.dtype == torch.float32
    assert torch.allclose(out, ref(x), atol=1e-5)
    assert conv.weights() is conv.weight


def test_conv_hand_computed_and_asymmetric_padding() -> None:
    conv = dock.Conv(1, 1, (2,), padding=(0, 1), w_init=torch.tensor([[[1.0, 10.0]]]), b_init=dock.Void())
    assert conv.bias is None and "weight" not in dict(conv.named_parameters())
    out = conv(torch.tensor([[[1.0, 2.0, 3.0]]]))
    # padded input [1, 2, 3, 0]: 1+20, 2+30, 3+0
    assert out.tolist() == [[[21.0, 32.0, 3.0]]]


def test_conv_errors_name_scope_and_shapes() -> None:
    conv = dock.Conv(3, 4, (3, 3), scope="stem")
    with pytest.raises(ValueError, match=r"stem.*N×3.*\(1, 5, 8, 8\)"):
        conv(torch.zeros(1, 5, 8, 8))
    with pytest.raises(TypeError, match="kernel"):
        dock.Conv(3, 4, 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="group"):
        dock.Conv(3, 4, (3, 3), group=2)
    with pytest.raises(ValueError, match="padding"):
        dock.Conv(3, 4, (3, 3), padding=(1, 1, 1))


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_transconv_reaches_out_size_and_matches_torch(ndim: int) -> None:
    torch.manual_seed(ndim)
    up = dock.TransConv(4, 2, (9,) * ndim, (3,) * ndim, stride=2, padding=1)
    ref = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}[ndim](
        4, 2, 3, stride=2, padding=1
    )
    copy_params(up, ref)
    x = torch.randn(2, 4, *(5,) * ndim)
    out = grads_reach_every_parameter(up, x)
    assert out.shape == (2, 2, *(9,) * ndim)
    assert torch.allclose(out, ref(x, output_size=(9,) * ndim), atol=1e-5)
    even = dock.TransConv(4, 2, (10,) * ndim, (3,) * ndim, stride=2, padding=1)
    assert even(x).shape[2:] == (10,) * ndim  # the output padding is chosen per call
    with pytest.raises(ValueError, match=r"TRANSCONV.*out_size"):
        dock.TransConv(4, 2, (15,) * ndim, (3,) * ndim, stride=2, padding=1)(x)


def test_transconv_hand_computed_and_autopad_padding() -> None:
    up = dock.TransConv(1, 1, (4,), (2,), stride=2, w_init=torch.tensor([[[1.0, 2.0]]]), b_init=dock.Ones())
    assert up(torch.tensor([[[3.0, 5.0]]])).tolist() == [[[4.0, 7.0, 6.0, 11.0]]]
    reduced = dock.TransConv(1, 1, (4,), (3,), padding=(0, 1))
    assert reduced.padding == (1,)


# -- Dense / Embed ----------------------------------------------------------------------------------------
def test_dense_matches_linear_and_trains() -> None:
    fc = dock.Dense(5, 3)
    ref = nn.Linear(5, 3)
    copy_params(fc, ref)
    x = torch.randn(4, 5)
    out = grads_reach_every_parameter(fc, x)
    assert out.shape == (4, 3) and torch.allclose(out, ref(x))
    assert fc.weights() is fc.weight


def test_dense_on_a_middle_axis() -> None:
    fc = dock.Dense(3, 2, axis=1)
    x = torch.randn(2, 3, 7)
    out = grads_reach_every_parameter(fc, x)
    assert out.shape == (2, 2, 7)
    assert torch.allclose(out, (x.transpose(1, 2) @ fc.weight.T + fc.bias).transpose(1, 2), atol=1e-6)
    assert dock.Dense(3, 2, axis=-2)(x).shape == (2, 2, 7)


def test_dense_hand_computed() -> None:
    fc = dock.Dense(2, 1, w_init=torch.tensor([[2.0, -1.0]]), b_init=dock.Ones(scale=0.5))
    assert fc(torch.tensor([[3.0, 4.0]])).tolist() == [[2.5]]


def test_dense_errors() -> None:
    with pytest.raises(ValueError, match="batch axis"):
        dock.Dense(3, 2, axis=0)
    with pytest.raises(ValueError, match=r"fc.*3 features.*\(2, 4\)"):
        dock.Dense(3, 2, scope="fc")(torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"axis 1.*\(2, 4, 3\)"):
        dock.Dense(3, 2, axis=1)(torch.zeros(2, 4, 3))


def test_embed_lookup_hand_computed_and_errors() -> None:
    table = torch.arange(6.0).view(3, 2)
    emb = dock.Embed(3, 2, w_init=dock.Zeros())
    with torch.no_grad():
        emb.weight.copy_(table)
    assert emb(torch.tensor([[2, 0]])).tolist() == [[[4.0, 5.0], [0.0, 1.0]]]
    out = emb(torch.tensor([1, 1]))
    out.sum().backward()
    assert emb.weight.grad.tolist() == [[0, 0], [2, 2], [0, 0]]
    ref = nn.Embedding(3, 2)
    copy_params(emb, ref)
    assert torch.equal(emb(torch.tensor([0, 2])), ref(torch.tensor([0, 2])))
    with pytest.raises(ValueError, match=r"EMBED.*\[0, 3\)"):
        emb(torch.tensor([3]))
    with pytest.raises(ValueError, match="integer"):
        emb(torch.tensor([1.0]))


# -- shape ops --------------------------------------------------------------------------------------------
def test_shape_ops_hand_computed() -> None:
    x = torch.arange(6.0).view(1, 2, 3)
    assert dock.Reshape()(x, (-1, 3)).tolist() == [[0, 1, 2], [3, 4, 5]]
    assert dock.Permute()(x, (0, 2, 1)).tolist() == [[[0, 3], [1, 4], [2, 5]]]
    assert dock.Expand()(x, 1).shape == (1, 1, 2, 3)
    assert dock.Squash()(x).shape == (2, 3) and dock.Squash()(x, 0).shape == (2, 3)
    assert dock.Tile()(torch.tensor([1, 2]), (2,)).tolist() == [1, 2, 1, 2]
    assert dock.Roll()(torch.tensor([1, 2, 3]), 1).tolist() == [3, 1, 2]
    assert dock.Roll()(x, 1, 2).tolist() == [[[2, 0, 1], [5, 3, 4]]]
    a, b = torch.tensor([[1, 2]]), torch.tensor([[3, 4]])
    assert dock.Concat()([a, b]).tolist() == [[1, 2, 3, 4]]
    assert dock.Concat()([a, b], 0).tolist() == [[1, 2], [3, 4]]
    assert dock.Stack()([a, b]).tolist() == [[[1, 3], [2, 4]]]
    assert dock.Pad((1, 2), value=9)(torch.tensor([[1.0]])).tolist() == [[9, 1, 9, 9]]
    assert dock.Pad((1, 1), mode=dock.REPLICATE)(torch.tensor([[[1.0, 2.0]]])).tolist() == [[[1, 1, 2, 2]]]
    assert dock.Pad((1, 1), mode=dock.REFLECT)(torch.tensor([[[1.0, 2.0, 3.0]]])).tolist() == [
        [[2, 1, 2, 3, 2]]
    ]
    assert dock.Identity()(x) is x


def test_shape_ops_match_torch_and_pass_gradients() -> None:
    x = torch.randn(2, 3, 4, requires_grad=True)
    outs = [
        (dock.Reshape()(x, (2, 12)), x.reshape(2, 12)),
        (dock.Permute()(x, (2, 0, 1)), x.permute(2, 0, 1)),
        (dock.Tile()(x, (1, 2, 1)), x.repeat(1, 2, 1)),
        (dock.Stack()([x, x], 1), torch.stack([x, x], 1)),
        (dock.Pad((1, 1, 2, 2))(x), F.pad(x, (1, 1, 2, 2))),
    ]
    for ours, ref in outs:
        assert torch.equal(ours, ref) and ours.dtype == x.dtype
    sum(o.sum() for o, _ in outs).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_shape_op_errors_name_the_scope_and_shape() -> None:
    with pytest.raises(ValueError, match=r"RESHAPE.*\(4, 4\).*\(2, 3\)"):
        dock.Reshape()(torch.zeros(2, 3), (4, 4))
    with pytest.raises(ValueError, match=r"CONCAT.*\(1, 2\), \(2, 3\)"):
        dock.Concat()([torch.zeros(1, 2), torch.zeros(2, 3)], 0)
    with pytest.raises(ValueError, match=r"SQUASH.*size 3"):
        dock.Squash()(torch.zeros(1, 3), 1)
    with pytest.raises(ValueError, match="mode"):
        dock.Pad((1, 1), mode=1)


# -- resampling -------------------------------------------------------------------------------------------
def test_zoom_modes_and_hand_computed() -> None:
    x = torch.tensor([[[[0.0, 3.0]]]])
    assert dock.Zoom(size=(1, 4))(x).tolist() == [[[[0.0, 1.0, 2.0, 3.0]]]]
    assert dock.Zoom(scale=(1, 2), interp=dock.NEAREST)(x).tolist() == [[[[0.0, 0.0, 3.0, 3.0]]]]
    assert dock.Zoom(size=(1, 1), interp=dock.AREA)(x).tolist() == [[[[1.5]]]]
    y = torch.randn(1, 2, 5, 6, requires_grad=True)
    out = dock.Zoom(size=(7, 9), interp=dock.CUBIC, aligned=False)(y)
    assert torch.equal(out, F.interpolate(y, (7, 9), mode="bicubic", align_corners=False))
    out.sum().backward()
    assert y.grad is not None
    assert dock.Zoom(scale=(2,))(torch.zeros(1, 1, 3)).shape == (1, 1, 6)
    assert dock.Zoom(size=(2, 2, 2))(torch.zeros(1, 1, 4, 4, 4)).shape == (1, 1, 2, 2, 2)
    with pytest.raises(ValueError, match="exactly one"):
        dock.Zoom(size=(2, 2), scale=(2, 2))
    with pytest.raises(ValueError, match=r"ZOOM.*\(1, 4, 4\)"):
        dock.Zoom(size=(2, 2))(torch.zeros(1, 4, 4))


def test_subpix_and_surpix_are_inverse() -> None:
    x = torch.arange(16.0).view(1, 4, 2, 2)
    up = dock.SubPix(2)(x)
    assert up.shape == (1, 1, 4, 4) and up[0, 0, 0].tolist() == [0.0, 4.0, 1.0, 5.0]
    assert torch.equal(dock.SurPix(2)(up), x)
    with pytest.raises(ValueError, match="SUBPIX"):
        dock.SubPix(2)(torch.zeros(1, 3, 2, 2))


# -- pooling ----------------------------------------------------------------------------------------------
def test_pool_hand_computed_and_global() -> None:
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    assert dock.MaxPool((2, 2))(x).tolist() == [[[[4.0]]]]
    assert dock.AvgPool((2, 2))(x).tolist() == [[[[2.5]]]]
    assert dock.MaxPool((-1, -1))(x).tolist() == [[[[4.0]]]]
    assert dock.AvgPool((-1,))(torch.tensor([[[1.0, 2.0, 6.0]]])).tolist() == [[[3.0]]]
    neg = -torch.ones(1, 1, 2)
    assert dock.MaxPool((2,), 1, padding=(0, 1))(neg).tolist() == [[[-1.0, -1.0]]]  # pads with -inf, not 0
    assert dock.AvgPool((2,), 1, padding=(0, 1))(neg).tolist() == [[[-1.0, -0.5]]]


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_pool_matches_torch(ndim: int) -> None:
    x = torch.randn(2, 3, *(6,) * ndim, requires_grad=True)
    k = (3,) * ndim
    ours = dock.MaxPool(k, 2, padding=1)(x)
    assert torch.equal(ours, {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[ndim](x, 3, 2, 1))
    avg = dock.AvgPool(k, 2, padding=1)(x)
    assert torch.allclose(avg, {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}[ndim](x, 3, 2, 1))
    (ours.sum() + avg.sum()).backward()
    assert x.grad is not None
    with pytest.raises(ValueError, match="MAXPOOL"):
        dock.MaxPool(k)(torch.zeros(3, *(6,) * ndim))


# -- activations ------------------------------------------------------------------------------------------
def test_activations_hand_computed() -> None:
    x = torch.tensor([-2.0, 0.0, 3.0])
    assert dock.Relu()(x).tolist() == [0.0, 0.0, 3.0]
    assert dock.LRelu()(x).tolist() == pytest.approx([-0.4, 0.0, 3.0])
    assert dock.PRelu(0.5)(x).tolist() == [-1.0, 0.0, 3.0]
    assert dock.Tanh()(torch.tensor([0.0])).tolist() == [0.0]
    assert dock.Sigm()(torch.tensor([0.0])).tolist() == [0.5]
    assert dock.Sftm()(torch.tensor([[0.0, 0.0]])).tolist() == [[0.5, 0.5]]
    assert dock.Sftm(axis=0)(torch.tensor([[1.0], [1.0]])).tolist() == [[0.5], [0.5]]
    assert dock.Sftp()(torch.tensor([0.0])).item() == pytest.approx(0.6931472)
    assert dock.Gelu()(torch.tensor([1.0])).item() == pytest.approx(0.8413447)


def test_activations_match_torch_and_prelu_trains() -> None:
    x = torch.randn(3, 4)
    pairs = [
        (dock.Relu(), F.relu),
        (dock.LRelu(0.1), lambda t: F.leaky_relu(t, 0.1)),
        (dock.Gelu(), F.gelu),
        (dock.Tanh(), torch.tanh),
        (dock.Sigm(), torch.sigmoid),
        (dock.Sftp(), F.softplus),
        (dock.Sftm(), lambda t: F.softmax(t, -1)),
    ]
    for craft, ref in pairs:
        assert torch.equal(craft(x), ref(x)), craft.scope
    grads_reach_every_parameter(dock.PRelu(), x)


# -- normalisation ----------------------------------------------------------------------------------------
def test_bn_hand_computed_and_running_stats() -> None:
    bn = dock.BN(1, dim=1, mmnt=0.9)
    assert bn.momentum == pytest.approx(0.1)
    out = bn(torch.tensor([[1.0], [3.0]]))
    assert out.flatten().tolist() == pytest.approx([-1.0, 1.0], abs=1e-4)
    # running mean 0.9·0 + 0.1·2; running var uses the unbiased batch variance 2
    assert bn.running_mean.item() == pytest.approx(0.2) and bn.running_var.item() == pytest.approx(1.1)
    bn.gear(False)
    assert bn(torch.tensor([[0.2]])).item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_bn_and_in_match_torch(ndim: int) -> None:
    x = torch.randn(4, 3, *(5,) * ndim)
    bn, ref = (
        dock.BN(3, ndim, mmnt=0.8),
        {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[ndim](3, momentum=0.2),
    )
    assert torch.allclose(grads_reach_every_parameter(bn, x), ref(x), atol=1e-5)
    assert torch.allclose(bn.running_var, ref.running_var) and bn.num_batches_tracked.item() == 1
    assert set(bn.state_dict()) == set(ref.state_dict())
    inorm = dock.IN(3, ndim)
    ref_in = {1: nn.InstanceNorm1d, 2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}[ndim](3, affine=True)
    assert torch.allclose(grads_reach_every_parameter(inorm, x), ref_in(x), atol=1e-5)
    assert bn.weights() is bn.weight
    assert dock.BN(3, ndim, resilient=False).weight is None


def test_in_ln_gn_hand_computed() -> None:
    x = torch.tensor([[[1.0, 3.0], [5.0, 5.0]]])  # N=1, C=2, L=2
    assert dock.IN(2, 1)(x).tolist()[0][0] == pytest.approx([-1.0, 1.0], abs=1e-4)
    assert dock.IN(2, 1)(x).tolist()[0][1] == pytest.approx([0.0, 0.0], abs=1e-4)
    ln = dock.LN(2)(torch.tensor([[2.0, 4.0]]))
    assert ln.tolist()[0] == pytest.approx([-1.0, 1.0], abs=1e-4)
    gn = dock.GN(2, 1)(x)  # one group over all four values (mean 3.5, var 2.75)
    assert gn[0, 0].tolist() == pytest.approx([-1.5076, -0.3015], abs=1e-3)


def test_ln_reorders_channel_last_shapes_and_matches_torch() -> None:
    ln = dock.LN((5, 6, 3))
    assert ln.norm_shape == (3, 5, 6)
    x = torch.randn(2, 3, 5, 6)
    ref = nn.LayerNorm((3, 5, 6))
    assert torch.allclose(grads_reach_every_parameter(ln, x), ref(x), atol=1e-5)
    with pytest.raises(ValueError, match=r"LN.*\(3, 5, 6\).*\(2, 5, 6, 3\)"):
        ln(torch.zeros(2, 5, 6, 3))


def test_gn_matches_torch() -> None:
    x = torch.randn(2, 6, 4, 4)
    assert torch.allclose(grads_reach_every_parameter(dock.GN(6, 3), x), nn.GroupNorm(3, 6)(x), atol=1e-5)
    with pytest.raises(ValueError, match="divisible"):
        dock.GN(6, 4)


def test_conditional_norms_take_gamma_and_beta_from_z() -> None:
    torch.manual_seed(0)
    cbn = dock.CBN(8, 3, 2)
    x, z = torch.randn(4, 3, 5, 5), torch.randn(4, 8)
    with pytest.raises(RuntimeError, match="first run"):
        cbn.weights()
    out = grads_reach_every_parameter(cbn, x, z)
    gamma, beta = cbn.gamma(z), cbn.beta(z)
    expected = F.batch_norm(x, None, None, training=True) * gamma[:, :, None, None] + beta[:, :, None, None]
    assert torch.allclose(out, expected, atol=1e-5)
    assert cbn.weights().shape == (4, 3)
    cin = dock.CIN(8, 3, 2)
    out = grads_reach_every_parameter(cin, x, z)
    assert torch.allclose(
        out, F.instance_norm(x) * cin.gamma(z)[:, :, None, None] + cin.beta(z)[:, :, None, None], atol=1e-5
    )
    with pytest.raises(ValueError, match=r"CBN.*N×8"):
        cbn(x, torch.randn(4, 7))


def test_dropout_modes() -> None:
    torch.manual_seed(0)
    x = torch.ones(8, 16, 4, 4)
    element = dock.Dropout(0.5, 1)(x)
    assert set(element.unique().tolist()) == {0.0, 2.0}
    channel = dock.Dropout(0.5, 2)(x)
    per_channel = channel.flatten(2)
    assert torch.equal(per_channel.min(2).values, per_channel.max(2).values)  # whole channels
    assert torch.equal(dock.Dropout(0.5, 3).gear(False)(torch.ones(2, 2, 2, 2, 2)), torch.ones(2, 2, 2, 2, 2))
    with pytest.raises(ValueError, match="p_drop"):
        dock.Dropout(1.5)


def test_spectral_norm_wrapper_normalises_the_weight() -> None:
    torch.manual_seed(0)
    sn = dock.SN(dock.Dense(6, 4), niters=20)
    x = torch.randn(3, 6)
    grads_reach_every_parameter(sn, x)
    sigma = torch.linalg.matrix_norm(sn.weights().detach(), ord=2)
    assert sigma.item() == pytest.approx(1.0, abs=1e-3)
    with pytest.raises(ValueError, match="kernel"):
        dock.SN(dock.Dense(2, 2), pname="kernel")
