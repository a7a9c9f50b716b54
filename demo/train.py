"""The training universe: runs alone, or once per rank under Multiverse."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import torch
from pipeline import SPEC, DigitNet, batch_to_tensors, dev_prep, fetcher, train_prep

from nebulae import kit
from nebulae.aerolog import DashBoard
from nebulae.astro import dock
from nebulae.cockpit import CPU, GPU, Engine, TimeMachine
from nebulae.fuel import depot


def ema_decay(step: int) -> float:
    """Warm the average up: early shadows follow the weights closely, later ones smooth more."""
    return min(0.95, (1.0 + step) / (10.0 + step))


def _has_curves(folder: Path) -> bool:
    return folder.is_dir() and any(folder.glob("*_mile.csv"))


def evaluate(ema: Any, tank: Any) -> tuple[int, int]:
    """Count correct predictions of the EMA weights over one pass of ``tank``."""
    correct = total = 0
    ema.on()
    try:
        with dock.Nozzle() as nozzle:
            ema.gear(nozzle)
            for batch in tank:
                images, labels = batch_to_tensors(batch)
                predicted = ema(images).argmax(1)
                correct += int((predicted == labels).sum())
                total += len(labels)
    finally:
        ema.off()
    return correct, total


def resume(tm: Any, ema: Any, optz: Any, state: dict[str, Any], say: Any) -> int:
    """Load the newest checkpoint and return the epoch to continue; the Tank continues at its step."""
    train = state["train"]
    try:
        tm.to(ema, optz=optz, state=state)
    except KeyError:  # written before checkpoints held the Tank's state: continue at its epoch's end
        tm.to(ema, optz=optz)
        train.seek(int(tm.meta.get("epoch", 0)))
    if train.mile:
        say(f"resuming epoch {train.epoch + 1} at step {train.mile} of {train.MPE}")
    else:
        say(f"resuming after epoch {train.epoch}")
    return int(train.epoch)


def launch(mv: Any, args: Any, packed: dict[str, str]) -> None:
    """Train the digit classifier; ``mv`` is the Multiverse (None for a single process)."""
    distributed = mv is not None
    if distributed:
        mv.init()
    rank0 = kit.get_rank() <= 0
    say = print if rank0 else (lambda *a, **k: None)
    nworld = mv.nworld if distributed else 1

    # ------------------------------------------------------------------ devices
    on_gpu = bool(kit.GPUtil().available(nworld, 2048))
    engine = Engine(device=GPU if on_gpu else CPU, ngpus=nworld)
    kit.destine(args.seed)

    # ------------------------------------------------------------------ data
    train = depot.Tank(
        packed["train"], SPEC, batch_size=args.batch, shuffle=True,
        fetch_fn=fetcher, prep_fn=train_prep, seed=args.seed, verbose=rank0,
    )  # fmt: skip
    dev = depot.Tank(
        packed["dev"], SPEC, batch_size=args.batch, shuffle=False, in_same_size=False,
        fetch_fn=fetcher, prep_fn=dev_prep, seed=args.seed, verbose=rank0,
    )  # fmt: skip

    # ------------------------------------------------------------------ model, optimizer, checkpoints
    net = DigitNet(args.nclass, args.size).gear(engine)
    ema = dock.EMA(net, decay_fn=ema_decay, on_device=True, scope="DIGITS_EMA")
    optz = dock.Adam(net, args.lr, warmup=train.MPE, lr_decay=dock.ExpLR(train.MPE, 0.85))
    loss_fn, acc_fn = dock.SftmXE(False), dock.AccCls(False, False)
    ckpt_dir = Path(args.out) / "ckpt"
    tm = TimeMachine(ckpt_path=str(ckpt_dir), save_path=str(ckpt_dir), max_anchors=3)
    if distributed:
        net, train, dev = mv.sync(net, (train, dev))  # DDP, and each rank gets its own shard of the data
        if rank0:
            dev.set_distributed(0, 1)  # rank 0 scores the whole held-out split
    # Each rank's Tank position and RNG states travel with the weights, so a resumed run sees the samples
    # and augmentations an uninterrupted one would, from the step it stopped at.
    state = {"train": train}
    start = resume(tm, ema, optz, state, say) if args.resume else 0

    log_dir = Path(args.out) / "aerolog"
    history = str(log_dir) if args.resume and _has_curves(log_dir) else ""
    board = DashBoard(
        log_path=str(log_dir), window=5,
        format={"loss": (".4f", "raw"), "acc": (".2f", "percent"), "lr": (".2e", "raw")},
    )  # fmt: skip

    began = time.perf_counter()
    steps = 0
    with tm.preemptible() if args.preemptible else contextlib.nullcontext():
        for epoch in range(start, start + args.epochs):
            run_epoch = epoch - start  # the board counts this run's epochs; log(record=) continues the curves
            with dock.Rudder() as rudder:
                net.gear(rudder)
                for batch in board.track(train, stage="TRAIN", epoch=run_epoch, mpe=train.MPE):
                    images, labels = batch_to_tensors(batch)
                    logits = net(images)
                    loss = loss_fn(logits, labels)
                    optz(loss)
                    ema.update()
                    shown = mv.reduce(loss.detach()) if distributed else loss.detach()
                    board.gauge(
                        {"loss": dock.shell(shown), "acc": dock.shell(acc_fn(logits, labels)), "lr": optz.lr}
                    )
                    steps += 1
                    where = {"epoch": epoch, "mile": train.mile}  # epochs finished, then steps into the next
                    if args.preemptible:
                        tm.exit_if_preempted(ema, optz=optz, state=state, meta=where)
                    if args.every and steps % args.every == 0 and train.mile:  # mile 0: the epoch's own drop
                        tm.drop(ema, optz=optz, state=state, meta=where, blocking=False)
            if rank0:
                ema.on()
                with dock.Nozzle() as nozzle:
                    ema.gear(nozzle)
                    for batch in board.track(dev, stage="DEV", epoch=run_epoch, mpe=dev.MPE):
                        images, labels = batch_to_tensors(batch)
                        logits = ema(images)
                        board.gauge(
                            {
                                "loss": dock.shell(loss_fn(logits, labels)),
                                "acc": dock.shell(acc_fn(logits, labels)),
                            }
                        )
                ema.off()
            tm.drop(
                ema, optz=optz, state=state, meta={"epoch": epoch + 1}
            )  # every rank: each has a Tank state
            if rank0:
                board.log(
                    gauge=False, tachograph=True, record=history
                )  # CSVs every epoch: safe if interrupted
    tm.wait()
    seconds = time.perf_counter() - began

    if rank0:
        correct, total = evaluate(ema, dev)
        written = board.log(gauge=True, tachograph=True, record=history)
        say(f"trained {args.epochs} epoch(s) in {seconds:.1f}s on {engine.device} x{nworld}")
        say(f"curves and CSVs: {log_dir}")
        for path in written:
            if path.endswith("_epoch.png"):
                say(f"  {path}")
        say(f"checkpoints: {sorted(p.name for p in ckpt_dir.glob('*.pth'))}")
        say(f"accuracy: {100.0 * correct / total:.1f}% on {total} held-out images")
    train.close()
    dev.close()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
