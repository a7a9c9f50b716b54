"""Smoke test of nebulae-aerolog, run installed alone or vendored under another name: python aerolog.py MODULE."""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import sys
import tempfile


def main(module_name: str) -> None:
    aerolog = importlib.import_module(module_name)
    assert "matplotlib" not in sys.modules, "importing aerolog must not import matplotlib"
    assert aerolog.curve2str([1, 2, 3, 2], divisor=3, span=10).splitlines()[1] == "     3.000 |  /"
    with tempfile.TemporaryDirectory() as tmp:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            board = aerolog.DashBoard(tmp, window=2, format={"acc": (".1f", "percent")})
            for epoch in range(2):
                for _ in board.track(range(4), stage="TRAIN", epoch=epoch):
                    board.gauge({"loss": 1.0 + epoch, "acc": 0.5})
            board.log()
        assert out.getvalue().count("s/epoch") == 2 and "\x1b" not in out.getvalue()
        assert board.read("loss", "TRAIN", 2) == 2.0
        with open(os.path.join(tmp, "loss_TRAIN_epoch.csv")) as fh:
            assert fh.read().splitlines() == ["epoch,TRAIN:loss", "1,1.0", "2,2.0"]
        pngs = [name for name in os.listdir(tmp) if name.endswith(".png")]
        assert "loss_epoch.png" in pngs and len(pngs) == 6, pngs  # loss, acc, data_wait
        again = aerolog.DashBoard(os.path.join(tmp, "next"))
        again.log(gauge=False, record=tmp)
        assert again.read("acc", "TRAIN") == 0.5
    print("ok")


if __name__ == "__main__":
    main(sys.argv[1])
