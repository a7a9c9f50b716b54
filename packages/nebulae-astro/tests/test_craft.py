"""Craft: scope, run/forward, gear, the value store, vars/weights, mixp/lowp, formulate."""

from __future__ import annotations

import types

import pytest
import torch
from torch import nn

from nebulae.astro import Craft, dock, fn
from nebulae.kit import set_current_engine


class Net(Craft):
    def __init__(self, scope: str = "NET") -> None:
        super().__init__(scope)
        self.fc = nn.Linear(4, 3)
        self.inner = Inner()

    def run(self, x: torch.Tensor) -> torch.Tensor:
        self["hidden"] = x * 2
        return self.inner(self.fc(x))


class Inner(Craft):
    def __init__(self) -> None:
        super().__init__("INNER")

    def run(self, x: torch.Tensor) -> torch.Tensor:
        self["act"] = torch.relu(x)
        return self["act"]


def fake_engine(**overrides: object) -> types.SimpleNamespace:
    attrs = dict(
        device="CPU", chip=[torch.device("cpu")], rank=-1, local_rank=0, gearbox=20, multi_piston=False
    )
    attrs.update(overrides)
    return types.SimpleNamespace(**attrs)


def test_scope_must_be_a_str() -> None:
    with pytest.raises(TypeError, match="'scope'"):
        Craft(3)  # type: ignore[arg-type]


def test_dock_craft_and_package_craft_are_one_class() -> None:
    assert dock.Craft is Craft


def test_run_is_abstract() -> None:
    with pytest.raises(NotImplementedError, match="run"):
        Craft("X")(1)


def test_call_goes_through_forward_so_hooks_fire() -> None:
    net = Net()
    seen = []
    net.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    out = net(torch.ones(2, 4))
    assert seen == [out.shape] == [torch.Size([2, 3])]


def test_value_store_walks_sub_crafts() -> None:
    net = Net()
    x = torch.randn(2, 4)
    net(x)
    assert torch.equal(net["hidden"], x * 2)
    assert net["inner/act"] is not None and net["inner/act"].min() >= 0
    assert net["inner/missing"] is None
    assert net["inner/"] is net.inner


def test_value_store_is_not_state() -> None:
    net = Net()
    net["x"] = torch.ones(3)
    assert all(k != "x" for k in net.state_dict())


def test_value_store_rejects_slash_and_unknown_paths() -> None:
    net = Net()
    with pytest.raises(ValueError, match="'/'"):
        net["a/b"] = 1
    with pytest.raises(AttributeError, match="nope"):
        net["nope/x"]
    with pytest.raises(TypeError, match="fc"):
        net["fc/weight"]


def test_gear_bool_switches_mode_and_returns_self() -> None:
    net = Net()
    assert net.gear(False) is net and not net.training and not net.inner.training
    assert net.gear(True) is net and net.training


def test_gear_rejects_other_types() -> None:
    with pytest.raises(TypeError, match="bool"):
        Net().gear(1)


def test_gear_cpu_engine_returns_self() -> None:
    net = Net()
    assert net.gear(fake_engine()) is net
    assert next(net.parameters()).device.type == "cpu"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_gear_static_engine_returns_compiled_wrapper() -> None:
    net = Net()
    module = net.gear(fake_engine(gearbox=21))
    assert module is not net and module._orig_mod is net  # type: ignore[union-attr]


def test_vars_and_weights() -> None:
    net = Net()
    assert list(net.vars()) == list(net.parameters())
    with pytest.raises(NotImplementedError):
        net.weights()


def test_mixp_runs_under_autocast_and_keeps_float32_parameters() -> None:
    net = Net().mixp(torch.bfloat16)
    out = net(torch.randn(2, 4))
    assert out.dtype == torch.bfloat16
    assert net.fc.weight.dtype == torch.float32
    assert net.mixp(None)(torch.randn(2, 4)).dtype == torch.float32
    with pytest.raises(ValueError, match="mixp"):
        net.mixp(torch.float64)


def test_mixp_reads_the_engine_device() -> None:
    set_current_engine(fake_engine())
    try:
        assert Net().mixp()(torch.randn(1, 4)).dtype == torch.bfloat16
    finally:
        set_current_engine(None)


def test_lowp_casts_parameters() -> None:
    net = Net().lowp()
    assert net.fc.weight.dtype == torch.float16


def test_formulate_and_fns() -> None:
    net = Net()
    graph = fn("fc") >> fn("inner") >> fn("out")
    net.formulate(graph, fn("a") & fn("b") & fn("c"))
    assert [str(f) for f in net.fns] == ["(fc >> inner >> out)", "(a & b & c)"]
    net.fns.clear()
    assert len(net.fns) == 2
    assert str(fn("a") - (fn("b") - fn("c"))) == "(a - (b - c))"
    with pytest.raises(TypeError):
        net.formulate("x")  # type: ignore[arg-type]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gear_gpu_engine_moves_to_cuda_and_mixp_float16() -> None:
    net = Net()
    eng = fake_engine(device="GPU", chip=[torch.device("cuda:0")], rank=-1)
    set_current_engine(eng)
    try:
        assert net.gear(eng) is net
        assert next(net.parameters()).is_cuda
        out = net.mixp(torch.float16)(torch.randn(2, 4, device="cuda"))
        assert out.dtype == torch.float16
        dp = Net().gear(fake_engine(device="GPU", chip=[torch.device("cuda:0")], multi_piston=True))
        assert isinstance(dp, nn.DataParallel)
        low = Net().lowp().cuda()
        assert low(torch.randn(2, 4, device="cuda", dtype=torch.float16)).dtype == torch.float16
    finally:
        set_current_engine(None)


def test_brochure_example_networks_agree() -> None:
    class NetNeb(dock.Craft):
        def __init__(self, nclass: int, scope: str = "NEB") -> None:
            super().__init__(scope)
            self.flat = dock.Reshape()
            self.fc = dock.Dense(512, nclass)

        def run(self, x: torch.Tensor) -> torch.Tensor:
            x = self.flat(x, (-1, 512))
            return self.fc(x)

    class NetTorch(dock.Craft):
        def __init__(self, nclass: int, scope: str = "TORCH") -> None:
            super().__init__(scope)
            self.fc = torch.nn.Linear(512, nclass)

        def run(self, x: torch.Tensor) -> torch.Tensor:
            x = x.view(-1, 512)
            return self.fc(x)

    neb, ref = NetNeb(10), NetTorch(10)
    ref.load_state_dict(neb.state_dict())  # same parameter names and shapes
    x = torch.randn(3, 8, 64)
    assert neb.scope == "NEB" and torch.allclose(neb(x), ref(x), atol=1e-6)


def test_crafts_nest_inside_plain_torch_code() -> None:
    seq = nn.Sequential(dock.Dense(4, 3), nn.ReLU(), Inner())
    out = seq(torch.randn(2, 4))
    assert out.shape == (2, 3) and set(seq.state_dict()) == {"0.weight", "0.bias"}
    assert seq[2]["act"] is not None
