"""Training over a real packed Tank (Comburant augmentation, process workers) that checkpoints every few
miles without blocking, and can be killed, preempted and resumed on purpose; alone or under Multiverse.

Run as ``python -m brochure.resume_universe DATA CKPT OUT EVENT AT NWORLD`` (EVENT: none, kill,
kill_in_write, term; AT: the step it happens after). A run resumes by itself when CKPT holds a
checkpoint. Each rank writes ``OUT/rank{r}.pt``: its final weights, optimizer and EMA state, and every
``[epoch, labels]`` it trained on (a sample's label is its row index).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys

import numpy as np
import torch

from nebulae.astro import dock
from nebulae.cockpit import CPU, Engine, Multiverse, TimeMachine
from nebulae.fuel import Tank, depot

EPOCHS, EVERY = 2, 2
AUGMENT = depot.Comburant(depot.Crop((8, 8), area_ratio=(0.6, 1.0)), depot.Brighten(0.3), depot.HWC2CHW())


def prep(item: dict) -> dict:
    item["image"] = AUGMENT(item["image"])
    return item


class Probe(dock.Craft):
    def __init__(self, scope: str = "PROBE") -> None:
        super().__init__(scope)
        self.flat = dock.Reshape()
        self.drop = dock.Dropout(0.3)  # torch's global RNG: exact only if it is restored too
        self.fc = dock.Dense(3 * 8 * 8, 1)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(self.flat(x, (-1, 3 * 8 * 8))))


def universe(mv: Multiverse | None, data: str, ckpt: str, out: str, event: str, at: int) -> None:
    tank = Tank(
        data, {"image": "vuint8", "label": "int64"}, 4, shuffle=True, prep_fn=prep,
        nworker=2, worker_type="process", seed=5, verbose=False,
    )  # fmt: skip
    if mv is not None:
        mv.init()
    Engine(device=CPU, verbose=False)
    torch.manual_seed(0)
    net = Probe()
    adam = dock.Adam(net, 0.01)
    ema = dock.EMA(net, scope="PROBE_EMA")
    if mv is not None:
        net, tank = mv.sync(net, (tank,))
    rank = max(mv.rank if mv is not None else 0, 0)
    tm = TimeMachine(ckpt_path=ckpt, save_path=ckpt, max_anchors=2, verbose=False)
    state = {"train": tank, "optim": adam, "ema": ema}
    if any(name.endswith(".pth") for name in os.listdir(ckpt)):
        tm.to(net, state=state)
    seen, step = [], 0
    with tm.preemptible(exit_code=3) if event == "term" else contextlib.nullcontext():
        while tank.epoch < EPOCHS:
            epoch = tank.epoch
            for batch in tank:
                x = torch.as_tensor(np.ascontiguousarray(batch["image"]), dtype=torch.float32)
                labels = torch.as_tensor(batch["label"])
                adam((net(x).squeeze(1) - labels.float() / 32).pow(2).mean())
                ema.update()
                seen.append([epoch, labels.tolist()])
                step += 1
                if event == "term" and step == at and rank == 0:
                    os.kill(os.getpid(), signal.SIGTERM)  # as a scheduler would, in the middle of a step
                if event == "term":
                    tm.exit_if_preempted(net, state=state)
                if step % EVERY == 0:
                    if event == "kill_in_write" and step == at and rank == 0:
                        tm.wait()  # the previous write is on disk: the kill hits this step's write
                        os.replace = _die
                    tm.drop(net, state=state, blocking=False)
                if event == "kill" and step == at and rank == 0:
                    tm.wait()
                    _die()
    tm.wait()
    core = getattr(net, "module", net)  # DistributedDataParallel holds the model
    torch.save(
        {"net": core.state_dict(), "optim": adam.state_dict(), "ema": ema.shadow, "seen": seen},
        os.path.join(out, f"rank{rank}.pt"),
    )
    tank.close()


def _die(*args: object) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    data, ckpt, out, event, at, nworld = sys.argv[1:7]
    if int(nworld) > 1:
        Multiverse(universe, int(nworld))(data, ckpt, out, event, int(at))
    else:
        universe(None, data, ckpt, out, event, int(at))
