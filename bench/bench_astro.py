"""nebulae-astro benchmarks: Craft call overhead and a ResNet-18-like network vs plain torch.nn.

Run with `flock /tmp/nebulae-bench.lock hatch run bench:astro`. Every figure is a ratio measured in
the same run, with the two variants interleaved so that machine noise hits both alike.
"""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn

from nebulae.astro import Craft, autoPad, dock

CALLS = 100_000
ROUNDS = 10


def bench_overhead() -> None:
    torch.manual_seed(0)
    bare = nn.Linear(8, 8)
    craft = dock.Dense(8, 8)
    x = torch.randn(1, 8)
    per_round = CALLS // ROUNDS
    totals = {"torch": 0.0, "craft": 0.0}
    for mod in (bare, craft):  # warm-up
        for _ in range(1000):
            mod(x)
    for _ in range(ROUNDS):
        for name, mod in (("torch", bare), ("craft", craft)):
            start = time.perf_counter()
            for _ in range(per_round):
                mod(x)
            totals[name] += time.perf_counter() - start
    us = {k: v / CALLS * 1e6 for k, v in totals.items()}
    print(f"Dense 8->8, batch 1, {CALLS:,} calls each (grad enabled):")
    print(f"  nn.Linear   {us['torch']:.2f} us/call")
    print(f"  dock.Dense  {us['craft']:.2f} us/call")
    print(f"  ratio craft/torch = {us['craft'] / us['torch']:.3f}  (target <= 1.2)")


class TorchBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + (x if self.short is None else self.short(x)))


class TorchNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)
        )
        chans, blocks, cin = (64, 128, 256, 512), [], 64
        for i, c in enumerate(chans):
            blocks += [TorchBlock(cin, c, 1 if i == 0 else 2), TorchBlock(c, c, 1)]
            cin = c
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(512, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class DockBlock(Craft):
    def __init__(self, cin: int, cout: int, stride: int, size: int) -> None:
        super().__init__("BLOCK")
        void = dock.Void()
        # stride 1 'SAME' pads are symmetric: they go into the convolution itself
        pad1 = autoPad((size, size), (3, 3)) if stride == 1 else 1
        self.conv1 = dock.Conv(cin, cout, (3, 3), stride, pad1, b_init=void)
        self.bn1 = dock.BN(cout, 2)
        self.conv2 = dock.Conv(cout, cout, (3, 3), 1, autoPad(None, (3, 3)), b_init=void)
        self.bn2 = dock.BN(cout, 2)
        self.relu = dock.Relu()
        self.short = None
        if stride != 1 or cin != cout:
            self.short = dock.Conv(cin, cout, (1, 1), stride, b_init=void)
            self.short_bn = dock.BN(cout, 2)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + (x if self.short is None else self.short_bn(self.short(x))))


class DockNet(Craft):
    def __init__(self) -> None:
        super().__init__("RESNET18")
        self.stem = dock.Conv(3, 64, (7, 7), 2, 3, b_init=dock.Void())
        self.stem_bn = dock.BN(64, 2)
        self.relu = dock.Relu()
        self.pool = dock.MaxPool((3, 3), 2, 1)
        chans, blocks, cin, size = (64, 128, 256, 512), [], 64, 16
        for i, c in enumerate(chans):
            stride = 1 if i == 0 else 2
            size //= stride
            blocks += [DockBlock(cin, c, stride, size), DockBlock(c, c, 1, size)]
            cin = c
        self.blocks = nn.Sequential(*blocks)
        self.gpool = dock.AvgPool((-1, -1))
        self.flat = dock.Reshape()
        self.fc = dock.Dense(512, 10)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.relu(self.stem_bn(self.stem(x))))
        x = self.blocks(x)
        return self.fc(self.flat(self.gpool(x), (-1, 512)))


def bench_resnet() -> None:
    torch.set_num_threads(2)
    torch.manual_seed(0)
    nets = {"torch.nn": TorchNet(), "dock": DockNet()}
    x = torch.randn(16, 3, 64, 64)
    y = torch.randint(0, 10, (16,))
    times: dict[str, list[float]] = {k: [] for k in nets}

    def step(net: nn.Module) -> float:
        start = time.perf_counter()
        loss = nn.functional.cross_entropy(net(x), y)
        loss.backward()
        elapsed = time.perf_counter() - start
        net.zero_grad(set_to_none=True)
        return elapsed

    for net in nets.values():
        step(net)  # warm-up
    for _ in range(10):
        for name, net in nets.items():
            times[name].append(step(net))
    med = {k: statistics.median(v) for k, v in times.items()}
    print("ResNet-18-like, batch 16, 3x64x64, 2 threads, median of 10 interleaved fwd+bwd:")
    for name, value in med.items():
        print(f"  {name:9s} {value * 1000:.1f} ms")
    print(f"  ratio dock/torch.nn = {med['dock'] / med['torch.nn']:.3f}  (expected ~1.0)")


if __name__ == "__main__":
    import runpy
    from pathlib import Path

    bench_overhead()
    bench_resnet()
    # the rest of the set (issue 6): LSTM, MHAttn, sparse, graph and eigen crafts
    runpy.run_path(str(Path(__file__).with_name("bench_astro_set.py")), run_name="bench_astro_set")["main"]()
