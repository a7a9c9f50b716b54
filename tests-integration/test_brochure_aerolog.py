"""The brochure's Aerolog section: DashBoard(...), gauge(...) and log(...) with the documented signatures."""

from __future__ import annotations

import csv

import pytest

from nebulae.aerolog import DashBoard


def _gauge_two_epochs(db: DashBoard, mpe: int = 4) -> list[float]:
    losses = []
    for epoch in range(2):
        for mile in range(mpe):
            loss = 1.0 / (1 + epoch * mpe + mile)
            losses.append(loss)
            # gauge(entry, mile, epoch, mpe, stage, interval=1, duration=None)
            db.gauge({"loss": loss, "acc": 0.5 + 0.1 * mile}, mile, epoch, mpe, "TRAIN", 1, 0.01)
        db.gauge({"loss": 0.3 - 0.1 * epoch}, 0, epoch, 1, "DEV")
    return losses


def test_dashboard_logs_csv_and_png_with_the_documented_arguments(tmp_path, capsys):
    log_path = tmp_path / "aerolog"
    db = DashBoard(
        log_path=str(log_path),
        window=1,
        divisor=10,
        span=30,
        format={"loss": (".4f", "raw"), "acc": (".1f", "percent")},
    )
    losses = _gauge_two_epochs(db)
    db.log(gauge=True, tachograph=True, record="")

    names = {p.name for p in log_path.iterdir()}
    assert {
        "loss_TRAIN_mile.csv",
        "loss_TRAIN_epoch.csv",
        "acc_TRAIN_mile.csv",
        "loss_DEV_epoch.csv",
    } <= names
    assert {"loss_TRAIN.png", "loss_epoch.png"} <= names
    with open(log_path / "loss_TRAIN_mile.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["mile", "TRAIN:loss"]
    assert [int(r[0]) for r in rows[1:]] == list(range(1, 9))
    assert [round(float(r[1]), 6) for r in rows[1:]] == [
        round(x, 6) for x in losses
    ]  # window=1: no smoothing
    with open(log_path / "loss_TRAIN_epoch.csv", newline="") as f:
        epochs = [float(r[1]) for r in list(csv.reader(f))[1:]]
    assert epochs == pytest.approx([sum(losses[:4]) / 4, sum(losses[4:]) / 4])
    out = capsys.readouterr().out
    assert "TRAIN" in out and "DEV" in out and "Epoch" in out


def test_log_record_continues_an_earlier_run(tmp_path):
    first = DashBoard(log_path=str(tmp_path / "run1"))
    _gauge_two_epochs(first)
    first.log(gauge=False, tachograph=True)

    second = DashBoard(log_path=str(tmp_path / "run2"))
    second.gauge({"loss": 0.01}, 0, 0, 1, "TRAIN")
    # record: "Append metrics logged this time after the recording file."
    second.log(gauge=False, tachograph=True, record=str(tmp_path / "run1" / "loss_TRAIN_mile.csv"))
    with open(tmp_path / "run2" / "loss_TRAIN_mile.csv", newline="") as f:
        rows = list(csv.reader(f))[1:]
    assert len(rows) == 9 and int(rows[-1][0]) == 9 and float(rows[-1][1]) == 0.01


def test_tailor_and_inviz_formats(tmp_path, capsys):
    calls = []
    fmt = {
        "lr": (lambda v: f"lr={v:g}", "tailor"),
        "sample": (lambda stage, epoch, mile, mpe, value: calls.append((stage, epoch, mile)), "inviz"),
    }
    db = DashBoard(log_path=str(tmp_path), format=fmt)
    for mile in range(2):
        db.gauge({"loss": 0.5, "lr": 0.001, "sample": None}, mile, 0, 2, "TRAIN")
    db.log(gauge=False)
    assert "lr=0.001" in capsys.readouterr().out
    assert calls[:2] == [("TRAIN", 1, 1), ("TRAIN", 1, 2)]  # every call, 1-based
    assert ("TRAIN", 1, -1) in calls  # once more at the epoch end
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loss_TRAIN_epoch.csv", "loss_TRAIN_mile.csv"]
