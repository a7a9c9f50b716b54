"""The Nebulae demo (first version): check the installation and train a tiny model.

Run with ``hatch run demo:run``. The full pipeline (pack, stream, train, watch,
checkpoint) grows here as the libraries land.
"""

from __future__ import annotations

import argparse
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()

    import numpy as np
    import torch
    from sklearn.datasets import load_digits

    import nebulae as neb

    print(f"nebulae {neb.__version__}: kit {neb.kit.__version__}")
    gpus = neb.kit.GPUtil()
    print(f"GPUs: {len(gpus.gpus)}" + ("" if gpus.gpus else f" ({gpus.reason})"))
    neb.kit.destine(0)

    digits = load_digits()
    x = torch.from_numpy((digits.data / 16.0).astype(np.float32))
    y = torch.from_numpy(digits.target.astype(np.int64))
    order = torch.randperm(len(x))
    train, held = order[:1500], order[1500:]
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    start = time.perf_counter()
    for epoch in range(args.epochs):
        for batch in train[torch.randperm(len(train))].split(64):
            loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch + 1}/{args.epochs}: loss {loss.item():.4f}")
    with torch.no_grad():
        accuracy = (model(x[held]).argmax(1) == y[held]).float().mean().item()
    print(
        f"accuracy: {accuracy * 100:.1f}% on {len(held)} held-out digits ({time.perf_counter() - start:.1f}s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
