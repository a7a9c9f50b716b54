"""The demo (the README's first command) runs end to end: train, resume, two ranks, a user's own folder."""

from __future__ import annotations

import csv
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

DEMO = Path(__file__).resolve().parents[1] / "demo" / "main.py"


def _demo(*args: str, timeout: float = 600, cwd: Path | None = None) -> str:
    out = subprocess.run(
        [sys.executable, str(DEMO), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        cwd=cwd,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


def _accuracy(stdout: str) -> float:
    match = re.search(r"^accuracy: (\d+\.\d)% on (\d+) held-out images$", stdout, re.M)
    assert match, stdout[-2000:]
    return float(match.group(1))


def _epochs_logged(folder: Path) -> list[float]:
    with open(folder / "loss_TRAIN_epoch.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["epoch", "TRAIN:loss"]
    return [float(r[0]) for r in rows[1:]]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    # a relative --out, as in the README's `hatch run demo:run` (default ./demo-output)
    cwd = tmp_path_factory.mktemp("demo")
    return cwd / "run", _demo("--epochs", "1", "--subset", "300", "--out", "run", cwd=cwd)


def test_one_epoch_packs_trains_checkpoints_and_logs(first_run):
    out, stdout = first_run
    assert "[1/4] data: 300 handwritten digits -> 240 train / 60 held out (10 classes)" in stdout
    assert sorted(p.name for p in (out / "fuel").glob("*.hdf5")) == [
        "dev.hdf5",
        "train_0.hdf5",
        "train_1.hdf5",
    ]
    assert (out / "data" / "labels.csv").read_text().splitlines()[0] == "image\tlabel"
    assert 0.0 <= _accuracy(stdout) <= 100.0
    ckpt = torch.load(out / "ckpt" / "DIGITS_EMA-1.pth", weights_only=True)
    assert ckpt["meta"] == {"epoch": 1} and "optz" in ckpt and "hull.fc.weight" in str(list(ckpt["net"]))
    logs = out / "aerolog"
    assert _epochs_logged(logs) == [1.0]
    assert (logs / "acc_epoch.png").stat().st_size > 10_000
    assert "TRAIN" in stdout and "data_wait" in stdout  # the board's summaries show the data-wait share


def test_resume_continues_epoch_optimizer_and_curves(first_run):
    out, _ = first_run
    stdout = _demo("--resume", "--epochs", "1", "--subset", "300", "--out", str(out))
    assert "resuming after epoch 1" in stdout and "packed files reused" in stdout
    ckpt = torch.load(out / "ckpt" / "DIGITS_EMA-2.pth", weights_only=True)
    assert ckpt["meta"] == {"epoch": 2}
    first = torch.load(out / "ckpt" / "DIGITS_EMA-1.pth", weights_only=True)
    assert ckpt["net"]["_extra_state"]["count"] > first["net"]["_extra_state"]["count"]  # the EMA went on
    assert _epochs_logged(out / "aerolog") == [1.0, 2.0]  # the curves continue after the recorded run
    assert (out / "aerolog" / "acc_epoch.png").exists()


def test_two_ranks_under_multiverse(tmp_path):
    stdout = _demo("--nworld", "2", "--epochs", "1", "--subset", "300", "--out", str(tmp_path))
    assert "on CPU x2" in stdout
    assert stdout.count("Anchor is dropped") == 1  # only rank 0 writes
    _accuracy(stdout)


def test_a_users_own_folder_and_csv(tmp_path):
    from PIL import Image, ImageDraw

    data = tmp_path / "shapes"
    data.mkdir()
    rows = []
    for k in range(36):
        label = k % 3
        image = Image.new("RGB", (40, 30), (20, 20, 20))
        draw = ImageDraw.Draw(image)
        box = (8 + k % 5, 6, 30, 24)
        [draw.ellipse, draw.rectangle, draw.line][label](box, fill=(200, 180, 40 * label), width=3)
        image.save(data / f"shape_{k}.png")
        rows.append(f"shape_{k}.png,{label}")
    (tmp_path / "labels.csv").write_text("image,label\n" + "\n".join(rows) + "\n")
    stdout = _demo(
        "--data",
        str(data),
        "--csv",
        str(tmp_path / "labels.csv"),
        "--epochs",
        "1",
        "--out",
        str(tmp_path / "o"),
    )
    assert "[1/4] data: 36 images from" in stdout and "(3 classes)" in stdout
    _accuracy(stdout)


def test_bad_options_are_refused_by_name(tmp_path):
    out = subprocess.run(
        [sys.executable, str(DEMO), "--data", str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 2 and "--data and --csv go together" in out.stderr


def _newest(folder: Path) -> Path:
    return max(folder.glob("DIGITS_EMA-*.pth"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))


def test_every_drops_mid_epoch_and_resume_continues_at_that_step(tmp_path):
    out = tmp_path / "o"
    _demo("--epochs", "1", "--subset", "300", "--every", "2", "--out", str(out))
    _newest(out / "ckpt").unlink()  # the epoch's own checkpoint: the one of step 2 is then the newest
    mid = torch.load(_newest(out / "ckpt"), weights_only=True)
    assert mid["meta"] == {"epoch": 0, "mile": 2} and mid["ranked"]["train"][0]["mile"] == 2
    stdout = _demo("--resume", "--epochs", "1", "--subset", "300", "--out", str(out))
    assert re.search(r"^resuming epoch 1 at step 2 of \d+$", stdout, re.M), stdout[-2000:]
    assert torch.load(_newest(out / "ckpt"), weights_only=True)["meta"] == {"epoch": 1}
    _accuracy(stdout)


def test_preemptible_checkpoints_on_sigterm_exits_143_and_resumes(tmp_path):
    out = tmp_path / "o"
    args = ["--epochs", "30", "--subset", "300", "--every", "1", "--preemptible", "--out", str(out)]
    run = subprocess.Popen(
        [sys.executable, str(DEMO), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert run.stdout is not None
        for line in run.stdout:  # the first background drop: the loop runs under the handler
            if line.startswith("Anchor is dropped"):
                run.send_signal(signal.SIGTERM)
                break
        rest = run.stdout.read()
        assert run.wait(timeout=300) == 143, rest[-3000:]
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert "Preempted (SIGTERM): checkpoint written, exiting with 143" in rest
    stopped = torch.load(_newest(out / "ckpt"), weights_only=True)["meta"]
    stdout = _demo("--resume", "--epochs", "1", "--subset", "300", "--out", str(out))
    if stopped["mile"]:
        assert f"resuming epoch {stopped['epoch'] + 1} at step {stopped['mile']} of" in stdout
    else:
        assert f"resuming after epoch {stopped['epoch']}" in stdout
