"""The brochure's Cockpit section: Engine(...) geared into a Craft, TimeMachine(...).drop/.to with files,
scopes and frozen loading."""

from __future__ import annotations

import os

import pytest
import torch
from brochure.crafts import NetNeb

from nebulae.astro import dock
from nebulae.cockpit import CPU, GPU, Engine, TimeMachine
from nebulae.kit import current_engine, set_current_engine


class Pair(dock.Craft):
    """A backbone (the brochure's NetNeb) and a head, so that scopes have something to select."""

    def __init__(self, scope="PAIR"):
        super().__init__(scope)
        self.backbone = NetNeb(8, "backbone")
        self.head = dock.Dense(8, 2)

    def run(self, x):
        return self.head(self.backbone(x))


def _pair(seed: int) -> Pair:
    torch.manual_seed(seed)
    return Pair()


def test_cpu_engine_is_geared_into_a_craft():
    ng = Engine(device="CPU")
    assert ng.device == CPU and ng.chip == [torch.device("cpu")]
    assert current_engine() is ng  # what coat/shell read
    net = NetNeb(10)
    assert net.gear(ng) is net  # the brochure's un-reassigned net.gear(ng) is enough
    y = net(dock.coat(torch.randn(2, 512).numpy()))
    assert y.device.type == "cpu" and y.shape == (2, 10)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised on a machine without GPUs")
def test_gpu_engine_without_a_gpu_says_so():
    with pytest.raises(RuntimeError, match="not enough available GPUs"):
        Engine(device=GPU, ngpus=1, least_mem=2048, available_gpus=())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_engine_puts_the_craft_and_coated_data_on_the_gpu(monkeypatch):
    for var in ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER"):  # Engine sets them; undo after the test
        monkeypatch.setenv(var, os.environ.get(var, ""))
        if not os.environ[var]:
            monkeypatch.delenv(var)
    previous = current_engine()
    try:
        ng = Engine(device=GPU, ngpus=1, least_mem=0, lease=False)
        net = NetNeb(10)
        net.gear(ng)
        x = dock.coat(torch.randn(2, 512).numpy())
        assert x.device.type == "cuda" and next(net.parameters()).device.type == "cuda"
        assert dock.shell(net(x)).shape == (2, 10)
    finally:
        set_current_engine(previous)


def test_drop_and_to_round_trip_with_rotation(tmp_path):
    tm = TimeMachine(ckpt_path=str(tmp_path), save_path=str(tmp_path), max_anchors=2)
    net = _pair(0)
    paths = [tm.drop(net) for _ in range(3)]
    assert [os.path.basename(p) for p in paths] == ["PAIR-1.pth", "PAIR-2.pth", "PAIR-3.pth"]
    assert sorted(os.listdir(tmp_path)) == ["PAIR-2.pth", "PAIR-3.pth"]  # max_anchors=2 keeps the newest
    named = tm.drop(net, file="best.pth")
    assert named == str(tmp_path / "best.pth")

    other = _pair(1)
    assert tm.to(other, file="best.pth") == named
    for key, value in net.state_dict().items():
        assert torch.equal(other.state_dict()[key], value)
    assert tm.to(_pair(2)) == str(tmp_path / "PAIR-3.pth")  # file='' -> this craft's newest


def test_save_scope_and_ckpt_scope_select_a_sub_craft(tmp_path):
    tm = TimeMachine(ckpt_path=str(tmp_path), save_path=str(tmp_path))
    net = _pair(0)
    path = tm.drop(net, file="backbone.pth", save_scope="backbone")
    saved = torch.load(path, weights_only=True)
    assert sorted(saved) == ["backbone.fc.bias", "backbone.fc.weight"]

    full = tm.drop(net, file="full.pth")
    other = _pair(1)
    head_before = other.head.state_dict()
    tm.to(other, file=os.path.basename(full), ckpt_scope="backbone")
    assert torch.equal(other.backbone.fc.weight, net.backbone.fc.weight)
    for key, value in head_before.items():  # outside the scope: untouched
        assert torch.equal(other.head.state_dict()[key], value)


def test_frozen_refuses_a_partial_checkpoint(tmp_path):
    tm = TimeMachine(ckpt_path=str(tmp_path), save_path=str(tmp_path))
    tm.drop(_pair(0), file="backbone.pth", save_scope="backbone")
    other = _pair(1)
    with pytest.raises(RuntimeError, match="head"):
        tm.to(other, file="backbone.pth", frozen=True)
    tm.to(other, file="backbone.pth", frozen=False)  # the intersection loads
    assert torch.equal(other.backbone.fc.weight, _pair(0).backbone.fc.weight)
