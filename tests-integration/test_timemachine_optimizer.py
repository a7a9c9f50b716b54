"""TimeMachine resumes an astro training state bit-identically: model, Adam with warm-up and a schedule,
and an EMA shadow. (test_cockpit_astro.py covers the optimizer alone; this adds the EMA and the named
``optz={'adam': ...}`` checkpoint form.)"""

from __future__ import annotations

import torch
from torch import nn

from nebulae.astro import dock
from nebulae.cockpit import TimeMachine


class Tiny(dock.Craft):
    def __init__(self, scope: str = "TINY") -> None:
        super().__init__(scope)
        self.body = nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 1))

    def run(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def _setup(seed: int):
    torch.manual_seed(seed)
    net = Tiny()
    ema = dock.EMA(net, decay_fn=lambda step: min(0.9, (1 + step) / (10 + step)))
    adam = dock.Adam(net, 0.03, warmup=2, lr_decay=dock.StepLR(3, 0.5))
    return net, ema, adam


def _train(net, ema, adam, steps: int) -> list[float]:
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(16, 3, generator=gen)
    y = (x**2).sum(dim=1, keepdim=True)
    losses = []
    for _ in range(steps):
        loss = nn.functional.mse_loss(net(x), y)
        adam(loss)
        ema.update()
        losses.append(loss.item())
    ema.on()
    losses.append(nn.functional.mse_loss(net(x), y).item())  # the averaged model's loss
    ema.off()
    return losses


def test_model_optimizer_and_ema_resume_bit_identically(tmp_path):
    net, ema, adam = _setup(0)
    _train(net, ema, adam, 4)
    tm = TimeMachine(ckpt_path=str(tmp_path), save_path=str(tmp_path), verbose=False)
    path = tm.drop(ema, optz={"adam": adam}, meta={"step": 4})
    expected = _train(net, ema, adam, 5)
    expected_shadow = {k: v.clone() for k, v in ema.shadow.items()}

    net2, ema2, adam2 = _setup(99)  # other weights, an empty shadow, a fresh optimizer
    assert tm.to(ema2, optz={"adam": adam2}, frozen=True) == path
    assert tm.meta == {"step": 4} and ema2.count == 4 and adam2.step_count == 4
    assert _train(net2, ema2, adam2, 5) == expected  # exact floats, not approximately
    assert adam2.lr == adam.lr
    for key, value in expected_shadow.items():
        assert torch.equal(ema2.shadow[key], value)


def test_optimizer_craft_and_ema_resume_through_state_in_a_non_blocking_drop(tmp_path):
    net, ema, adam = _setup(0)
    _train(net, ema, adam, 4)
    tm = TimeMachine(ckpt_path=str(tmp_path), save_path=str(tmp_path), verbose=False)
    tm.drop(net, state={"optim": adam, "ema": ema}, meta={"step": 4}, blocking=False)
    expected = _train(net, ema, adam, 5)  # trains on while the checkpoint is written
    expected_shadow = {k: v.clone() for k, v in ema.shadow.items()}

    net2, ema2, adam2 = _setup(99)
    assert tm.to(net2, state={"optim": adam2, "ema": ema2}, frozen=True) == {"step": 4}
    assert ema2.count == 4 and adam2.step_count == 4
    assert _train(net2, ema2, adam2, 5) == expected
    for key, value in expected_shadow.items():
        assert torch.equal(ema2.shadow[key], value)
