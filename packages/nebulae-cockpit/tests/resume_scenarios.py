"""A small training run that checkpoints, gets killed or preempted on purpose, and resumes.

Run as ``python resume_scenarios.py CKPT OUT EVENT MILE`` (EVENT: none, kill, kill_in_write, term).
Dropout draws from torch's global RNG and the source's own permutation and noise stand in for a Tank's
shuffle and augmentation, so only a run that restores all of them ends bit-identical. The run resumes
by itself from CKPT when a checkpoint is there. OUT receives the final weights, the optimizer state and
every (epoch, mile, sample keys) the run trained on.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time

import torch
from torch import nn

from nebulae.cockpit import Multiverse, TimeMachine

EPOCHS, SAMPLES, BATCH, WIDTH, EVERY = 2, 40, 4, 6, 3


class Source:
    """Shuffled sample keys with per-batch noise; its position is its state, as a Tank's is."""

    def __init__(self, seed: int) -> None:
        self.seed, self.epoch, self.mile, self.rank, self.nworld = seed, 0, 0, 0, 1

    def set_distributed(self, rank: int, nworld: int) -> None:
        self.rank, self.nworld = rank, nworld

    def state_dict(self) -> dict:
        return {
            "seed": self.seed,
            "epoch": self.epoch,
            "mile": self.mile,
            "rank": self.rank,
            "nworld": self.nworld,
        }

    def load_state_dict(self, state: dict) -> None:
        self.seed, self.epoch, self.mile = state["seed"], state["epoch"], state["mile"]

    def __iter__(self):
        order = torch.randperm(
            SAMPLES, generator=torch.Generator().manual_seed(self.seed * 1000 + self.epoch)
        )
        shard = order[self.rank :: self.nworld]
        while self.mile < len(shard) // BATCH:
            keys = shard[self.mile * BATCH : (self.mile + 1) * BATCH]
            noise = torch.randn(
                BATCH, WIDTH, generator=torch.Generator().manual_seed(self.epoch * 1000 + self.mile)
            )
            self.mile += 1
            yield keys, noise
        self.epoch, self.mile = self.epoch + 1, 0


def main(ckpt: str, out: str, event: str, at: int) -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(WIDTH, 8), nn.Dropout(0.3), nn.Linear(8, 1))
    net.scope = "net"
    optim = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    source = Source(seed=7)
    tm = TimeMachine(ckpt_path=ckpt, save_path=ckpt, max_anchors=2, verbose=False)
    state = {"train": source, "optim": optim}
    if any(name.endswith(".pth") for name in os.listdir(ckpt)):
        tm.to(net, state=state)
    seen = []
    step = 0
    with tm.preemptible(exit_code=3) if event == "term" else contextlib.nullcontext():
        while source.epoch < EPOCHS:
            epoch = source.epoch
            for keys, noise in source:
                x = noise + keys.float().unsqueeze(1) / SAMPLES
                loss = (net(x) - keys.float().unsqueeze(1) / SAMPLES).pow(2).mean()
                optim.zero_grad()
                loss.backward()
                optim.step()
                seen.append([epoch, source.mile, keys.tolist()])
                step += 1
                if event == "term" and step == at:
                    os.kill(os.getpid(), signal.SIGTERM)  # as a scheduler would, in the middle of a step
                if event == "term":
                    tm.exit_if_preempted(net, state=state, meta={"epoch": epoch, "mile": source.mile})
                if step % EVERY == 0:
                    if event == "kill_in_write" and step == at:
                        tm.wait()  # the previous write is on disk: the kill hits this step's write
                        _die_at_rename()
                    tm.drop(net, state=state, blocking=False, meta={"epoch": epoch, "mile": source.mile})
                if event == "kill" and step == at:
                    tm.wait()  # the non-blocking drop before is on disk
                    os.kill(os.getpid(), signal.SIGKILL)
    tm.wait()
    torch.save({"net": net.state_dict(), "optim": optim.state_dict(), "seen": seen}, out)


def preempted_universe(mv: Multiverse, ckpt: str) -> None:
    """Rank 0 signals the spawning parent, which forwards the signal to both ranks; they stop together."""
    mv.init()
    net = nn.Linear(2, 1)
    net.scope = "net"
    source = Source(seed=7)
    source.set_distributed(mv.rank, mv.nworld)
    tm = TimeMachine(ckpt_path=ckpt, save_path=ckpt, verbose=False)
    with tm.preemptible(signals=(signal.SIGUSR1,), exit_code=7):
        for step in range(1, 3000):  # ends long before, unless the signal never arrives
            source.mile = step * (mv.rank + 1)
            if step == 3 and mv.rank == 0:
                os.kill(os.getppid(), signal.SIGUSR1)
            tm.exit_if_preempted(net, state={"train": source}, meta={"step": step})
            time.sleep(0.01)


def _die_at_rename() -> None:
    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    os.replace = die


if __name__ == "__main__":
    if sys.argv[3] == "multiverse":
        Multiverse(preempted_universe, 2, forward_signals=(signal.SIGUSR1,))(sys.argv[1])
    else:
        main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
