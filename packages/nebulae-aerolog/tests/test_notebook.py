"""Inside a Jupyter kernel the board draws in one output area per cell, updated in place (a real kernel)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

TRAIN = """
from nebulae.aerolog import DashBoard
board = DashBoard({logs!r}, refresh=0, epochs=2)
for epoch in range(2):
    for i in board.track(range(5), stage="TRAIN", epoch=epoch):
        board.gauge({{"loss": 1.0 / (i + 1)}})
    board.write(f"epoch {{epoch}} done")
"""

AGAIN = """
for i in board.track(range(3), stage="DEV", epoch=0):
    board.gauge({"loss": 0.5})
print("plain print")
"""


def run_notebook(tmp_path, *cells: str) -> list:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
    client = nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    return [cell.outputs for cell in nb.cells]


def test_a_notebook_board_updates_one_output_area_per_cell(tmp_path) -> None:
    first, second = run_notebook(tmp_path, TRAIN.format(logs=str(tmp_path / "logs")), AGAIN)
    assert [o.output_type for o in first] == ["display_data"]  # no stream output, no second area
    text = first[0].data["text/plain"]
    # the area ends with what was drawn last: both summaries and the lines written above the board
    assert "| 1st Epoch ✇ 5 Miles ⧲ " in text and "| 2nd Epoch ✇ 10 Miles ⧲ " in text
    assert "epoch 0 done" in text and text.rstrip().endswith("epoch 1 done")
    assert "\x1b" not in text and "\r" not in text
    # the board used again in another cell draws there, not in the first cell's area
    assert [o.output_type for o in second] == ["display_data", "stream"]
    assert (
        "| 1st Epoch ✇ 3 Miles ⧲ " in second[0].data["text/plain"]
        and "| DEV |" in second[0].data["text/plain"]
    )
    assert "TRAIN" not in second[0].data["text/plain"]
    assert second[1].text == "plain print\n"


def test_the_live_line_shows_the_total_and_the_etas_in_a_notebook(tmp_path) -> None:
    source = """
import time
from nebulae.aerolog import DashBoard
board = DashBoard({logs!r}, refresh=0, epochs=3)
for i in board.track(range(4), stage="TRAIN", epoch=0):
    time.sleep(0.01)
    board.gauge({{"loss": 1.0}})
    if i == 2:
        break
""".format(logs=str(tmp_path / "logs"))
    [outputs] = run_notebook(tmp_path, source)
    [area] = outputs
    text = area.data["text/plain"]
    assert "| 1st Epoch ✇ 3/4 Miles ⊰⟦" in text and " it/s ETA 00:00 (run 00:0" in text
    assert "TRAIN:loss ^" in text  # the ASCII curve is drawn above the line


def test_outside_a_kernel_ipython_is_never_imported(tmp_path) -> None:
    code = (
        "import sys\n"
        "from nebulae.aerolog import DashBoard\n"
        f"b = DashBoard({str(tmp_path)!r}, refresh=0)\n"
        "for i in b.track(range(3), stage='TRAIN', epoch=0):\n"
        "    b.gauge({'loss': 1.0})\n"
        "print('IPython' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=dict(os.environ)
    ).stdout
    assert out.splitlines()[-1] == "False"
