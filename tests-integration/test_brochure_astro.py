"""The brochure's Astro section: the NetNeb/NetTorch listing, Rudder/Prober/Nozzle, coat/shell and autoPad."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from brochure.crafts import NetNeb, NetTorch

from nebulae.astro import dock


def test_the_listing_sets_the_backend_through_nebulae_law():
    import nebulae

    assert nebulae.Law.CORE == "pytorch"
    assert nebulae.Law is nebulae.kit.Law


def test_dock_layers_and_torch_layers_build_the_same_network():
    torch.manual_seed(0)
    neb, tch = NetNeb(10), NetTorch(10)
    assert (neb.scope, tch.scope) == ("NEB", "TORCH")
    assert sorted(neb.state_dict()) == sorted(tch.state_dict()) == ["fc.bias", "fc.weight"]
    neb.load_state_dict(tch.state_dict())
    x = torch.randn(3, 2, 16, 16)  # 2*16*16 = 512 features per sample
    y = neb(x)
    assert y.shape == (3, 10)
    assert torch.allclose(y, tch(x))


def test_rudder_trains_prober_gives_gradients_nozzle_builds_no_graph():
    torch.manual_seed(0)
    net = NetNeb(4)
    x = torch.randn(2, 512)
    target = torch.tensor([1, 3])
    before = net.fc.weight.detach().clone()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)

    with dock.Rudder() as r:
        net.gear(r)
        loss = torch.nn.functional.cross_entropy(net(x), target)
        loss.backward()
        optimizer.step()
    assert r is True and net.training
    assert not torch.equal(net.fc.weight, before)

    with dock.Prober() as p:
        net.gear(p)
        optimizer.zero_grad()
        probe = x.clone().requires_grad_(True)
        net(probe).sum().backward()
    assert p is False and not net.training
    assert probe.grad is not None and probe.grad.shape == x.shape

    with dock.Nozzle() as n:
        net.gear(n)
        y = net(x)
    assert n is False and not y.requires_grad
    assert torch.is_grad_enabled()  # each context restores the grad mode on exit


def test_coat_and_shell_move_data_in_and_out():
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    const = dock.coat(array)
    variable = dock.coat(1.5, as_const=False)
    assert isinstance(const, torch.Tensor) and const.device.type == "cpu" and not const.requires_grad
    assert variable.requires_grad and variable.is_leaf
    (variable * 2).backward()
    assert variable.grad == 2.0

    back = dock.shell(const * 2)
    assert isinstance(back, np.ndarray) and np.array_equal(back, array * 2)
    assert isinstance(dock.shell(variable), np.floating)  # a 0-d tensor becomes a NumPy scalar
    kept = dock.shell(variable, as_np=False)
    assert isinstance(kept, torch.Tensor) and not kept.requires_grad


@pytest.mark.parametrize(
    ("in_size", "kernel", "stride", "dilation", "expected"),
    [
        ((7, 7), (3, 3), 1, 1, (1, 1, 1, 1)),
        ((7,), (4,), 1, 1, (1, 2)),
        ((7, 8, 9), (3, 3, 3), 2, 2, (2, 2, 1, 2, 2, 2)),
    ],
)
def test_autopad_returns_the_padding_tuple(in_size, kernel, stride, dilation, expected):
    pad = dock.autoPad(in_size, kernel, stride, dilation)
    assert pad == expected
    # "an output in same size with input when stride is 1" (and ceil(size / stride) otherwise)
    conv = (torch.nn.functional.conv1d, torch.nn.functional.conv2d, torch.nn.functional.conv3d)[
        len(kernel) - 1
    ]
    x = torch.randn(1, 1, *in_size)
    y = conv(torch.nn.functional.pad(x, pad), torch.ones(1, 1, *kernel), stride=stride, dilation=dilation)
    assert tuple(y.shape[2:]) == tuple(-(-s // stride) for s in in_size)
