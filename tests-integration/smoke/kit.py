"""Smoke check of nebulae-kit, importable under any name (argv[1])."""

import importlib
import json
import os
import sys
import tempfile

kit = importlib.import_module(sys.argv[1] if len(sys.argv) > 1 else "nebulae.kit")

assert kit.Law.CORE == "PYTORCH" and kit.Law is kit.Constant
assert kit.get_rank() == -1 or "RANK" in os.environ or "NEB_RANK" in os.environ
assert kit.current_engine() is None
gt = kit.GPUtil()  # must construct with or without a driver
assert isinstance(gt.available(1, 0), list)
with tempfile.TemporaryDirectory() as tmp:
    path = kit.record_cfg(os.path.join(tmp, "cfg.json"), {"lr": 0.1})
    with open(path) as handle:
        assert kit.parse_cfg(path) == {"lr": 0.1} == json.load(handle)
assert kit.hotvec2mtx([1], 3).tolist() == [[0.0, 1.0, 0.0]]
assert "torch" not in sys.modules
print("ok")
