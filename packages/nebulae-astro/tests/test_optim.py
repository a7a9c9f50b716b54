"""Optimizer crafts and lr schedules: torch agreement, resumable state, accumulation, clipping, warm-up."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from nebulae.astro import Craft, dock


class TwoLayer(Craft):
    def __init__(self) -> None:
        super().__init__("TWO")
        self.body = dock.Dense(4, 8)
        self.head = dock.Dense(8, 1)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.body(x)))


def make_net(seed: int = 0) -> TwoLayer:
    torch.manual_seed(seed)
    return TwoLayer()


def batch(seed: int, n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 4, generator=g), torch.randn(n, 1, generator=g)


def loss_of(net: nn.Module, data: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    x, y = data
    return ((net(x) - y) ** 2).mean()


TORCH_PAIRS = [
    (
        lambda h: dock.Momentum(h, 0.1, wd=0.01),
        lambda p: torch.optim.SGD(p, 0.1, momentum=0.9, weight_decay=0.01),
    ),
    (lambda h: dock.Nesterov(h, 0.1), lambda p: torch.optim.SGD(p, 0.1, momentum=0.9, nesterov=True)),
    (lambda h: dock.RMSProp(h, 0.01, mmnt=0.5), lambda p: torch.optim.RMSprop(p, 0.01, momentum=0.5)),
    (lambda h: dock.Adam(h, 0.01, 0.8, 0.99), lambda p: torch.optim.Adam(p, 0.01, betas=(0.8, 0.99))),
    (lambda h: dock.AdamW(h, 0.01, wd=0.1), lambda p: torch.optim.AdamW(p, 0.01, weight_decay=0.1)),
]


@pytest.mark.parametrize(("ours", "theirs"), TORCH_PAIRS)
def test_steps_match_the_torch_optimizer(ours, theirs) -> None:
    a, b = make_net(), make_net()
    optz, ref = ours(a), theirs(list(b.parameters()))
    for step in range(3):
        optz(loss_of(a, batch(step)))
        ref.zero_grad()
        loss_of(b, batch(step)).backward()
        ref.step()
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
        assert pa.grad is None  # zeroed after the step


def test_lion_step_hand_computed() -> None:
    w = nn.Parameter(torch.tensor([1.0, -1.0, 0.5]))
    holder = nn.Module()
    holder.w = w
    optz = dock.Lion(holder, 0.1, mmnt1=0.9, mmnt2=0.99, wd=0.5)
    optz((w * torch.tensor([2.0, -3.0, 0.0])).sum())
    # m = 0 → update = sign(0.1·g) = (1, −1, 0); p ← p·(1 − 0.05) − 0.1·update
    assert w.tolist() == pytest.approx([0.95 - 0.1, -0.95 + 0.1, 0.475])
    assert optz.optimizer.state[w]["exp_avg"].tolist() == pytest.approx([0.02, -0.03, 0.0])


def test_lamb_step_hand_computed() -> None:
    w = nn.Parameter(torch.tensor([3.0, 4.0]))  # ‖w‖ = 5
    holder = nn.Module()
    holder.w = w
    optz = dock.Lamb(holder, 0.1)
    optz((w * torch.tensor([1.0, -2.0])).sum())
    # first step: m̂ = g, v̂ = g² → r ≈ sign(g) = (1, −1), ‖r‖ = √2 → trust 5/√2
    r = torch.tensor([1.0, -2.0]) / (torch.tensor([1.0, 2.0]) + 1e-6)
    expected = torch.tensor([3.0, 4.0]) - 0.1 * (5 / r.norm()) * r
    assert torch.allclose(w.detach(), expected, atol=1e-6)


def run_steps(net: nn.Module, optz: dock.Momentum, start: int, count: int) -> None:
    for step in range(start, start + count):
        optz(loss_of(net, batch(step)))


@pytest.mark.parametrize("kind", ["Adam", "Lamb", "Lion", "Momentum"])
def test_state_dict_round_trip_resumes_bit_identically(kind: str, tmp_path) -> None:
    build = lambda h: getattr(dock, kind)(  # noqa: E731
        h, 0.01, warmup=2, lr_decay=dock.CosLR(5), grad_accum=2, grad_limit=0.5, mixp=(kind == "Adam")
    )
    a = make_net()
    optz_a = build(a)
    run_steps(a, optz_a, 0, 6)
    torch.save({"net": a.state_dict(), "optz": optz_a.state_dict()}, tmp_path / "ckpt.pt")
    run_steps(a, optz_a, 6, 8)

    b = make_net(seed=123)
    optz_b = build(b)
    saved = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    b.load_state_dict(saved["net"])
    optz_b.load_state_dict(saved["optz"])
    assert optz_b.step_count == 3 and optz_b.lr == pytest.approx(optz_b.lr0 * optz_b.factor(3))
    run_steps(b, optz_b, 6, 8)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert optz_a.lr == optz_b.lr


def test_load_state_dict_rejects_foreign_dicts() -> None:
    with pytest.raises(KeyError, match="missing"):
        dock.Adam(make_net(), 0.1).load_state_dict({"weight": torch.zeros(1)})


def test_accumulated_steps_equal_one_step_on_the_whole_batch() -> None:
    a, b = make_net(), make_net()
    optz_a = dock.Momentum(a, 0.1, grad_accum=4)
    optz_b = dock.Momentum(b, 0.1)
    x, y = batch(0, n=16)
    for round_ in range(2):
        for k in range(4):
            part = (x[4 * k : 4 * k + 4] + round_, y[4 * k : 4 * k + 4])
            before = [p.clone() for p in a.parameters()]
            optz_a(loss_of(a, part))
            changed = any(not torch.equal(p0, p) for p0, p in zip(before, a.parameters(), strict=True))
            assert changed == (k == 3)  # only every 4th call steps
        optz_b(loss_of(b, (x + round_, y)))
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.allclose(pa, pb, atol=1e-6)


def test_gradients_are_clipped_before_each_step() -> None:
    w = nn.Parameter(torch.tensor([0.0, 0.0]))
    holder = nn.Module()
    holder.w = w
    optz = dock.Momentum(holder, 1.0, mmnt=0.0, grad_limit=0.25)
    optz((w * torch.tensor([10.0, -0.1])).sum())
    assert w.tolist() == pytest.approx([-0.25, 0.1])


def _two_params() -> tuple[nn.Module, nn.Parameter, nn.Parameter]:
    holder = nn.Module()
    holder.a = nn.Parameter(torch.zeros(2))
    holder.b = nn.Parameter(torch.zeros(2))
    return holder, holder.a, holder.b


def test_grad_norm_limit_rescales_all_gradients_together() -> None:
    holder, a, b = _two_params()
    optz = dock.Momentum(holder, 1.0, mmnt=0.0, grad_norm_limit=1.0)
    assert optz.last_grad_norm is None
    # gradients (3, 0) and (0, 4): global norm 5, so both shrink by 1/5 and keep their direction
    optz((a * torch.tensor([3.0, 0.0])).sum() + (b * torch.tensor([0.0, 4.0])).sum())
    assert a.tolist() == pytest.approx([-0.6, 0.0])
    assert b.tolist() == pytest.approx([0.0, -0.8])
    assert optz.last_grad_norm == pytest.approx(5.0)
    # under the limit nothing changes
    optz((a * torch.tensor([0.3, 0.0])).sum() + (b * torch.tensor([0.0, 0.4])).sum())
    assert a.tolist() == pytest.approx([-0.9, 0.0])
    assert b.tolist() == pytest.approx([0.0, -1.2])


def test_value_and_norm_clipping_differ_and_apply_in_that_order() -> None:
    grads = (torch.tensor([3.0, 0.5]), torch.tensor([0.0, 4.0]))
    steps = {}
    for kwargs in (
        {"grad_limit": 1.0},
        {"grad_norm_limit": 1.0},
        {"grad_limit": 1.0, "grad_norm_limit": 1.0},
    ):
        holder, a, b = _two_params()
        optz = dock.Momentum(holder, 1.0, mmnt=0.0, **kwargs)
        optz((a * grads[0]).sum() + (b * grads[1]).sum())
        steps[tuple(kwargs)] = torch.cat([a, b]).detach().neg()
    assert steps[("grad_limit",)].tolist() == pytest.approx([1.0, 0.5, 0.0, 1.0])
    by_norm = torch.cat(grads) / torch.cat(grads).norm()
    assert steps[("grad_norm_limit",)].tolist() == pytest.approx(by_norm.tolist())
    clamped = torch.tensor([1.0, 0.5, 0.0, 1.0])
    both = steps[("grad_limit", "grad_norm_limit")]
    assert both.tolist() == pytest.approx((clamped / clamped.norm()).tolist())


def test_grad_norm_limit_matches_torch_clip_grad_norm() -> None:
    a, b = make_net(), make_net()
    optz = dock.Adam(a, 0.05, grad_norm_limit=0.1)
    ref = torch.optim.Adam(list(b.parameters()), 0.05)
    for step in range(3):
        optz(loss_of(a, batch(step)))
        ref.zero_grad()
        loss_of(b, batch(step)).backward()
        nn.utils.clip_grad_norm_(b.parameters(), 0.1)
        ref.step()
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.allclose(pa, pb, atol=1e-6)


@pytest.mark.parametrize("name", ["grad_limit", "grad_norm_limit"])
def test_clipping_limits_must_be_numbers(name: str) -> None:
    with pytest.raises(TypeError, match=name):
        dock.Adam(make_net(), 0.01, **{name: "1.0"})


def test_warmup_then_schedule_follow_their_formulas() -> None:
    net = make_net()
    optz = dock.Momentum(net, 0.8, warmup=4, lr_decay=dock.StepLR(2, 0.5))
    seen = []
    for step in range(8):
        seen.append(optz.lr)
        optz(loss_of(net, batch(step)))
    assert seen == pytest.approx([0.2, 0.4, 0.6, 0.8, 0.8, 0.8, 0.4, 0.4])
    assert optz.optimizer.param_groups[0]["lr"] == optz.lr == pytest.approx(0.2)


def test_schedule_multipliers_hand_computed() -> None:
    assert [dock.StepLR(3, 0.1).multiplier(t, 1.0) for t in (0, 2, 3, 7)] == pytest.approx([1, 1, 0.1, 0.01])
    poly = dock.PolyLR(10, 2)
    assert poly.multiplier(5, 0.1) * 0.1 == pytest.approx((0.1 - 1e-4) * 0.25 + 1e-4)
    assert poly.multiplier(20, 0.1) * 0.1 == pytest.approx(1e-4)
    cos = dock.CosLR(10)
    assert cos.multiplier(0, 1.0) == pytest.approx(1.0)
    assert cos.multiplier(5, 1.0) == pytest.approx(1e-3 + (1 - 1e-3) / 2)
    assert cos.multiplier(10, 1.0) == cos.multiplier(99, 1.0) == pytest.approx(1e-3)
    assert dock.ExpLR(4, 0.5).multiplier(2, 1.0) == pytest.approx(math.sqrt(0.5))
    wavy = dock.WavyLR(4, 0.5)
    assert [wavy.multiplier(t, 1.0) for t in range(9)] == pytest.approx(
        [1.0, 0.75, 0.5, 0.75, 0.75, 0.625, 0.5, 0.625, 0.625]
    )
    with pytest.raises(ValueError, match="period"):
        dock.StepLR(0, 0.5)


def test_schedule_drives_a_plain_torch_optimizer() -> None:
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.5)
    sched = dock.StepLR(1, 0.5)(opt)
    lrs = []
    for _ in range(3):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == [0.5, 0.25, 0.125]  # lr0 multiplied, not squared


def test_update_scope_selects_deduplicated_sub_crafts() -> None:
    net = make_net()
    optz = dock.Adam(net, 0.1, update_scope=["head", "head/", "head"])
    assert [id(p) for p in optz.params] == [id(p) for p in net.head.parameters()]
    body_before = [p.clone() for p in net.body.parameters()]
    optz(loss_of(net, batch(0)))
    assert all(torch.equal(a, b) for a, b in zip(body_before, net.body.parameters(), strict=True))
    assert dock.Adam(net, 0.1, update_scope="body").params == list(net.body.parameters())
    with pytest.raises(AttributeError, match="tail"):
        dock.Adam(net, 0.1, update_scope="tail")


def test_compiled_hull_is_unwrapped_and_optimizer_state_is_separate() -> None:
    net = make_net()
    wrapped = nn.DataParallel(net)
    optz = dock.Adam(wrapped, 0.1)
    assert [id(p) for p in optz.params] == [id(p) for p in net.parameters()]
    assert list(optz.parameters()) == []  # the hull is not the optimizer's sub-module

    class Train(Craft):
        def __init__(self) -> None:
            super().__init__("TRAIN")
            self.net = net
            self.optz = dock.Adam(net, 0.1)

    assert set(Train().state_dict()) == {f"net.{k}" for k in net.state_dict()}


def test_optz_errors() -> None:
    net = make_net()
    optz = dock.Adam(net, 0.1)
    with pytest.raises(ValueError, match="scalar"):
        optz(net(torch.zeros(3, 4)))
    with pytest.raises(ValueError, match="Rudder"):
        optz(torch.tensor(1.0))
    with pytest.raises(ValueError, match="'lr'"):
        dock.Adam(net, 0)
    with pytest.raises(ValueError, match="grad_accum"):
        dock.Adam(net, 0.1, grad_accum=0)
    with pytest.raises(ValueError, match="no trainable"):
        dock.Adam(nn.ReLU(), 0.1)


def test_mixp_scaler_skips_non_finite_steps() -> None:
    net = make_net()
    optz = dock.Adam(net, 0.1, mixp=True)
    before = copy.deepcopy(net.state_dict())
    optz(loss_of(net, batch(0)) * float("inf"))
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    scale = optz.state_dict()["scaler"]["scale"]
    optz(loss_of(net, batch(1)))
    assert not torch.equal(before["head.weight"], net.head.weight)
    assert optz.state_dict()["scaler"]["scale"] == scale


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_float16_mixp_training_on_cuda() -> None:
    net = make_net().cuda().mixp(torch.float16)
    optz = dock.Adam(net, 0.01, mixp=True)
    x, y = (t.cuda() for t in batch(0))
    first = None
    for _ in range(20):
        loss = ((net(x).float() - y) ** 2).mean()
        first = first if first is not None else loss.item()
        optz(loss)
    assert net.body.weight.dtype == torch.float32
    assert optz.scaler is not None and optz.scaler.get_scale() > 0
    assert loss.item() < first
