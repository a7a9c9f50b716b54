"""The small utilities of nebulae.kit (the API table of the README): configs, seeds, labels, images, versions."""

from __future__ import annotations

import io
import json
import os
import random
import subprocess
import sys

import numpy as np
import pytest

import nebulae.kit as kit


def test_timer_returns_elapsed_first_and_wraps_non_tuples():
    @kit.Timer
    def pair():
        return 1, 2

    @kit.Timer
    def single():
        return "x"

    elapsed, a, b = pair()
    assert elapsed >= 0 and (a, b) == (1, 2)
    assert single()[1] == "x"
    assert pair.__name__ == "pair"


def test_spst_calls_through_without_cv2():
    assert kit.SPST(lambda x: x + 1)(1) == 2


def test_destine_makes_random_numpy_and_torch_repeatable():
    torch = pytest.importorskip("torch")
    kit.destine(7)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    kit.destine(7)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first
    with pytest.raises(ValueError, match="'seed' must be >= 0"):
        kit.destine(-1)
    with pytest.raises(TypeError):
        kit.destine(1.5)


def test_hotvec2mtx_accepts_ints_lists_and_strings_with_on_off_values():
    m = kit.hotvec2mtx([2, [0, 3], "1,3"], 4, on_value=5, off_value=-1)
    assert m.dtype == np.float32
    np.testing.assert_array_equal(m, [[-1, -1, 5, -1], [5, -1, -1, 5], [-1, 5, -1, 5]])
    assert kit.mtx2hotvec(m > 0) == [[2], [0, 3], [1, 3]]
    with pytest.raises(ValueError, match="label 0 has class 4"):
        kit.hotvec2mtx([4], 4)


def test_hotvec2mtx_tells_a_wrong_nclasses_type_from_a_wrong_value():
    with pytest.raises(TypeError, match=r"'nclasses' must be an int \(got str '4'\)"):
        kit.hotvec2mtx([1], "4")
    with pytest.raises(ValueError, match=r"'nclasses' must be >= 1 \(got 0\)"):
        kit.hotvec2mtx([1], 0)


def test_sparse_round_trip():
    pytest.importorskip("scipy")
    dense = np.array([[0, 2], [3, 0]])
    coo = kit.den2spa(dense)
    np.testing.assert_array_equal(kit.spa2den(coo), dense)
    np.testing.assert_array_equal(kit.spa2den([0, 1], [1, 0], [2, 3], (2, 2)), dense)


def test_sparse_without_scipy_names_the_extra():
    code = (
        "import sys; sys.modules['scipy'] = None; sys.modules['scipy.sparse'] = None\n"
        "import nebulae.kit as kit\n"
        "try:\n    kit.den2spa([[1]])\nexcept ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "pip install 'nebulae-kit[sparse]'" in out.stdout


def test_rand_trunc_norm_stays_inside_the_cutoff():
    np.random.seed(0)
    x = kit.rand_trunc_norm(1.0, 2.0, (2000,), cutoff_sigma=1)
    assert x.dtype == np.float32 and x.shape == (2000,)
    assert np.all(np.abs(x - 1.0) <= 2.0)


def test_record_cfg_writes_json_and_finds_a_free_name(tmp_path):
    path = tmp_path / "cfg.json"
    assert kit.record_cfg(path, {"a": 1}) == str(path)
    assert kit.parse_cfg(path) == {"a": 1}
    second = kit.record_cfg(path, {"a": 2}, overwrite=False)
    third = kit.record_cfg(path, {"a": 3}, overwrite=False)
    assert (os.path.basename(second), os.path.basename(third)) == ("cfg_.json", "cfg__.json")
    assert json.loads(path.read_text()) == {"a": 1}
    assert path.read_text().startswith("{\n    ")
    assert sorted(os.listdir(tmp_path)) == ["cfg.json", "cfg_.json", "cfg__.json"]


def test_ver2num_orders_versions():
    assert kit.ver2num("2.13.0") == 21300
    assert kit.ver2num("1.6") < kit.ver2num("1.10") < kit.ver2num("2.1.0+cpu")
    with pytest.raises(ValueError, match="not a version"):
        kit.ver2num("latest")


def test_byte2arr_decodes_rgb_and_gray_and_rejects_garbage():
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (5, 4), (10, 200, 30)).save(buf, "PNG")
    rgb = kit.byte2arr(np.frombuffer(buf.getvalue(), np.uint8))
    assert rgb.shape == (4, 5, 3) and tuple(rgb[0, 0]) == (10, 200, 30)
    buf = io.BytesIO()
    Image.new("L", (3, 2), 77).save(buf, "PNG")
    gray = kit.byte2arr(buf.getvalue())
    assert gray.shape == (2, 3, 1) and gray[0, 0, 0] == 77
    assert kit.byte2arr(buf.getvalue(), as_np=False).size == (3, 2)
    with pytest.raises(ValueError, match="not a decodable image"):
        kit.byte2arr(b"not an image")


def test_rgb2y_is_the_luma_channel():
    from PIL import Image

    y = kit.rgb2y(Image.new("RGB", (2, 2), (255, 255, 255)))
    assert y.shape == (2, 2) and y[0, 0] == 255


def test_join_imgs_lays_out_a_grid_with_margins():
    batch = np.ones((4, 20, 40, 3), np.uint8) * np.arange(1, 5, dtype=np.uint8)[:, None, None, None]
    grid = kit.join_imgs(batch, 2, 2)
    assert grid.shape == (20 * 2 + 1, 40 * 2 + 2, 3)
    assert grid[0, 0, 0] == 1 and grid[0, 42, 0] == 2 and grid[21, 0, 0] == 3 and grid[21, 42, 0] == 4
    assert grid[20, 0, 0] == 0 and grid[0, 40, 0] == 0
    with pytest.raises(ValueError, match="nrow·ncol"):
        kit.join_imgs(batch, 3, 1)


def test_plot_in_one_writes_a_non_blank_png(tmp_path):
    pytest.importorskip("matplotlib")
    from PIL import Image

    files = []
    for k in range(2):
        p = tmp_path / f"c{k}.csv"
        p.write_text("\n".join(f"{x},{x * (k + 1)}" for x in range(10)))
        files.append(str(p))
    out = kit.plot_in_one(["a", "b"], files, tmp_path / "both.png")
    image = np.asarray(Image.open(out).convert("L"))
    assert image.shape[0] > 100 and image.std() > 5
    assert [f for f in os.listdir(tmp_path) if ".tmp-" in f] == []


def test_sprawl_prints_a_directory_tree(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.txt").write_text("x")
    (tmp_path / "b.txt").write_text("b")
    text = kit.sprawl(str(tmp_path))
    assert "├── a" in text and "│   └── x.txt" in text and "└── b.txt" in text
    assert capsys.readouterr().out.strip() == text


def test_cli_gpus_prints_a_one_liner_without_gpus():
    out = subprocess.run(
        [sys.executable, "-m", "nebulae.kit", "gpus"], capture_output=True, text=True, timeout=120, check=True
    )
    lines = out.stdout.strip().splitlines()
    from nebulae.kit._gpu import query_gpus

    if query_gpus()[1] is None:
        assert lines[1].startswith("| GPU | Name")
    else:
        assert len(lines) == 1 and lines[0].startswith("No NVIDIA GPU")


def test_cli_gpus_table_with_fake_gpus(capsys):
    from nebulae.kit.__main__ import main
    from nebulae.kit.testing import FakeGPU, fake_nvml

    with fake_nvml([FakeGPU(free_mib=1000.4, total_mib=2000, utilization=42, temperature=51)]):
        assert main(["gpus"]) == 0
    out = capsys.readouterr().out
    assert "| 0   | NVIDIA H100 80GB HBM3 | 1000 / 2000" in out and "42%" in out and "51ºC" in out
