"""Multiverse runs for test_multiverse.py, started as ``python multiverse_scenarios.py SCENARIO OUTDIR``.

They live in a script (not the test module) because spawned ranks must import the universe
functions by reference. Each rank writes what it saw to ``OUTDIR/rank{r}.pt``; a failing run
prints the parent's error after ``ERROR:`` and exits 3.
"""

from __future__ import annotations

import os
import sys
import time

import torch
from torch import nn

from nebulae.cockpit import CPU, Engine, Multiverse


class StandInTank:
    """The duck-typed part of nebulae-fuel's Tank that Multiverse.sync relies on."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.sharding: tuple[int, int, int] | None = None

    def set_distributed(self, rank: int, nworld: int, seed: int) -> None:
        self.sharding = (rank, nworld, seed)


def train(mv: Multiverse, outdir: str) -> None:
    mv.init()
    mv.init()  # idempotent
    Engine(CPU, verbose=False)
    rank = mv.rank
    torch.manual_seed(1000 + rank)  # different initial weights: sync must broadcast rank 0's
    net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
    net.scope = "tiny"
    tank = StandInTank(seed=100 + rank)
    net, same_tank = mv.sync(net, (tank,))
    assert same_tank is tank
    assert net.scope == "tiny"  # attributes of the wrapped craft are forwarded
    net.gear(True)

    data = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=data)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
    mine = slice(rank * 32, (rank + 1) * 32)
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    losses = []
    with mv.scope():
        for _ in range(15):
            opt.zero_grad()
            loss = mv.reduce(nn.functional.mse_loss(net(x[mine]), y[mine]))  # reduced, still differentiable
            loss.backward()
            opt.step()
            losses.append(loss.item())

    ones = torch.full((2,), float(rank + 1))
    report = {
        "rank": rank,
        "nworld": mv.nworld,
        "params": [p.detach().clone() for p in net.parameters()],
        "losses": losses,
        "mean": mv.reduce(ones),
        "sum": mv.reduce(ones, aggregate=True),
        "pair": mv.reduce((ones, ones * 2), aggregate=True),
        "tank": tank.sharding,
        "env": {k: os.environ.get(k) for k in ("NEB_RANK", "LOCAL_RANK", "WORLD_SIZE", "NEB_GPUS")},
    }
    torch.save(report, os.path.join(outdir, f"rank{rank}.pt"))


def gpu_train(mv: Multiverse, outdir: str) -> None:
    from nebulae.cockpit import GPU

    mv.init()
    engine = Engine(GPU, ngpu=mv.nworld, least_mem=0, verbose=False)
    torch.manual_seed(1000 + mv.rank)
    net = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 1))
    net = mv.sync(net)
    device = next(net.parameters()).device
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    x = torch.randn(32, 4, device=device)
    losses = []
    for _ in range(10):
        opt.zero_grad()
        loss = mv.reduce(net(x).pow(2).mean())
        loss.backward()
        opt.step()
        losses.append(loss.item())
    report = {
        "backend": torch.distributed.get_backend(),
        "device": str(device),
        "chip": [str(c) for c in engine.chip],
        "params": [p.detach().cpu() for p in net.parameters()],
        "losses": losses,
        "sync_bn": any(isinstance(m, nn.SyncBatchNorm) for m in net.modules()),
    }
    torch.save(report, os.path.join(outdir, f"rank{mv.rank}.pt"))


def fail(mv: Multiverse, outdir: str) -> None:
    mv.init()
    if mv.rank == 1:
        raise ValueError("boom from rank 1")
    torch.distributed.all_reduce(torch.ones(1))  # would wait forever for rank 1
    time.sleep(60)


def leave(mv: Multiverse, outdir: str) -> None:
    mv.init()
    if mv.rank == 1:
        os._exit(0)  # leaves silently halfway: exit code 0, but the universe never returned
    torch.distributed.all_reduce(torch.ones(1))  # fails on rank 0 once rank 1 is gone
    time.sleep(60)


def stall(mv: Multiverse, outdir: str) -> None:
    mv.init()
    if mv.rank == 1:
        time.sleep(60)  # never joins the collective
    torch.distributed.all_reduce(torch.ones(1))


def node_choice(mv: Multiverse, outdir: str) -> None:
    """Under torchrun: local rank 0 chooses and leases the node's GPUs, the other rank reads them."""
    import warnings

    from nebulae.cockpit import GPU
    from nebulae.cockpit._lease import holder_pid
    from nebulae.kit.testing import FakeGPU, fake_nvml

    mv.init()
    gpus = [FakeGPU(free_mib=5000), FakeGPU(free_mib=9000), FakeGPU(free_mib=7000)]
    with fake_nvml(gpus), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # CPU torch sees no CUDA device
        engine = Engine(GPU, ngpu=mv.nworld, verbose=False)
    torch.distributed.barrier()
    report = {
        "gpus": [gpu.index for gpu in engine.gpus],
        "holders": [holder_pid(gpu.uuid) for gpu in engine.gpus],
        "pid": os.getpid(),
        "local_rank": engine.local_rank,
        "visible": os.environ["CUDA_VISIBLE_DEVICES"],
    }
    torch.save(report, os.path.join(outdir, f"rank{mv.rank}.pt"))
    torch.distributed.barrier()  # rank 0 keeps its leases until every rank has read them


def linger(mv: Multiverse, outdir: str) -> None:
    with open(os.path.join(outdir, f"pid{os.environ['RANK']}"), "w") as handle:
        handle.write(str(os.getpid()))
    time.sleep(600)  # only the parent-watch ends this rank early


def environment(mv: Multiverse, outdir: str) -> None:
    from nebulae.cockpit._lease import holder_pid

    gpus = os.environ["NEB_GPUS"]
    uuids = [f"GPU-00000000-0000-4000-8000-{int(i):012d}" for i in gpus.split(",")]
    report = {
        "env": {k: os.environ.get(k) for k in ("NEB_GPUS", "CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER")},
        "holders": [holder_pid(u) for u in uuids],
        "parent": os.getppid(),
    }
    torch.save(report, os.path.join(outdir, f"rank{os.environ['RANK']}.pt"))


def main() -> int:
    scenario, outdir = sys.argv[1], sys.argv[2]
    try:
        if scenario in ("train", "torchrun"):  # under torchrun the same call joins the launched group
            Multiverse(train, 2)(outdir)
        elif scenario == "gpu":
            Multiverse(gpu_train, int(os.environ.get("NWORLD", "1")))(outdir)
        elif scenario == "node_choice":
            Multiverse(node_choice, 2)(outdir)
        elif scenario == "linger":
            Multiverse(linger, 2)(outdir)
        elif scenario == "fail":
            Multiverse(fail, 2)(outdir)
        elif scenario == "leave":
            Multiverse(leave, 2)(outdir)
        elif scenario == "stall":
            Multiverse(stall, 2, timeout=5)(outdir)
        elif scenario == "environment":
            from nebulae.kit.testing import FakeGPU, fake_nvml

            with fake_nvml([FakeGPU(free_mib=5000), FakeGPU(free_mib=9000), FakeGPU(free_mib=7000)]):
                Multiverse(environment, 2)(outdir)
        else:
            raise SystemExit(f"unknown scenario {scenario!r}")
    except RuntimeError as exc:
        print(f"ERROR: {exc}", flush=True)
        return 3
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
