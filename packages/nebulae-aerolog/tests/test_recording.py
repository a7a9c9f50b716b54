"""What gauge() records: moving windows, epoch averages, read/record, validation, inviz, ranks."""

from __future__ import annotations

import numpy as np
import pytest

from nebulae.aerolog import DashBoard


def run_epochs(board: DashBoard, values: list[list[float]], stage: str = "TRAIN", name: str = "loss") -> None:
    for e, epoch_values in enumerate(values):
        for m, v in enumerate(epoch_values):
            board.gauge({name: v}, m, e, len(epoch_values), stage)


def test_moving_window_averages_the_first_slots_then_the_whole_ring(tmp_path, capsys) -> None:
    board = DashBoard(tmp_path, window=3)
    run_epochs(board, [[3.0, 6.0, 9.0, 12.0, 0.0]])
    assert board._series["TRAIN:loss"].smoothed() == pytest.approx([3.0, 4.5, 6.0, 9.0, 7.0])
    assert board._series["TRAIN:loss"].xs == [1, 2, 3, 4, 5]


def test_window_ring_is_indexed_by_global_mile_across_epochs(tmp_path, capsys) -> None:
    board = DashBoard(tmp_path, window=2)
    run_epochs(board, [[1.0, 3.0], [5.0, 7.0]])
    rec = board._series["TRAIN:loss"]
    assert rec.xs == [1, 2, 3, 4]
    assert rec.smoothed() == pytest.approx([1.0, 2.0, 4.0, 6.0])


def test_epoch_average_is_the_mean_of_the_values_of_that_epoch(tmp_path, capsys) -> None:
    board = DashBoard(tmp_path, window=5)
    run_epochs(board, [[1.0, 2.0, 3.0], [10.0, 20.0, 30.0]])
    assert board.read("loss", "TRAIN", 1) == pytest.approx(2.0)
    assert board.read("loss", "TRAIN", 2) == pytest.approx(20.0)
    assert board.read("loss", "TRAIN") == pytest.approx(20.0)


def test_stages_are_recorded_apart(tmp_path, capsys) -> None:
    board = DashBoard(tmp_path)
    run_epochs(board, [[1.0, 1.0]], stage="TRAIN")
    run_epochs(board, [[5.0, 7.0]], stage="DEV")
    assert board.read("loss", "DEV") == pytest.approx(6.0)
    assert board.read("loss", "TRAIN") == pytest.approx(1.0)


def test_zero_d_arrays_and_ints_are_accepted(tmp_path, capsys) -> None:
    board = DashBoard(tmp_path)
    run_epochs(board, [[np.float32(2.0), np.array(4.0), 6]])  # type: ignore[list-item]
    assert board.read("loss", "TRAIN") == pytest.approx(4.0)


def test_read_rejects_epoch_zero_and_unknown_keys(tmp_path, capsys) -> None:
    board = DashBoard(tmp_path)
    run_epochs(board, [[1.0]])
    with pytest.raises(ValueError, match="1-based"):
        board.read("loss", "TRAIN", 0)
    with pytest.raises(ValueError, match="out of range"):
        board.read("loss", "TRAIN", 5)
    with pytest.raises(KeyError, match="TRAIN:acc"):
        board.read("acc", "TRAIN")


def test_record_stores_a_user_series_once(tmp_path) -> None:
    board = DashBoard(tmp_path)
    board.record("bleu", "DEV", [0.1, 0.3])
    assert board.read("bleu", "DEV", 2) == pytest.approx(0.3)
    with pytest.raises(KeyError, match="already recorded"):
        board.record("bleu", "DEV", [0.5])


def test_non_numeric_entries_name_the_metric(tmp_path) -> None:
    board = DashBoard(tmp_path)
    with pytest.raises(TypeError, match=r"entry\['loss'\] must be a number \(got str '0.5'\)"):
        board.gauge({"loss": "0.5"}, 0, 0, 10, "TRAIN")
    with pytest.raises(TypeError, match=r"entry\['acc'\] must be a number"):
        board.gauge({"acc": [1, 2]}, 0, 0, 10, "TRAIN")


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        ((0, 0, 0, "TRAIN"), ValueError, "'mpe' must be an int >= 1"),
        ((-1, 0, 5, "TRAIN"), ValueError, "'mile' must be an int >= 0"),
        ((0, 1.5, 5, "TRAIN"), TypeError, "'epoch' must be an int"),
        ((0, 0, 5, 3), TypeError, "'stage' must be a str"),
        ((0, 0, 5), TypeError, "gauge\\(\\) missing 'stage'; only inside DashBoard.track"),
    ],
)
def test_bad_gauge_arguments_are_named(tmp_path, args: tuple, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        DashBoard(tmp_path).gauge({"loss": 1.0}, *args)


def test_plot_and_wipe_together_are_rejected(tmp_path) -> None:
    with pytest.raises(ValueError, match="plot=False with wipe=True"):
        DashBoard(tmp_path).gauge({"loss": 1.0}, 0, 0, 5, "TRAIN", wipe=True)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window": 0}, "'window'"),
        ({"divisor": 0}, "'divisor'"),
        ({"span": 9}, "'span' must be an int >= 10"),
    ],
)
def test_constructor_ranges_are_checked(tmp_path, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DashBoard(tmp_path, **kwargs)


def test_log_dir_alias_and_config(tmp_path) -> None:
    board = DashBoard(log_dir=tmp_path / "a")
    assert (tmp_path / "a").is_dir() and board.log_path == str(tmp_path / "a")
    board = DashBoard(config={"log_path": tmp_path / "b", "window": 4})
    assert board.window == 4 and (tmp_path / "b").is_dir()
    with pytest.raises(TypeError, match="not both"):
        DashBoard(tmp_path / "c", log_dir=tmp_path / "d")
    with pytest.raises(TypeError, match="either in 'config' or as arguments"):
        DashBoard(tmp_path, window=3, config={"span": 40})


def test_inviz_is_called_on_every_step_and_at_epoch_end(tmp_path, capsys) -> None:
    calls = []
    board = DashBoard(tmp_path, format={"img": (lambda *a: calls.append(a), "inviz")}, refresh=1000)
    for m in range(3):
        board.gauge({"img": f"picture{m}", "loss": 1.0}, m, 0, 3, "TRAIN", interval=2)
    assert calls == [
        ("TRAIN", 1, 1, 3, "picture0"),
        ("TRAIN", 1, 2, 3, "picture1"),
        ("TRAIN", 1, 3, 3, "picture2"),
        ("TRAIN", 1, -1, 3, "picture2"),
    ]
    assert "TRAIN:img" not in board._series


def test_an_inviz_exception_propagates_with_its_context(tmp_path) -> None:
    def broken(stage, epoch, mile, mpe, value):
        raise OSError("disk full")

    board = DashBoard(tmp_path, format={"img": (broken, "inviz")})
    with pytest.raises(OSError, match="disk full") as info:
        board.gauge({"img": 1}, 4, 1, 10, "DEV")
    assert "inviz callback of metric 'img' (stage 'DEV', epoch 2, mile 5)" in info.value.__notes__[0]


def test_tailor_values_are_shown_but_not_recorded(tmp_path, capsys) -> None:
    board = DashBoard(tmp_path, format={"lr": (lambda v: f"lr={v:.0e}", "tailor")})
    board.gauge({"lr": 0.001, "loss": 2.0}, 0, 0, 1, "TRAIN")
    out = capsys.readouterr().out
    assert "lr ➠ lr=1e-03 |" in out
    assert "TRAIN:lr" not in board._series


def test_ranks_above_zero_do_nothing(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("NEB_RANK", "1")
    board = DashBoard(tmp_path / "logs")
    run_epochs(board, [[1.0, 2.0]])
    board.write("hello")
    board.log()
    assert board.read("loss", "TRAIN") is None
    assert list(board.track([1, 2], stage="TRAIN", epoch=0)) == [1, 2]
    assert capsys.readouterr().out == ""
    assert not (tmp_path / "logs").exists()


def test_one_element_tensors_are_recorded(tmp_path, capsys) -> None:
    torch = pytest.importorskip("torch")
    board = DashBoard(tmp_path)
    run_epochs(board, [[torch.tensor(1.5), torch.tensor([2.5])]])
    assert board.read("loss", "TRAIN") == pytest.approx(2.0)


@pytest.mark.gpu
def test_cuda_tensors_are_recorded(tmp_path, capsys) -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    board = DashBoard(tmp_path)
    run_epochs(board, [[torch.tensor(1.0, device="cuda"), torch.tensor(3.0, device="cuda")]])
    assert board.read("loss", "TRAIN") == pytest.approx(2.0)


def test_read_takes_the_recorded_name_and_its_key_error_lists_what_it_takes(tmp_path, capsys) -> None:
    board = DashBoard(tmp_path)
    run_epochs(board, [[1.0, 3.0]])
    board.gauge({"acc": 0.5}, 0, 0, 1, "DEV")
    assert board.read("TRAIN:loss") == board.read("loss", "TRAIN") == 2.0
    assert board.read("DEV:acc", epoch=1) == 0.5
    with pytest.raises(KeyError) as info:
        board.read("los", "TRAIN")
    message = str(info.value)
    assert "'TRAIN:los'" in message and "read('loss', 'TRAIN'), read('acc', 'DEV')" in message
    with pytest.raises(KeyError, match="pass the stage too, or write 'STAGE:metric'"):
        board.read("loss")
    with pytest.raises(TypeError, match="'stage' must be a str"):
        board.read("loss", 1)
