"""Gradient contexts, coat/shell on the current engine, autoPad/autopad."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from nebulae.astro import Nozzle, Prober, Rudder, autoPad, autopad, coat, dock, shell
from nebulae.kit import set_current_engine


@pytest.fixture
def cpu_engine():
    eng = types.SimpleNamespace(
        device="CPU", chip=[torch.device("cpu")], rank=-1, local_rank=0, gearbox=20, multi_piston=False
    )
    set_current_engine(eng)
    yield eng
    set_current_engine(None)


# -- contexts ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("ctx", "grad", "flag"), [(Rudder, True, True), (Prober, True, False), (Nozzle, False, False)]
)
def test_context_sets_grad_mode_and_binds_flag(ctx, grad, flag) -> None:
    with torch.no_grad() if grad else torch.enable_grad():
        with ctx() as bound:
            assert torch.is_grad_enabled() is grad
            assert bound is flag
        assert torch.is_grad_enabled() is not grad


def test_contexts_nest_and_restore_in_order() -> None:
    assert torch.is_grad_enabled()
    with Nozzle():
        with Rudder():
            assert torch.is_grad_enabled()
            with Nozzle():
                assert not torch.is_grad_enabled()
            assert torch.is_grad_enabled()
        assert not torch.is_grad_enabled()
    assert torch.is_grad_enabled()


def test_one_context_instance_is_reusable_and_self_nestable() -> None:
    nozzle = Nozzle()
    for _ in range(2):
        with nozzle:
            with nozzle:
                assert not torch.is_grad_enabled()
            assert not torch.is_grad_enabled()
        assert torch.is_grad_enabled()


def test_context_restores_grad_mode_after_an_exception() -> None:
    with pytest.raises(KeyError), Nozzle():
        raise KeyError("boom")
    assert torch.is_grad_enabled()


def test_context_flag_drives_gear_and_optional_crafts() -> None:
    net = dock.Dense(2, 2)
    with Rudder() as r:
        net.gear(r)
        assert net.training
    other = dock.BN(2, 1)
    with Prober(other):
        assert not other.training
        out = other(torch.randn(3, 2, requires_grad=True))
        assert out.requires_grad
    assert other.training
    with Nozzle(other):
        assert not other.training and not other(torch.randn(3, 2)).requires_grad
    with pytest.raises(TypeError):
        Rudder("net")


# -- coat / shell -----------------------------------------------------------------------------------------
def test_coat_before_any_engine_is_cpu() -> None:
    t = coat(3.5)
    assert t.device.type == "cpu" and t.dtype == torch.float32 and not t.requires_grad


@pytest.mark.parametrize(
    ("datum", "dtype"),
    [
        (1, torch.int64),
        (2.0, torch.float32),
        (True, torch.bool),
        ([1.0, 2.0], torch.float32),
        ((1, 2), torch.int64),
        (np.float64(1.5), torch.float64),
        (np.int32(3), torch.int32),
        (np.zeros((2, 3), np.float32), torch.float32),
    ],
)
def test_coat_converts_supported_inputs(datum, dtype, cpu_engine) -> None:
    t = coat(datum)
    assert t.dtype == dtype and t.is_leaf
    assert np.array_equal(t.numpy(), np.asarray(datum))


def test_coat_shares_numpy_memory_on_cpu_and_copies_read_only_arrays() -> None:
    arr = np.zeros(3, np.float32)
    t = coat(arr)
    arr[0] = 7
    assert t[0].item() == 7
    frozen = np.ones(3, np.float32)
    frozen.flags.writeable = False
    assert torch.equal(coat(frozen), torch.ones(3))


def test_coat_trainable_result_is_a_leaf_with_grad(cpu_engine) -> None:
    src = torch.ones(2, requires_grad=True) * 2  # a non-leaf input
    t = coat(src, as_const=False)
    assert t.is_leaf and t.requires_grad
    (t * 3).sum().backward()
    assert torch.equal(t.grad, torch.full((2,), 3.0))
    assert not coat(src).requires_grad


def test_coat_rejects_unsupported_inputs() -> None:
    for bad in ("text", {"a": 1}, None, ["a", "b"], np.array(["x"]), object()):
        with pytest.raises(TypeError, match="coat"):
            coat(bad)
    with pytest.raises(TypeError, match="floating"):
        coat([1, 2], as_const=False)


def test_shell_returns_numpy_and_scalars() -> None:
    x = torch.tensor([1.0, 2.0], requires_grad=True) * 2
    out = shell(x)
    assert isinstance(out, np.ndarray) and out.tolist() == [2.0, 4.0]
    scalar = shell(torch.tensor(3.0))
    assert isinstance(scalar, np.floating) and scalar == 3.0
    kept = shell(x, as_np=False)
    assert isinstance(kept, torch.Tensor) and not kept.requires_grad
    with pytest.raises(TypeError, match="tensor"):
        shell(np.zeros(2))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_coat_and_shell_on_a_gpu_engine() -> None:
    eng = types.SimpleNamespace(
        device="GPU", chip=[torch.device("cuda:0")], rank=-1, local_rank=0, gearbox=20, multi_piston=False
    )
    set_current_engine(eng)
    try:
        t = coat(np.ones(3, np.float32), as_const=False)
        assert t.is_cuda and t.is_leaf and t.requires_grad
        t.sum().backward()
        assert t.grad is not None
        eng.rank = 0
        assert coat([1.0], sync=False).device == torch.device("cuda:0")
        assert shell(t * 2, sync=True).tolist() == [2.0, 2.0, 2.0]
        assert shell(t, as_np=False).is_cuda
    finally:
        set_current_engine(None)


# -- autoPad ----------------------------------------------------------------------------------------------
def test_autopad_hand_computed_cases() -> None:
    assert autoPad((5, 5), (3, 3)) == (1, 1, 1, 1)
    assert autoPad((6,), (4,)) == (1, 2)
    assert autoPad((7, 8), (3, 2), stride=2) == (0, 0, 1, 1)  # W: ceil(8/2)=4 → margin 0; H: 4 → 2
    assert autoPad(None, (3, 3), stride=2) == (0, 1, 0, 1)
    assert autoPad((), (5, 5, 5), dilation=2) == (4, 4, 4, 4, 4, 4)
    assert autoPad((4,), (1,), stride=3) == (0, 0)  # a negative margin is clamped
    assert autopad((3, 3)) == (1, 1)
    assert autopad((4,)) == (1, 2)


def test_autopad_errors() -> None:
    with pytest.raises(ValueError, match="in_size"):
        autoPad((5,), (3, 3))
    with pytest.raises(ValueError, match="stride"):
        autoPad((5, 5), (3, 3), stride=(1, 1, 1))
    with pytest.raises(ValueError, match="kernel"):
        autoPad((5,) * 4, (3,) * 4)


@settings(max_examples=60, deadline=None)
@given(
    ndim=st.integers(1, 3),
    data=st.data(),
)
def test_autopad_keeps_size_for_stride_one(ndim, data) -> None:
    size = tuple(data.draw(st.lists(st.integers(1, 9), min_size=ndim, max_size=ndim)))
    kernel = tuple(data.draw(st.lists(st.integers(1, 5), min_size=ndim, max_size=ndim)))
    dilation = tuple(data.draw(st.lists(st.integers(1, 3), min_size=ndim, max_size=ndim)))
    x = torch.zeros((1, 1, *size))
    pads = autoPad(size, kernel, 1, dilation)
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[ndim]
    out = conv(F.pad(x, pads), torch.zeros((1, 1, *kernel)), dilation=dilation)
    assert tuple(out.shape[2:]) == size
    layer = dock.Conv(1, 1, kernel, padding=pads, dilation=dilation)
    assert tuple(layer(x).shape[2:]) == size


def test_symmetric_autopad_goes_into_the_convolution_padding() -> None:
    conv = dock.Conv(2, 3, (3, 3), padding=autoPad((8, 8), (3, 3)))
    assert conv.padding == (1, 1) and conv.prepad is None
    uneven = dock.Conv(2, 3, (2, 2), padding=autoPad((8, 8), (2, 2)))
    assert uneven.prepad == (0, 1, 0, 1)
    ref = nn.Conv2d(2, 3, 3, padding=1)
    with torch.no_grad():
        ref.weight.copy_(conv.weight)
        ref.bias.copy_(conv.bias)
    x = torch.randn(1, 2, 8, 8)
    assert torch.allclose(conv(x), ref(x), atol=1e-6)
