"""log(): tachograph CSVs, continuation from a recorded run, PNG curves."""

from __future__ import annotations

import os
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from nebulae.aerolog import AerologWarning, DashBoard
from nebulae.aerolog._logfiles import read_record, write_curve_csv


def train(board: DashBoard, epochs: int, mpe: int, start: float = 0.0) -> None:
    for e in range(epochs):
        for m in range(mpe):
            board.gauge({"loss": start + e * mpe + m, "acc/top1": 0.5}, m, e, mpe, "TRAIN")


def rows(path) -> list[str]:
    return path.read_text().splitlines()


def test_csvs_hold_every_mile_and_epoch_with_headers(tmp_path, capsys) -> None:
    board = DashBoard(tmp_path)
    train(board, 2, 3)
    board.log(gauge=False)
    assert rows(tmp_path / "loss_TRAIN_mile.csv") == [
        "mile,TRAIN:loss",
        *(f"{i},{float(i - 1)}" for i in range(1, 7)),
    ]
    assert rows(tmp_path / "loss_TRAIN_epoch.csv") == ["epoch,TRAIN:loss", "1,1.0", "2,4.0"]
    assert rows(tmp_path / "acc-top1_TRAIN_epoch.csv")[0] == "epoch,TRAIN:acc/top1"
    assert not [p for p in os.listdir(tmp_path) if ".tmp-" in p]
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".png")]


def test_a_new_run_continues_after_a_recorded_directory(tmp_path, capsys) -> None:
    first = DashBoard(tmp_path / "run1")
    train(first, 2, 3)
    first.log(gauge=False)
    second = DashBoard(tmp_path / "run2")
    train(second, 1, 3, start=100.0)
    second.log(gauge=False, record=tmp_path / "run1")
    second.log(gauge=False, record=tmp_path / "run1")  # merged once, not twice
    mile = rows(tmp_path / "run2" / "loss_TRAIN_mile.csv")
    assert mile[1:] == [*(f"{i},{float(i - 1)}" for i in range(1, 7)), "7,100.0", "8,101.0", "9,102.0"]
    assert rows(tmp_path / "run2" / "loss_TRAIN_epoch.csv")[1:] == ["1,1.0", "2,4.0", "3,101.0"]
    assert second.read("loss", "TRAIN", 3) == pytest.approx(101.0)


def test_a_single_recorded_file_and_the_history_alias(tmp_path, capsys) -> None:
    write_curve_csv(tmp_path / "old.csv", "epoch", "DEV:bleu", [1, 2], [0.2, 0.25])
    board = DashBoard(tmp_path / "new")
    board.log(gauge=False, history=tmp_path / "old.csv")
    assert rows(tmp_path / "new" / "bleu_DEV_epoch.csv") == ["epoch,DEV:bleu", "1,0.2", "2,0.25"]
    with pytest.raises(TypeError, match="not both"):
        board.log(record=tmp_path / "old.csv", history=tmp_path / "old.csv")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("step,TRAIN:loss\n1,2\n", "the first header cell must be 'mile' or 'epoch'"),
        ("mile,loss\n1,2\n", "the second header cell must read 'STAGE:METRIC'"),
        ("a,b,c\n1,2,3\n", "not a DashBoard record"),
        ("mile,TRAIN:loss\n1,abc\n", "row 2: expected two numbers"),
        ("mile,TRAIN:loss\n1,2\n\n3,4,5\n", "row 4: expected two numbers"),
        ("mile,TRAIN:loss\nnan,inf\n", "row 2: expected two numbers 'mile,value', the mile a finite one"),
        ("epoch,TRAIN:loss\ninf,1\n", "row 2: expected two numbers 'epoch,value'"),
        ("mile,TRAIN:loss\n1\n", "row 2: expected two numbers"),
        ("mile,TRAIN:l\x00oss\n1,1\n", "the second header cell must read 'STAGE:METRIC'"),
        (b"\x89PNG\r\n\x1a\n\x00\xff", "not a CSV text file"),
    ],
)
def test_a_record_of_only_bad_csvs_is_an_error_naming_file_and_row_after_this_run_is_written(
    tmp_path, capsys, text: str | bytes, message: str
) -> None:
    (tmp_path / "rec").mkdir()
    (tmp_path / "rec" / "labels.csv").write_bytes(text if isinstance(text, bytes) else text.encode())
    board = DashBoard(tmp_path / "new")
    train(board, 1, 2)
    with pytest.raises(ValueError, match=message) as info:
        board.log(gauge=False, record=tmp_path / "rec")
    assert "labels.csv" in str(info.value)
    assert rows(tmp_path / "new" / "loss_TRAIN_mile.csv") == ["mile,TRAIN:loss", "1,0.0", "2,1.0"]


def test_one_bad_csv_in_a_record_folder_is_skipped_with_a_warning_after_this_run_is_written(
    tmp_path, capsys
) -> None:
    first = DashBoard(tmp_path / "run1")
    train(first, 1, 2)
    first.log(gauge=False)
    (tmp_path / "run1" / "labels.csv").write_text("path,label\nimg_1.jpg,cat\n")
    second = DashBoard(tmp_path / "run2")
    train(second, 1, 2, start=10.0)
    with pytest.warns(
        AerologWarning, match=r"'record': skipped .*labels\.csv: the first header cell must be"
    ) as caught:
        second.log(gauge=False, record=tmp_path / "run1")
    assert len(caught) == 1
    assert rows(tmp_path / "run2" / "loss_TRAIN_mile.csv")[1:] == ["1,0.0", "2,1.0", "3,10.0", "4,11.0"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # reported once per file, not at every log()
        second.log(gauge=False, record=tmp_path / "run1")


def test_a_second_copy_of_a_series_is_skipped_with_a_warning(tmp_path) -> None:
    (tmp_path / "rec").mkdir()
    write_curve_csv(tmp_path / "rec" / "a.csv", "epoch", "DEV:bleu", [1], [0.2])
    write_curve_csv(tmp_path / "rec" / "b.csv", "epoch", "DEV:bleu", [1], [0.9])
    board = DashBoard(tmp_path / "new")
    with pytest.warns(
        AerologWarning,
        match=r"b\.csv: holds the epoch series of 'DEV:bleu' again \(first read from .*a\.csv\)",
    ):
        board.log(gauge=False, record=tmp_path / "rec")
    assert rows(tmp_path / "new" / "bleu_DEV_epoch.csv") == ["epoch,DEV:bleu", "1,0.2"]


def test_recorded_nan_and_inf_values_are_continued_and_kept_out_of_png_names(tmp_path, capsys) -> None:
    (tmp_path / "old.csv").write_text("mile,TRAIN:loss\n1,0.5\n2,inf\n3,nan\n")
    board = DashBoard(tmp_path / "new")
    board.log(record=tmp_path / "old.csv")
    assert rows(tmp_path / "new" / "loss_TRAIN_mile.csv") == ["mile,TRAIN:loss", "1,0.5", "2,inf", "3,nan"]
    assert sorted(os.listdir(tmp_path / "new")) == ["loss_TRAIN.png", "loss_TRAIN_mile.csv"]


def test_missing_or_empty_records_are_reported_after_this_run_is_written(tmp_path, capsys) -> None:
    board = DashBoard(tmp_path / "new")
    train(board, 1, 2)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        board.log(gauge=False, record=tmp_path / "nowhere")
    assert (tmp_path / "new" / "loss_TRAIN_mile.csv").exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no CSV"):
        board.log(gauge=False, subdir="again", record=tmp_path / "empty")
    assert (tmp_path / "new" / "again" / "loss_TRAIN_epoch.csv").exists()


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(min_value=0, max_value=10**9), st.floats()), max_size=20),
    st.sampled_from(["mile", "epoch"]),
)
def test_csv_round_trip_is_exact_nan_and_inf_included(tmp_path_factory, points, unit) -> None:
    path = tmp_path_factory.mktemp("rt") / "curve.csv"
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    write_curve_csv(path, unit, "TRAIN:x,y", xs, ys)
    [(got_unit, key, got_x, got_y)], problems = read_record(path)
    assert (got_unit, key, got_x, problems) == (unit, "TRAIN:x,y", xs, [])
    assert [repr(y) for y in got_y] == [repr(y) for y in ys]


def test_png_curves_are_real_non_blank_images(tmp_path, capsys) -> None:
    board = DashBoard(tmp_path, format={"acc/top1": (".1f", "percent")})
    train(board, 2, 5)
    for m in range(5):
        board.gauge({"loss": 3.0 - m}, m, 0, 5, "DEV")
    board.log(tachograph=False, subdir="plots")
    files = sorted(os.listdir(tmp_path / "plots"))
    assert files == [
        "acc-top1_TRAIN.png",
        "acc-top1_epoch.png",
        "loss_DEV.png",
        "loss_TRAIN.png",
        "loss_epoch.png",
    ]
    for name in files:
        with Image.open(tmp_path / "plots" / name) as img:
            assert img.format == "PNG" and img.size == (800, 450)
            extrema = img.convert("L").getextrema()
            assert extrema[0] < 100 and extrema[1] > 200  # dark strokes on a light background


def test_log_replaces_the_same_files_each_call_and_returns_their_paths(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    board = DashBoard("logs")
    train(board, 1, 3)
    first = board.log()
    assert first == [
        os.path.join("logs", name)
        for name in [
            "loss_TRAIN_mile.csv",
            "loss_TRAIN_epoch.csv",
            "acc-top1_TRAIN_mile.csv",
            "acc-top1_TRAIN_epoch.csv",
            "loss_TRAIN.png",
            "acc-top1_TRAIN.png",
            "loss_epoch.png",
            "acc-top1_epoch.png",
        ]
    ]
    before = {p: os.stat(p).st_ino for p in first}
    train(board, 2, 3, start=10.0)
    second = board.log(subdir="")
    assert second == first and sorted(os.listdir("logs")) == sorted(os.path.basename(p) for p in first)
    assert all(os.stat(p).st_ino != before[p] for p in first)  # each replaced by a new file, atomically
    assert board.log(gauge=False, subdir="csv") == [
        os.path.join("logs", "csv", os.path.basename(p)) for p in first[:4]
    ]


def test_png_titles_carry_the_values_the_names_no_longer_hold(tmp_path, monkeypatch, capsys) -> None:
    import matplotlib.figure

    titles = []
    real = matplotlib.figure.Figure.savefig

    def spy(fig, *args, **kwargs):
        titles.append(fig.axes[0].get_title())
        return real(fig, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", spy)
    board = DashBoard(tmp_path, format={"acc/top1": (".1f", "percent")})
    train(board, 2, 3)
    board.log(tachograph=False)
    assert titles == [
        "TRAIN:loss: 5.0000 at mile 6",
        "TRAIN:acc/top1: 50.0% at mile 6",
        "loss: TRAIN 4.0000 (epoch 2)",
        "acc/top1: TRAIN 50.0% (epoch 2)",
    ]


def test_other_ranks_write_nothing_and_get_an_empty_list(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("RANK", "2")
    board = DashBoard(tmp_path / "logs")
    train(board, 1, 2)
    assert board.log() == [] and not (tmp_path / "logs").exists()
