"""Sinks: every recorded value goes to TensorBoard, MLflow or a callable, from rank 0 only (read back)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from nebulae.aerolog import DashBoard, MLflowSink, TensorBoardSink


def train(board: DashBoard, epochs: int = 2, mpe: int = 3) -> None:
    for e in range(epochs):
        for m in range(mpe):
            board.gauge({"loss": 1.0 / (e * mpe + m + 1), "acc": 0.5, "note": "x"}, m, e, mpe, "TRAIN")
        board.gauge({"loss": 9.0}, 0, e, 1, "DEV")


FORMAT = {"acc": (".1f", "percent"), "note": (str, "tailor")}


def test_a_callable_sink_gets_every_recorded_value_with_its_global_mile(tmp_path, capsys) -> None:
    seen = []
    board = DashBoard(
        tmp_path, format=FORMAT, sinks=[lambda stage, values, step: seen.append((stage, dict(values), step))]
    )
    train(board)
    assert seen[:2] == [("TRAIN", {"loss": 1.0, "acc": 0.5}, 1), ("TRAIN", {"loss": 0.5, "acc": 0.5}, 2)]
    assert [s for s in seen if s[0] == "DEV"] == [("DEV", {"loss": 9.0}, 1), ("DEV", {"loss": 9.0}, 2)]
    assert len(seen) == 8  # tailor values are not recorded, so not sent


def test_a_failing_sink_stops_the_run_loudly(tmp_path, capsys) -> None:
    def broken(stage, values, step):
        raise RuntimeError("database down")

    with pytest.raises(RuntimeError, match="database down"):
        DashBoard(tmp_path, sinks=[broken]).gauge({"loss": 1.0}, 0, 0, 2, "TRAIN")


def test_tensorboard_reads_back_every_scalar(tmp_path, capsys) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with DashBoard(tmp_path / "logs", format=FORMAT, sinks=[TensorBoardSink(tmp_path / "tb")]) as board:
        train(board)
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    assert sorted(events.Tags()["scalars"]) == ["acc/TRAIN", "loss/DEV", "loss/TRAIN"]
    loss = events.Scalars("loss/TRAIN")
    assert [s.step for s in loss] == [1, 2, 3, 4, 5, 6]
    assert [s.value for s in loss] == pytest.approx([1 / k for k in range(1, 7)])
    assert [(s.step, s.value) for s in events.Scalars("loss/DEV")] == [(1, 9.0), (2, 9.0)]


def test_mlflow_reads_back_every_metric_with_its_step(tmp_path, monkeypatch, capsys) -> None:
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps the local file store opt-in
    store = str(tmp_path / "mlruns")
    sink = MLflowSink("aerolog-test", run_name="digits", tracking_uri=store)
    with DashBoard(tmp_path / "logs", format=FORMAT, sinks=[sink]) as board:
        train(board)
    client = MlflowClient(tracking_uri=store)
    run = client.get_run(sink.run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "digits"
    history = client.get_metric_history(sink.run_id, "loss/TRAIN")
    assert [m.step for m in history] == [1, 2, 3, 4, 5, 6]
    assert [m.value for m in history] == pytest.approx([1 / k for k in range(1, 7)])
    assert [(m.step, m.value) for m in client.get_metric_history(sink.run_id, "acc/TRAIN")][-1] == (6, 0.5)
    assert sorted(run.data.metrics) == ["acc/TRAIN", "loss/DEV", "loss/TRAIN"]


def test_mlflow_metrics_wait_only_until_the_epoch_ends(tmp_path, monkeypatch, capsys) -> None:
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    store = str(tmp_path / "mlruns")
    sink = MLflowSink(tracking_uri=store)
    board = DashBoard(tmp_path / "logs", sinks=[sink])
    for m in range(3):
        board.gauge({"loss": float(m)}, m, 0, 3, "TRAIN")
    steps = [m.step for m in MlflowClient(tracking_uri=store).get_metric_history(sink.run_id, "loss/TRAIN")]
    assert steps == [1, 2, 3]  # sent at the epoch end, without close()


def test_other_ranks_send_nothing_and_open_no_writer(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("RANK", "1")
    seen = []
    tb = TensorBoardSink(tmp_path / "tb")
    board = DashBoard(tmp_path / "logs", sinks=[tb, lambda *a: seen.append(a)])
    train(board)
    board.close()
    assert seen == [] and not (tmp_path / "tb").exists() and not (tmp_path / "logs").exists()


@pytest.mark.parametrize(
    ("sink", "extra"), [("TensorBoardSink('tb')", "tensorboard"), ("MLflowSink()", "mlflow")]
)
def test_a_missing_writer_library_names_the_extra(tmp_path, sink, extra) -> None:
    code = (
        "import sys\n"
        "sys.modules['tensorboard'] = None; sys.modules['mlflow'] = None  # as if not installed\n"
        "from nebulae.aerolog import DashBoard, MLflowSink, TensorBoardSink\n"
        f"board = DashBoard('logs', sinks=[{sink}])\n"
        "try:\n"
        "    board.gauge({'loss': 1.0}, 0, 0, 2, 'TRAIN')\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert f"pip install 'nebulae-aerolog[{extra}]'" in out.stdout, out.stderr


def test_a_board_closed_between_epochs_keeps_sending_to_tensorboard(tmp_path, capsys) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    board = DashBoard(tmp_path / "logs", sinks=[TensorBoardSink(tmp_path / "tb")])
    for e in range(2):
        for m in range(2):
            board.gauge({"loss": float(e * 2 + m)}, m, e, 2, "TRAIN")
        board.close()
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    assert [(s.step, s.value) for s in events.Scalars("loss/TRAIN")] == [
        (1, 0.0),
        (2, 1.0),
        (3, 2.0),
        (4, 3.0),
    ]
