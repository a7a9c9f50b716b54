"""The Nebulae demo: from a folder of real images to a trained, checkpointed model.

1. write real images (scikit-learn's bundled handwritten digits, 32x32 RGB JPEG) and a labels.csv
   in the brochure's format, with a held-out split (or use --data DIR --csv FILE);
2. pack them with FuelGenerator into HDF5 shards;
3. stream them through Tanks with Comburant augmentation and train a dock CNN with an optimizer
   craft and EMA under an Engine, watched by a DashBoard, checkpointed by a TimeMachine;
4. score the held-out split and write the DashBoard's CSV and PNG curves.

Run with ``hatch run demo:run``; ``--resume`` continues from the newest checkpoint (mid-epoch too, with
the same samples and augmentations an uninterrupted run would see), ``--every N`` checkpoints every N
steps in the background, ``--preemptible`` turns SIGTERM/SIGUSR1 into a checkpoint and exit status 143
(so a scheduler's requeue resumes it), ``--nworld 2`` trains the same model under Multiverse (gloo on CPU,
NCCL on GPUs).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # pipeline/train are importable by ranks and workers


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="hatch run demo:run", description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog="\n".join(__doc__.splitlines()[2:]),
    )  # fmt: skip
    parser.add_argument("--epochs", type=int, default=15, help="epochs to train in this run (default 15)")
    parser.add_argument(
        "--resume", action="store_true", help="continue from the newest checkpoint in OUT/ckpt"
    )
    parser.add_argument(
        "--every",
        type=int,
        default=0,
        help="also checkpoint every N steps, without blocking (default: epochs only)",
    )
    parser.add_argument(
        "--preemptible",
        action="store_true",
        help="on SIGTERM/SIGUSR1 finish the step, checkpoint it and exit with status 143",
    )
    parser.add_argument(
        "--nworld", type=int, default=1, help="processes (GPUs when present) under Multiverse"
    )
    parser.add_argument("--data", type=Path, help="your own image folder (with --csv)")
    parser.add_argument(
        "--csv", type=Path, help="labels file for --data: header, then image path and int label"
    )
    parser.add_argument("--out", type=Path, default=Path("demo-output"), help="where everything is written")
    parser.add_argument("--size", type=int, default=32, help="images are packed at SIZE x SIZE (default 32)")
    parser.add_argument("--subset", type=int, help="use only the first N digit images (quick runs)")
    parser.add_argument("--batch", type=int, default=64, help="batch size per process (default 64)")
    parser.add_argument("--lr", type=float, default=5e-3, help="peak learning rate of Adam (default 5e-3)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.out = args.out.resolve()  # FuelGenerator joins a relative file_list to file_dir
    if (args.data is None) != (args.csv is None):
        parser.error("--data and --csv go together")
    for name in ("epochs", "nworld", "size", "batch"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1 (got {getattr(args, name)})")
    if args.every < 0:
        parser.error(f"--every must be >= 0 (got {args.every})")
    return args


def prepare(args: argparse.Namespace) -> dict[str, str]:
    """Steps 1-2: raw images and label files, then the packed HDF5 files (reused by --resume)."""
    from dataset import read_labels, split_labels, write_digits

    from nebulae.fuel import FuelGenerator

    fuel_dir = args.out / "fuel"
    packed = {"train": str(fuel_dir / "train.hdf5"), "dev": str(fuel_dir / "dev.hdf5")}
    if args.data is not None:
        rows = read_labels(args.data, args.csv)
        raw = split_labels(args.data.resolve(), rows, args.out / "data")
        what = f"{len(rows)} images from {args.data}"
    else:
        raw = write_digits(args.out / "data", size=args.size, subset=args.subset, seed=args.seed)
        what = f"{raw.ntrain + raw.ndev} handwritten digits"
    args.nclass = raw.nclass
    fit = max(1, raw.ntrain // args.nworld)
    if args.batch > fit:  # a small folder still gets full batches on every rank
        print(
            f"      --batch {args.batch} is more than {raw.ntrain} images over {args.nworld} process(es) allow; using {fit}"
        )
        args.batch = fit
    print(f"[1/4] data: {what} -> {raw.ntrain} train / {raw.ndev} held out ({raw.nclass} classes)")
    if args.resume and (fuel_dir / "train_0.hdf5").exists() and (fuel_dir / "dev.hdf5").exists():
        print(f"[2/4] packed files reused from {fuel_dir}")
        return packed
    print(f"[2/4] packing with FuelGenerator into {fuel_dir}")
    fg = FuelGenerator(file_dir=str(raw.image_dir), file_list=str(raw.train_csv), dtype=["vuint8", "int64"])
    fg.modify(height=args.size, width=args.size)
    fg.generate(packed["train"], channel=3, encode="JPEG", shards=2, overwrite=True)
    fg.modify(config={"file_list": str(raw.dev_csv)})
    fg.generate(packed["dev"], shards=1, overwrite=True)
    return packed


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    began = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    packed = prepare(args)
    from train import launch

    print(
        f"[3/4] training {args.epochs} epoch(s)" + (f" on {args.nworld} processes" if args.nworld > 1 else "")
    )
    if args.nworld > 1:
        from nebulae.cockpit import Multiverse

        # Under --preemptible the parent passes a scheduler's signal on to the ranks instead of dying of it.
        forward = (signal.SIGTERM, signal.SIGUSR1) if args.preemptible else ()
        Multiverse(launch, args.nworld, forward_signals=forward)(args, packed)
    else:
        launch(None, args, packed)
    print(f"[4/4] done in {time.perf_counter() - began:.1f}s; everything is under {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
