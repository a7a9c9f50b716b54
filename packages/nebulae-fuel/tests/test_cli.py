"""`python -m nebulae.fuel pack|info` (subprocesses, as a user runs them)."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

import h5py
import pytest

from nebulae.fuel._cli import in_flags


def cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "nebulae.fuel", *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )


def test_pack_then_info(photo_dir, tmp_path):
    dst = str(tmp_path / "cli.hdf5")
    res = cli(
        "pack",
        "--file-dir",
        str(photo_dir),
        "--file-list",
        "labels.csv",
        "--dtype",
        "int64",
        "--dst",
        dst,
        "--height",
        "8",
        "--width",
        "8",
        "--encode",
        "png",
        "--shards",
        "2",
        "--nworker",
        "1",
        "--quiet",
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == [str(tmp_path / "cli_0.hdf5"), str(tmp_path / "cli_1.hdf5")]
    with h5py.File(tmp_path / "cli_0.hdf5") as f:
        assert f["image"].attrs["nebulae_encode"] == "PNG"
    info = cli("info", dst)
    assert info.returncode == 0, info.stderr
    assert "2 file(s), 20 rows" in info.stdout and "encode=PNG" in info.stdout and "label" in info.stdout


def test_pack_refuses_existing_output_without_overwrite(photo_dir, tmp_path):
    args = [
        "pack",
        "--file-dir",
        str(photo_dir),
        "--file-list",
        "labels.csv",
        "--dtype",
        "int64",
        "--dst",
        str(tmp_path / "c.npz"),
        "--height",
        "8",
        "--width",
        "8",
        "--quality",
        "FAST",
        "--nworker",
        "1",
        "--no-exif",
        "--quiet",
    ]
    assert cli(*args).returncode == 0
    again = cli(*args)
    assert again.returncode == 2 and "already exists" in again.stderr
    # told in the flags the user types, as one argparse-style line without a traceback
    assert again.stderr.startswith("python -m nebulae.fuel pack: error: ")
    assert "pass --overwrite" in again.stderr and "another --dst" in again.stderr
    assert "overwrite=True" not in again.stderr and "dst_path" not in again.stderr
    assert "Traceback" not in again.stderr and len(again.stderr.strip().splitlines()) == 1
    assert cli(*args, "--overwrite").returncode == 0


def pack_args(photo_dir, dst, *extra):
    source = ["--file-dir", str(photo_dir), "--file-list", "labels.csv", "--dtype", "int64"]
    return ["pack", *source, "--dst", str(dst), "--nworker", "1", "--quiet", *extra]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--shards", "0"], "--shards must be >= 1 (got 0)"),
        (["--shards", "999"], "--shards must be <= the number of rows (20)"),
        (["--height", "8"], "--height and --width must both be > 0, or both 0"),
        (["--encode", "raw"], "--encode RAW needs height > 0 and width > 0"),
        (["--encode", "gif"], "--encode must be one of 'JPEG', 'PNG', 'RAW' or None (got 'gif')"),
        (["--delimiter", "ab"], "--delimiter must be a one-character str (got 'ab')"),
    ],
)
def test_pack_errors_name_the_flag_with_exit_code_2(photo_dir, tmp_path, extra, expected):
    res = cli(*pack_args(photo_dir, tmp_path / "e.h5", *extra))
    assert res.returncode == 2
    assert res.stderr.startswith("python -m nebulae.fuel pack: error: ")
    assert expected in res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.glob("e*.h5"))


def test_pack_errors_name_the_flag_for_paths(photo_dir, tmp_path):
    bad_dst = cli(*pack_args(photo_dir, tmp_path / "e.txt"))
    assert bad_dst.returncode == 2 and "error: --dst must end in .hdf5, .h5 or .npz" in bad_dst.stderr
    no_dir = cli(*pack_args(tmp_path / "missing", tmp_path / "e.h5"))
    assert no_dir.returncode == 2 and "error: --file-dir " in no_dir.stderr
    no_file = cli("info", str(tmp_path / "nothing.h5"))
    assert no_file.returncode == 2
    assert no_file.stderr.startswith("python -m nebulae.fuel info: error: FILE ")
    assert "data_path" not in no_file.stderr


def test_argparse_usage_errors_exit_2():
    res = cli("pack", "--file-dir", "x")
    assert res.returncode == 2 and "error: the following arguments are required: --file-list" in res.stderr


def _option_blocks(help_text):
    """{'--flag': its help text} from an argparse options listing."""
    blocks, current = {}, None
    for line in help_text.splitlines():
        match = re.match(r"  (-[-\w]+)", line)
        if match:
            current = match.group(1)
            blocks[current] = line
        elif current and line.startswith("    "):
            blocks[current] += " " + line.strip()
        else:
            current = None
    return blocks


def test_help_states_every_option_default():
    res = cli("pack", "--help")
    assert res.returncode == 0, res.stderr
    blocks = _option_blocks(res.stdout)
    required = {"--file-dir", "--file-list", "--dtype", "--dst", "-h"}
    optional = set(blocks) - required - {"--no-exif"}  # --no-exif is --keep-exif's other half
    assert {"--shards", "--height", "--channel", "--encode", "--nworker", "--overwrite"} <= optional
    for flag in sorted(optional):
        assert "(default: " in blocks[flag], f"{flag} does not state its default: {blocks[flag]!r}"
    assert "(default: 1)" in blocks["--shards"] and "(default: JPEG)" in blocks["--encode"]
    assert "(default: all cores)" in blocks["--nworker"]


def _command_parser():
    parser = argparse.ArgumentParser(prog="p")
    parser.add_argument("--dst", "--dst-path", dest="dst_path")
    parser.add_argument("--shards", type=int)
    parser.add_argument("--encode")
    parser.add_argument("--height", type=int)
    parser.add_argument("--overwrite", action="store_true")
    return parser


@pytest.mark.parametrize(
    ("message", "told"),
    [
        ("'shards' must be >= 1 (got 0)", "--shards must be >= 1 (got 0)"),
        ("pass overwrite=True to replace them", "pass --overwrite to replace them"),
        ("encode='RAW' needs height > 0", "--encode RAW needs height > 0"),
        ("choose another dst_path", "choose another --dst"),
        ("'nshard' and 'shards' given", "--shards and --shards given"),
        # paths and other words that merely contain an argument's name stay as they are
        ("'/data/dst_path/x.jpg' is not readable", "'/data/dst_path/x.jpg' is not readable"),
        ("row 3: my_dst_path_col is empty", "row 3: my_dst_path_col is empty"),
    ],
)
def test_library_messages_are_told_in_flags(message, told):
    assert in_flags(message, _command_parser(), {"nshard": "--shards"}) == told


@pytest.mark.parametrize(
    ("argv0", "prog"),
    [
        ("/venv/bin/nebulae-fuel", "nebulae-fuel"),
        ("/repo/src/nebulae/fuel/__main__.py", "python -m nebulae.fuel"),
        ("/venv/bin/pytest", "python -m nebulae.fuel"),
    ],
)
def test_program_name_is_how_the_user_started_it(monkeypatch, argv0, prog):
    from nebulae.fuel._cli import prog_name

    monkeypatch.setattr(sys, "argv", [argv0])
    assert prog_name("nebulae.fuel", "nebulae-fuel") == prog
