"""Packing one data set from several processes (a launcher's RANK/WORLD_SIZE, srun's SLURM_*, or rank=/nworld=),
resuming a pack after a crash, and the `index` command.

Processes are real subprocesses on this machine; a crash is a child that SIGKILLs itself at an exact os.replace.
"""

from __future__ import annotations

import filecmp
import importlib.util
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from nebulae.fuel import FuelGenerator, Tank, info

SPEC = {"label": "int64"}
NSHARD = 12
LAUNCH_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "NEB_RANK", "SLURM_PROCID", "SLURM_NTASKS")

# packs file_dir/labels.csv into dst as 12 shards in the place the environment gives; with kill_at > 0 it SIGKILLs
# itself when about to commit its kill_at-th shard (the shard written, not yet renamed into place)
CHILD = textwrap.dedent(
    """
    import os, re, signal, sys
    from nebulae.fuel import FuelGenerator

    file_dir, dst, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
    real, calls = os.replace, []

    def replace(src, final, *args, **kwargs):
        if re.fullmatch(r"t_\\d+\\.(hdf5|npz)", os.path.basename(os.fspath(final))):
            calls.append(final)
            if len(calls) == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
        return real(src, final, *args, **kwargs)

    os.replace = replace
    fg = FuelGenerator(file_dir, "labels.csv", ["int64"])
    fg.generate(dst, 8, 8, encode="PNG", shards=12, nworker=1, verbose=False)
    """
)


@pytest.fixture
def raw(tmp_path, photo, csvfile) -> Path:
    """24 photos, two rows per shard of a 12-shard family."""
    d = tmp_path / "raw"
    d.mkdir()
    for i in range(24):
        photo(d / f"img_{i}.png", 10 + i % 7, 12 + i % 5, seed=i)
    csvfile(d / "labels.csv", ["image", "label"], [[f"img_{i}.png", str(i)] for i in range(24)])
    return d


@pytest.fixture
def reference(raw, tmp_path) -> Path:
    """The family one process packs: what every split of the work must reproduce byte for byte."""
    out = tmp_path / "ref"
    out.mkdir()
    fg = FuelGenerator(str(raw), "labels.csv", ["int64"])
    fg.generate(str(out / "t.hdf5"), 8, 8, encode="PNG", shards=NSHARD, nworker=1, verbose=False)
    return out


def clean_env(**places: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_VARS}
    env.update(places)
    return env


def start(tmp_path, raw, dst, env, kill_at=0) -> subprocess.Popen:
    script = tmp_path / "child.py"
    if not script.exists():  # never rewritten: a child started just before may still be reading it
        script.write_text(CHILD)
    cmd = [sys.executable, str(script), str(raw), str(dst), str(kill_at)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen) -> int:
    try:
        _, err = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    assert proc.returncode in (0, -signal.SIGKILL), err
    return proc.returncode


def same_family(a: Path, b: Path) -> None:
    names = sorted(n for n in os.listdir(a) if n.startswith("t"))
    found = sorted(n for n in os.listdir(b) if n.startswith("t"))
    assert found == names, (found, names)
    assert len(names) == NSHARD + 1  # the shards and the manifest: no part records, no temp files
    _, mismatch, errors = filecmp.cmpfiles(a, b, names, shallow=False)
    assert (mismatch, errors) == ([], [])


def labels(path) -> list[int]:
    with Tank(str(path), SPEC, 4, shuffle=False, nworker=0, verbose=False) as tank:
        return sorted(int(x) for _ in range(tank.MPE) for x in tank.next()["label"])


def test_three_ranks_write_the_same_bytes_as_one_process(raw, reference, tmp_path):
    out = tmp_path / "out"
    procs = [start(tmp_path, raw, out / "t.hdf5", clean_env(RANK=str(r), WORLD_SIZE="3")) for r in range(3)]
    assert [finish(p) for p in procs] == [0, 0, 0]
    same_family(reference, out)
    assert labels(out / "t.hdf5") == list(range(24))


def test_a_rank_killed_mid_pack_is_resumed_by_a_rerun(raw, reference, tmp_path):
    out = tmp_path / "out"
    # rank 1 (shards 1, 4, 7, 10) dies as it is about to commit its second shard; the others finish
    places = [clean_env(RANK=str(r), WORLD_SIZE="3") for r in range(3)]
    procs = [
        start(tmp_path, raw, out / "t.hdf5", env, kill_at=2 if r == 1 else 0) for r, env in enumerate(places)
    ]
    assert [finish(p) for p in procs] == [0, -signal.SIGKILL, 0]
    names = os.listdir(out)
    assert "t_1.hdf5" in names and "t_4.hdf5" not in names and "t_7.hdf5" not in names
    assert "t.hdf5.manifest.json" not in names  # the family is incomplete: no manifest vouches for it
    with pytest.raises(ValueError, match=r"incomplete: 4 of its 12 shards"):
        info(str(out / "t.hdf5"))
    first = os.stat(out / "t_1.hdf5").st_ino
    # the same command again, every rank: rank 0 and 2 have nothing left to do, rank 1 packs its three shards
    procs = [start(tmp_path, raw, out / "t.hdf5", env) for env in places]
    assert [finish(p) for p in procs] == [0, 0, 0]
    assert os.stat(out / "t_1.hdf5").st_ino == first  # committed before the crash: kept, not packed again
    same_family(reference, out)


def test_the_manifest_is_written_by_the_process_that_commits_the_last_shard(raw, reference, tmp_path):
    out = tmp_path / "out"
    for rank in (2, 0):  # one after the other: two thirds of the family and no manifest
        assert finish(start(tmp_path, raw, out / "t.hdf5", clean_env(RANK=str(rank), WORLD_SIZE="3"))) == 0
        assert not (out / "t.hdf5.manifest.json").exists()
    assert len([n for n in os.listdir(out) if n.endswith(".part.json")]) == 8
    assert finish(start(tmp_path, raw, out / "t.hdf5", clean_env(SLURM_PROCID="1", SLURM_NTASKS="3"))) == 0
    same_family(reference, out)


def test_a_single_process_pack_resumes_after_a_kill(raw, reference, tmp_path):
    out = tmp_path / "out"
    assert finish(start(tmp_path, raw, out / "t.hdf5", clean_env(), kill_at=7)) == -signal.SIGKILL
    assert sorted(n for n in os.listdir(out) if n.endswith(".hdf5")) == [f"t_{i}.hdf5" for i in range(6)]
    assert finish(start(tmp_path, raw, out / "t.hdf5", clean_env())) == 0
    same_family(reference, out)


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torchrun needs torch")
def test_torchrun_with_three_processes(raw, reference, tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "3"]
    res = subprocess.run(
        [*cmd, str(script), str(raw), str(out / "t.hdf5"), "0"],
        env=clean_env(OMP_NUM_THREADS="1"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    same_family(reference, out)


def test_explicit_place_wins_over_the_environment_and_is_checked(raw, tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "3")
    fg = FuelGenerator(str(raw), "labels.csv", ["int64"])
    dst = str(tmp_path / "t.hdf5")
    written = fg.generate(dst, 8, 8, encode="PNG", shards=4, nworker=1, verbose=False, rank=1, nworld=2)
    assert [os.path.basename(p) for p in written] == ["t_1.hdf5", "t_3.hdf5"]
    written = fg.generate(dst, 8, 8, encode="PNG", shards=4, nworker=1, verbose=False)  # the env: rank 1 of 3
    assert [os.path.basename(p) for p in written] == ["t_1.hdf5"]
    with pytest.raises(TypeError, match="'rank' was given without 'nworld'"):
        fg.generate(dst, shards=4, rank=0)
    with pytest.raises(ValueError, match=r"'rank' must be an int in 0\.\.1"):
        fg.generate(dst, shards=4, rank=2, nworld=2)
    with pytest.raises(TypeError, match="'nworld'"):
        fg.generate(dst, shards=4, rank=0, nworld="2")
    with pytest.raises(ValueError, match=r"'shards' must be >= nworld \(3 packing processes\)"):
        fg.generate(str(tmp_path / "u.hdf5"), shards=2)
    monkeypatch.delenv("WORLD_SIZE")
    with pytest.raises(ValueError, match="RANK is set but WORLD_SIZE is not"):
        fg.generate(dst, shards=4)
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE must be an integer"):
        fg.generate(dst, shards=4)


def test_a_rerun_with_other_settings_names_the_setting(raw, tmp_path):
    fg = FuelGenerator(str(raw), "labels.csv", ["int64"])
    dst = str(tmp_path / "t.hdf5")
    fg.generate(dst, 8, 8, encode="PNG", shards=4, nworker=1, verbose=False, rank=0, nworld=2)
    with pytest.raises(FileExistsError, match=r"'t_0.hdf5' was packed with height=8, this pack has height=9"):
        fg.generate(dst, 9, 8, encode="PNG", shards=4, nworker=1, verbose=False, rank=0, nworld=2)
    with pytest.raises(FileExistsError, match=r"encode='PNG', this pack has encode='JPEG'"):
        fg.generate(dst, 8, 8, encode="JPEG", shards=4, nworker=1, verbose=False)
    # overwrite replaces: the family is then of the new settings, complete, and a rerun has nothing to do
    fg.generate(dst, 9, 8, encode="PNG", shards=4, nworker=1, verbose=False, overwrite=True)
    assert info(dst)["rows"] == 24
    assert len(fg.generate(dst, 9, 8, encode="PNG", shards=4, nworker=1, verbose=False)) == 4
    with pytest.raises(FileExistsError, match=r"already exists .*height=9, this pack has height=8"):
        fg.generate(dst, 8, 8, encode="PNG", shards=4, nworker=1, verbose=False)


def test_index_writes_the_manifest_from_the_shards(raw, reference, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    fg = FuelGenerator(str(raw), "labels.csv", ["int64"])
    dst = str(out / "t.hdf5")
    for rank in range(3):
        fg.generate(dst, 8, 8, encode="PNG", shards=NSHARD, nworker=1, verbose=False, rank=rank, nworld=3)
    # as if the last process died after its last shard: no manifest, and no part record of that shard
    os.unlink(out / "t.hdf5.manifest.json")
    index = [sys.executable, "-m", "nebulae.fuel", "index"]
    os.replace(out / "t_11.hdf5", tmp_path / "aside.hdf5")
    bad = subprocess.run([*index, dst], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "missing: t_11.hdf5" in bad.stderr, bad.stderr
    os.replace(tmp_path / "aside.hdf5", out / "t_11.hdf5")
    ok = subprocess.run([*index, dst], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == os.path.realpath(dst) + ".manifest.json"
    same_family(reference, out)


def test_cli_pack_takes_rank_and_nworld(raw, reference, tmp_path):
    out = tmp_path / "out"
    base = [sys.executable, "-m", "nebulae.fuel", "pack", "--file-dir", str(raw), "--file-list", "labels.csv"]
    base += ["--dtype", "int64", "--dst", str(out / "t.hdf5"), "--height", "8", "--width", "8"]
    base += ["--encode", "PNG", "--shards", str(NSHARD), "--nworker", "1", "--quiet"]
    for rank in range(2):
        res = subprocess.run(
            [*base, "--rank", str(rank), "--nworld", "2"],
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert res.returncode == 0, res.stderr
        assert len(res.stdout.split()) == NSHARD // 2
    same_family(reference, out)
    bad = subprocess.run([*base, "--rank", "0"], env=clean_env(), capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--rank was given without --nworld" in bad.stderr, bad.stderr


def test_ranks_may_spell_the_destination_differently(raw, reference, tmp_path, monkeypatch):
    # relative, `./`, absolute and through a symlinked directory: one family, found through the resolved name
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "out", target_is_directory=True)
    fg = FuelGenerator(str(raw), "labels.csv", ["int64"])
    spellings = ["out/t.hdf5", "./out/t.hdf5", str(tmp_path / "out" / "t.hdf5"), "link/t.hdf5"]
    for rank, dst in enumerate(spellings):
        written = fg.generate(
            dst, 8, 8, encode="PNG", shards=NSHARD, nworker=1, verbose=False, rank=rank, nworld=4
        )
        assert written == [dst.replace("t.hdf5", f"t_{i}.hdf5") for i in range(rank, NSHARD, 4)]
    same_family(reference, tmp_path / "out")


def test_a_pack_stopped_by_a_bad_image_resumes_once_it_is_fixed(raw, reference, tmp_path):
    good = (raw / "img_9.png").read_bytes()  # row 10: shard 4
    (raw / "img_9.png").write_bytes(b"not an image")
    fg = FuelGenerator(str(raw), "labels.csv", ["int64"])
    dst = tmp_path / "out" / "t.hdf5"
    with pytest.raises(ValueError, match=r"row 11 of labels\.csv"):
        fg.generate(str(dst), 8, 8, encode="PNG", shards=NSHARD, nworker=1, verbose=False)
    assert sorted(n for n in os.listdir(dst.parent) if n.endswith(".hdf5")) == [
        f"t_{i}.hdf5" for i in range(4)
    ]
    kept = os.stat(dst.parent / "t_0.hdf5").st_ino
    (raw / "img_9.png").write_bytes(good)
    fg.generate(str(dst), 8, 8, encode="PNG", shards=NSHARD, nworker=1, verbose=False)
    assert os.stat(dst.parent / "t_0.hdf5").st_ino == kept
    same_family(reference, dst.parent)


def test_a_committed_shard_whose_files_changed_is_packed_again(raw, reference, tmp_path):
    fg = FuelGenerator(str(raw), "labels.csv", ["int64"])
    dst = tmp_path / "out" / "t.hdf5"
    fg.generate(str(dst), 8, 8, encode="PNG", shards=NSHARD, nworker=1, verbose=False, rank=0, nworld=2)
    before = {i: os.stat(dst.parent / f"t_{i}.hdf5").st_ino for i in (0, 2)}
    os.utime(raw / "img_4.png", ns=(1, 1))  # row 5: shard 2, same pixels, another modification time
    fg.generate(str(dst), 8, 8, encode="PNG", shards=NSHARD, nworker=1, verbose=False)
    assert os.stat(dst.parent / "t_0.hdf5").st_ino == before[0]  # unchanged: kept
    assert os.stat(dst.parent / "t_2.hdf5").st_ino != before[2]  # its file changed: packed again
    same_family(reference, dst.parent)


def test_a_rank_that_resumes_as_another_finishes_leaves_no_part_records(
    raw, reference, tmp_path, monkeypatch
):
    import nebulae.fuel._files as files  # where generate() lists the destination

    fg = FuelGenerator(str(raw), "labels.csv", ["int64"])
    out = tmp_path / "out"
    for rank in range(3):
        fg.generate(
            str(out / "t.hdf5"),
            8,
            8,
            encode="PNG",
            shards=NSHARD,
            nworker=1,
            verbose=False,
            rank=rank,
            nworld=3,
        )
    # rank 0 of a rerun looked at the destination just before another rank wrote the manifest and removed the part
    # records: it finds its shards without records, and rebuilds them
    listed = files.family_files

    def before_the_manifest(path):
        family = listed(path)
        family.manifest = None
        return family

    monkeypatch.setattr(files, "family_files", before_the_manifest)
    fg.generate(
        str(out / "t.hdf5"), 8, 8, encode="PNG", shards=NSHARD, nworker=1, verbose=False, rank=0, nworld=3
    )
    same_family(reference, out)


def test_three_ranks_skipping_bad_files_match_one_process(raw, tmp_path):
    # a truncated file in shard 1 and a missing one in shard 7, both packed by rank 1 of 3 (shards 1, 4, 7, 10)
    (raw / "img_2.png").write_bytes((raw / "img_2.png").read_bytes()[:40])
    (raw / "img_15.png").unlink()
    fg = FuelGenerator(str(raw), "labels.csv", ["int64"])
    opts = {"encode": "PNG", "shards": NSHARD, "nworker": 1, "verbose": False, "on_error": "skip"}
    # one process all at once (overwrite=True places the whole family at the end) ...
    fg.generate(str(tmp_path / "one" / "t.hdf5"), 8, 8, overwrite=True, **opts)
    # ... and three ranks one after another, the last of which writes the manifest and the report
    for rank in (2, 0, 1):
        fg.generate(str(tmp_path / "three" / "t.hdf5"), 8, 8, rank=rank, nworld=3, **opts)
    one, three = tmp_path / "one", tmp_path / "three"
    names = sorted(os.listdir(one))
    assert sorted(os.listdir(three)) == names  # no part records or temp files left
    assert "t.hdf5.skipped.csv" in names and len(names) == NSHARD + 2
    _, differ, errors = filecmp.cmpfiles(one, three, names, shallow=False)
    assert (differ, errors) == ([], [])
    manifest = json.loads((three / "t.hdf5.manifest.json").read_text())
    assert manifest["skipped"] == 2 and manifest["rows"] == 22
    assert [s["skipped"] for s in manifest["shards"]] == [0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]
    report = (three / "t.hdf5.skipped.csv").read_text().splitlines()
    assert [line.split(",")[1] for line in report[1:]] == ["img_2.png", "img_15.png"]
    assert labels(three / "t.hdf5") == labels(one / "t.hdf5")


def test_a_resumed_pack_with_skipped_rows_keeps_their_report(raw, tmp_path):
    (raw / "img_5.png").write_bytes(b"")
    fg = FuelGenerator(str(raw), "labels.csv", ["int64"])
    opts = {"encode": "PNG", "shards": NSHARD, "nworker": 1, "verbose": False, "on_error": "skip"}
    dst = tmp_path / "out" / "t.hdf5"
    fg.generate(str(dst), 8, 8, rank=0, nworld=2, **opts)  # shard 2 (rows 4, 5) committed with its record
    assert not (tmp_path / "out" / "t.hdf5.skipped.csv").exists()  # the family is not finished yet
    fg.generate(str(dst), 8, 8, **opts)  # one process resumes: packs only rank 1's shards, then finishes
    report = (tmp_path / "out" / "t.hdf5.skipped.csv").read_text().splitlines()
    assert len(report) == 2 and report[1].startswith("7,img_5.png,empty,")
    assert json.loads((tmp_path / "out" / "t.hdf5.manifest.json").read_text())["skipped"] == 1
