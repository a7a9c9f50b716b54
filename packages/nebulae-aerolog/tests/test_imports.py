"""Importing aerolog does no work: no torch, matplotlib, IPython, TensorBoard or MLflow, nothing printed or created."""

from __future__ import annotations

import subprocess
import sys


def test_import_loads_neither_torch_nor_matplotlib(tmp_path) -> None:
    code = (
        "import sys, nebulae.aerolog as a; "
        "print(sorted(m for m in ('torch', 'matplotlib', 'numpy', 'logging', 'IPython', 'tensorboard', 'mlflow') "
        "if m in sys.modules)); "
        "print(a.__all__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    heavy, names = result.stdout.splitlines()
    assert heavy == "[]"
    assert (
        names
        == "['AerologWarning', 'DashBoard', 'MLflowSink', 'TensorBoardSink', '__version__', 'curve2str']"
    )
    assert list(tmp_path.iterdir()) == []
