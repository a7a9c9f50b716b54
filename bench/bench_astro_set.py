"""Benchmarks of the issue-6 crafts: ratios measured in one run (run under flock, see the README).

    flock /tmp/nebulae-bench.lock hatch run bench:python bench/bench_astro_set.py

Prints, for each case, the median time of the Nebulae craft and of its reference, and their ratio:
- Craft-wrapper overhead on LSTM and MHAttn versus the bare torch modules (expected ~1.0);
- SpDot / GraphConvAdj with a 1 %-dense adjacency versus the dense product (expected < 1);
- MaxEigen (power iteration) versus torch.linalg.eigvalsh on a 512×512 symmetric matrix;
- Resnet_V2_50 forward+backward at batch 8, 3×64×64 (absolute figure only).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch

from nebulae.astro import dock, hangar


def median_seconds(fn: Callable[[], object], repeats: int, inner: int) -> float:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - start) / inner)
    return statistics.median(samples)


def compare(
    name: str, ours: Callable[[], object], ref: Callable[[], object], repeats: int = 7, inner: int = 20
) -> None:
    ours(), ref()  # warm up
    t_ours, t_ref = [], []
    for _ in range(repeats):  # interleaved, so drifts in machine load hit both sides
        t_ours.append(median_seconds(ours, 1, inner))
        t_ref.append(median_seconds(ref, 1, inner))
    a, b = statistics.median(t_ours), statistics.median(t_ref)
    print(f"{name:<44} {a * 1e6:>11.1f} us  {b * 1e6:>11.1f} us  ratio {a / b:5.2f}")


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(2)
    print(f"{'case (ours vs reference)':<44} {'ours':>14}  {'reference':>14}")
    with torch.no_grad():
        lstm = dock.LSTM(32, 64)
        x = torch.randn(20, 4, 32)
        compare("LSTM craft vs nn.LSTM, T=20 N=4", lambda: lstm(x), lambda: lstm.rnn(x), inner=50)
        attn = dock.MHAttn(4, 64, 64, 64)
        q = torch.randn(16, 4, 64)
        compare(
            "MHAttn craft vs nn.MultiheadAttention",
            lambda: attn(q, q, q),
            lambda: attn.attn(q, q, q),
            inner=50,
        )

        n = 2000
        dense_adj = (torch.rand(n, n) < 0.01).float()
        sparse_adj = dense_adj.to_sparse()
        feats = torch.randn(n, 64)
        spdot = dock.SpDot()
        compare(
            "SpDot 2000x2000 @1% vs dense matmul",
            lambda: spdot(sparse_adj, feats),
            lambda: dense_adj @ feats,
            inner=10,
        )
        conv = dock.GraphConvAdj(64, 64, sparse_adj)
        batch = torch.randn(8, n, 64)
        compare(
            "GraphConvAdj N=8 vs dense adj @ (xW) + b",
            lambda: conv(batch),
            lambda: dense_adj @ conv.proj(batch) + conv.bias,
            repeats=5,
            inner=3,
        )
        a = torch.randn(512, 512, dtype=torch.float64)
        sym = a @ a.T
        power = dock.MaxEigen(niters=30)
        compare(
            "MaxEigen(30 iters) vs eigvalsh, 512x512",
            lambda: power(sym, in_pair=False),
            lambda: torch.linalg.eigvalsh(sym)[-1],
            inner=5,
        )
    net = hangar.Resnet_V2_50((64, 64, 3))
    imgs = torch.randn(8, 3, 64, 64)

    def step() -> None:
        net.zero_grad(set_to_none=True)
        net(imgs).sum().backward()

    step()
    t = median_seconds(step, 5, 1)
    print(f"{'Resnet_V2_50 fwd+bwd, batch 8, 3x64x64':<44} {t * 1e3:>11.1f} ms  ({8 / t:.1f} images/s)")


if __name__ == "__main__":
    main()
