"""TimeMachine: atomic drops, scoped and strict/lenient loading, rotation, numbering, meta, safety."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from nebulae.cockpit import CockpitWarning, TimeMachine
from nebulae.cockpit._model_state import in_scope as _in_scope
from nebulae.cockpit._model_state import scope_prefix as _scope_prefix


class Net(nn.Module):
    def __init__(self, scope: str = "cnn", width: int = 4) -> None:
        super().__init__()
        self.scope = scope
        self.backbone = nn.Sequential(nn.Linear(3, width), nn.ReLU(), nn.Linear(width, width))
        self.fc = nn.Linear(width, 2)
        self.fc2 = nn.Linear(width, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.backbone(x))


def _same(a: nn.Module, b: nn.Module, prefix: str = "") -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return all(torch.equal(sa[k], sb[k]) for k in sa if k.startswith(prefix))


def test_drop_then_to_restores_every_parameter(tmp_path):
    tm = TimeMachine(ckpt_path=tmp_path, save_path=tmp_path, verbose=False)
    src, dst = Net(), Net()
    path = tm.drop(src)
    assert path == os.path.join(tmp_path, "cnn-1.pth")
    assert not _same(src, dst)
    assert tm.to(dst, "cnn-1.pth") == os.path.join(tmp_path, "cnn-1.pth")
    assert _same(src, dst)


def test_flat_file_holds_only_tensors(tmp_path):
    tm = TimeMachine(save_path=tmp_path, verbose=False)
    path = tm.drop(Net())
    state = torch.load(path, weights_only=True)
    assert set(state) == set(Net().state_dict())


def test_prints_anchor_and_back_messages(tmp_path, capsys):
    tm = TimeMachine(ckpt_path=tmp_path, save_path=tmp_path)
    path = tm.drop(Net())
    tm.to(Net())
    out = capsys.readouterr().out
    assert f"Anchor is dropped at {path}" in out
    assert f"Back to {path}" in out


def test_numbering_continues_across_instances(tmp_path):
    TimeMachine(save_path=tmp_path, verbose=False).drop(Net())
    TimeMachine(save_path=tmp_path, verbose=False).drop(Net())
    tm = TimeMachine(save_path=tmp_path, verbose=False)
    assert tm.drop(Net()).endswith("cnn-3.pth")
    assert tm.drop(Net()).endswith("cnn-4.pth")
    assert sorted(os.listdir(tmp_path)) == ["cnn-1.pth", "cnn-2.pth", "cnn-3.pth", "cnn-4.pth"]


def test_file_ending_in_pth_is_written_exactly_and_subdirectory_otherwise(tmp_path):
    tm = TimeMachine(save_path=tmp_path, verbose=False)
    assert tm.drop(Net(), "best.pth") == os.path.join(tmp_path, "best.pth")
    assert tm.drop(Net(), "runs/a") == os.path.join(tmp_path, "runs/a", "cnn-1.pth")


def test_rotation_keeps_the_newest_max_anchors_of_that_scope_on_disk(tmp_path):
    (tmp_path / "cnn-1.pth").write_bytes(b"older run")
    (tmp_path / "other-1.pth").write_bytes(b"another craft")
    (tmp_path / "cnn-best.pth").write_bytes(b"a name the user chose")
    tm = TimeMachine(save_path=tmp_path, max_anchors=2, verbose=False)
    paths = [tm.drop(Net()) for _ in range(4)]
    assert sorted(os.listdir(tmp_path)) == ["cnn-4.pth", "cnn-5.pth", "cnn-best.pth", "other-1.pth"]
    assert [os.path.basename(p) for p in paths] == ["cnn-2.pth", "cnn-3.pth", "cnn-4.pth", "cnn-5.pth"]


def test_named_files_rotate_among_themselves_and_numbered_ones_apart(tmp_path):
    tm = TimeMachine(save_path=tmp_path, max_anchors=2, verbose=False)
    for name in ("a.pth", "b.pth", "c.pth"):
        tm.drop(Net(), name)
    tm.drop(Net())
    assert sorted(os.listdir(tmp_path)) == ["b.pth", "c.pth", "cnn-1.pth"]


@pytest.mark.parametrize("spelling", ["best.pth", "./best.pth", "sub/../best.pth", "link/best.pth"])
def test_a_named_file_written_again_under_another_spelling_is_kept(tmp_path, monkeypatch, spelling):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ckpt" / "sub").mkdir(parents=True)
    os.symlink(".", tmp_path / "ckpt" / "link")
    tm = TimeMachine(save_path="ckpt", max_anchors=1, verbose=False)
    tm.drop(Net(), "best.pth")
    net = Net()
    assert tm.drop(net, spelling) == os.path.join("ckpt", spelling)
    assert "best.pth" in os.listdir(tmp_path / "ckpt")  # the file just written is never rotated away
    tm2 = TimeMachine(ckpt_path="ckpt", verbose=False)
    tm2.to(loaded := Net(), "best.pth")
    assert _same(net, loaded)


def _save_path(tmp_path, spelling: str) -> str:
    real = tmp_path / "ckpt"
    real.mkdir()
    if spelling == "symlink":
        os.symlink(real, tmp_path / "link")
        return str(tmp_path / "link")
    return {"relative": "ckpt", "dot": "./ckpt", "absolute": str(real)}[spelling]


@pytest.mark.parametrize("spelling", ["relative", "dot", "absolute", "symlink"])
def test_drop_removes_dead_writers_temps_and_rotates_what_is_on_disk(tmp_path, monkeypatch, spelling):
    monkeypatch.chdir(tmp_path)
    save_path = _save_path(tmp_path, spelling)
    real = tmp_path / "ckpt"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait(timeout=30)
    for _ in range(4):
        TimeMachine(save_path=save_path, verbose=False).drop(Net())
    orphan = real / f"cnn-5.pth.tmp-{dead.pid}"
    live = real / f"cnn-6.pth.tmp-{os.getppid()}"  # a writer still running
    others = [real / "other-1.pth", real / f"other-1.pth.tmp-{dead.pid}", real / f"best.pth.tmp-{dead.pid}"]
    for path in (orphan, live, *others):
        path.write_bytes(b"partial")
    path = TimeMachine(save_path=save_path, max_anchors=3, verbose=False).drop(Net())
    assert path == os.path.join(save_path, "cnn-5.pth")
    left = sorted(os.listdir(real))
    assert left == sorted(["cnn-3.pth", "cnn-4.pth", "cnn-5.pth", live.name] + [p.name for p in others])
    TimeMachine(save_path=save_path, verbose=False).drop(Net(), "best.pth")  # a named drop cleans its own
    assert not (real / f"best.pth.tmp-{dead.pid}").exists()
    assert (real / f"other-1.pth.tmp-{dead.pid}").exists()  # another scope's files are never touched


def test_rotation_ignores_a_file_already_removed(tmp_path):
    tm = TimeMachine(save_path=tmp_path, max_anchors=1, verbose=False)
    first = tm.drop(Net())
    os.remove(first)
    second = tm.drop(Net())
    assert os.listdir(tmp_path) == [os.path.basename(second)]


@pytest.mark.parametrize("bad", [0, -2])
def test_max_anchors_zero_or_below_minus_one_is_rejected(tmp_path, bad):
    with pytest.raises(ValueError, match="max_anchors"):
        TimeMachine(save_path=tmp_path, max_anchors=bad)


def test_aliases_work_and_conflicts_are_type_errors(tmp_path):
    tm = TimeMachine(ckpt_dir=tmp_path / "a", save_dir=tmp_path / "b", verbose=False)
    assert (tm.ckpt_path, tm.save_path) == (str(tmp_path / "a"), str(tmp_path / "b"))
    assert (tmp_path / "a").is_dir() and (tmp_path / "b").is_dir()
    with pytest.raises(TypeError, match="ckpt_dir"):
        TimeMachine(ckpt_path=tmp_path, ckpt_dir=tmp_path)


def test_save_scope_is_boundary_safe(tmp_path):
    tm = TimeMachine(save_path=tmp_path, verbose=False)
    state = torch.load(tm.drop(Net(), save_scope="fc"), weights_only=True)
    assert sorted(state) == ["fc.bias", "fc.weight"]
    nested = torch.load(tm.drop(Net(), save_scope="backbone/0"), weights_only=True)
    assert sorted(nested) == ["backbone.0.bias", "backbone.0.weight"]


def test_save_scope_matching_nothing_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="'nope'"):
        TimeMachine(save_path=tmp_path, verbose=False).drop(Net(), save_scope="nope")


def test_ckpt_scope_loads_only_that_part(tmp_path):
    tm = TimeMachine(ckpt_path=tmp_path, save_path=tmp_path, verbose=False)
    src, dst = Net(), Net()
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    tm.to(dst, tm.drop(src), ckpt_scope="fc")
    after = dst.state_dict()
    assert _same(src, dst, "fc.")
    assert torch.equal(after["fc2.weight"], before["fc2.weight"])
    assert torch.equal(after["backbone.0.weight"], before["backbone.0.weight"])


def test_frozen_rejects_missing_and_unexpected_keys(tmp_path):
    tm = TimeMachine(ckpt_path=tmp_path, save_path=tmp_path, verbose=False)
    tm.drop(Net(), "part.pth", save_scope="fc")
    with pytest.raises(RuntimeError, match=r"missing: .*backbone\.0\.weight"):
        tm.to(Net(), "part.pth", frozen=True)
    # Within the scope the file is complete, so strict loading of that scope succeeds.
    assert tm.to(Net(), "part.pth", ckpt_scope="fc", frozen=True).endswith("part.pth")


def test_frozen_rejects_shape_mismatch(tmp_path):
    tm = TimeMachine(ckpt_path=tmp_path, save_path=tmp_path, verbose=False)
    tm.drop(Net(width=4), "w4.pth")
    with pytest.raises(RuntimeError, match="shape mismatch"):
        tm.to(Net(width=5), "w4.pth", frozen=True)


def test_lenient_loading_skips_and_reports_shape_mismatches(tmp_path):
    tm = TimeMachine(ckpt_path=tmp_path, save_path=tmp_path, verbose=False)
    src = Net(width=4)
    tm.drop(src, "w4.pth")
    dst = Net(width=5)
    dst.backbone[0] = nn.Linear(3, 4)  # matches the file again
    with pytest.warns(CockpitWarning, match=r"backbone\.2\.weight \(file \(4, 4\), model \(5, 5\)\)"):
        tm.to(dst, "w4.pth")
    assert torch.equal(dst.backbone[0].weight, src.backbone[0].weight)


def test_optimizer_and_meta_round_trip(tmp_path):
    tm = TimeMachine(ckpt_path=tmp_path, save_path=tmp_path, verbose=False)
    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    net(torch.randn(5, 3)).sum().backward()
    opt.step()
    tm.drop(net, optz=opt, meta={"epoch": 7, "best": [0.5, "x"]})

    net2 = Net()
    opt2 = torch.optim.Adam(net2.parameters(), lr=0.5)
    tm.to(net2, optz=opt2)
    assert tm.meta == {"epoch": 7, "best": [0.5, "x"]}
    assert opt2.param_groups[0]["lr"] == 0.01
    assert torch.equal(opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    assert _same(net, net2)


def test_restored_optimizer_state_does_not_keep_the_file_mapped(tmp_path):
    tm = TimeMachine(ckpt_path=tmp_path, save_path=tmp_path, verbose=False)
    net = Net()
    opt = torch.optim.Adam(net.parameters())
    net(torch.randn(2, 3)).sum().backward()
    opt.step()
    path = tm.drop(net, optz=opt)
    opt2 = torch.optim.Adam(net.parameters())
    tm.to(net, optz=opt2)
    os.remove(path)
    maps = Path("/proc/self/maps")
    assert path not in (maps.read_text() if maps.exists() else "")
    assert opt2.state_dict()["state"][0]["exp_avg"].sum() == opt.state_dict()["state"][0]["exp_avg"].sum()


def test_named_optimizers_and_reserved_names(tmp_path):
    tm = TimeMachine(ckpt_path=tmp_path, save_path=tmp_path, verbose=False)
    net = Net()
    g, d = torch.optim.SGD(net.fc.parameters(), lr=0.1), torch.optim.SGD(net.fc2.parameters(), lr=0.2)
    tm.drop(net, "gan.pth", optz={"g": g, "d": d})
    g2, d2 = torch.optim.SGD(net.fc.parameters(), lr=1.0), torch.optim.SGD(net.fc2.parameters(), lr=1.0)
    tm.to(net, "gan.pth", optz={"g": g2, "d": d2})
    assert (g2.param_groups[0]["lr"], d2.param_groups[0]["lr"]) == (0.1, 0.2)
    assert tm.meta == {}
    with pytest.raises(KeyError, match="'e'"):
        tm.to(net, "gan.pth", optz={"e": g2})
    with pytest.raises(ValueError, match="reserved"):
        tm.drop(net, optz={"meta": g})


def test_duck_typed_optimizer_craft_round_trips(tmp_path):
    class OptimizerCraft:
        def __init__(self, step: int) -> None:
            self.step, self.inner = step, torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)

        def state_dict(self):
            return {"step": self.step, "optimizer": self.inner.state_dict(), "warmup": {"left": 3}}

        def load_state_dict(self, state):
            self.step = state["step"]
            self.inner.load_state_dict(state["optimizer"])

    tm = TimeMachine(ckpt_path=tmp_path, save_path=tmp_path, verbose=False)
    tm.drop(Net(), optz=OptimizerCraft(step=41))
    restored = OptimizerCraft(step=0)
    tm.to(Net(), optz=restored)
    assert restored.step == 41


def test_legacy_non_zip_checkpoints_still_load(tmp_path):
    src, dst = Net(), Net()
    torch.save(src.state_dict(), tmp_path / "old.pth", _use_new_zipfile_serialization=False)
    TimeMachine(ckpt_path=tmp_path, verbose=False).to(dst, "old.pth")
    assert _same(src, dst)


def test_wrapped_form_without_optz_still_loads_the_net(tmp_path):
    tm = TimeMachine(ckpt_path=tmp_path, save_path=tmp_path, verbose=False)
    src, dst = Net(), Net()
    tm.drop(src, meta={"epoch": 1})
    tm.to(dst)
    assert _same(src, dst)
    assert tm.meta == {"epoch": 1}


def test_meta_must_be_json(tmp_path):
    with pytest.raises(TypeError, match="'meta'"):
        TimeMachine(save_path=tmp_path, verbose=False).drop(Net(), meta={"t": torch.zeros(1)})


@pytest.mark.filterwarnings("ignore:.*torch.jit:DeprecationWarning")  # raised inside torch.compile's import
def test_wrappers_are_unwrapped_on_drop_and_to(tmp_path):
    tm = TimeMachine(ckpt_path=tmp_path, save_path=tmp_path, verbose=False)
    src = Net()
    state = torch.load(tm.drop(nn.DataParallel(src)), weights_only=True)
    assert "fc.weight" in state and not any(k.startswith("module.") for k in state)
    compiled = torch.compile(Net())
    tm.to(compiled)
    assert _same(src, compiled._orig_mod)


def test_directory_prefers_own_newest_and_skips_corrupt(tmp_path):
    tm = TimeMachine(ckpt_path=tmp_path, save_path=tmp_path, verbose=False)
    good = Net()
    tm.drop(good)  # cnn-1
    tm.drop(Net())  # cnn-2, then truncated below
    with open(tmp_path / "cnn-2.pth", "r+b") as f:
        f.truncate(100)
    TimeMachine(save_path=tmp_path, verbose=False).drop(Net(scope="other"))  # newer, another craft
    dst = Net()
    with pytest.warns(CockpitWarning, match="cnn-2.pth"):
        path = tm.to(dst)
    assert path == os.path.join(tmp_path, "cnn-1.pth")
    assert _same(good, dst)


def test_directory_with_nothing_loadable_is_file_not_found(tmp_path):
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    tm = TimeMachine(ckpt_path=tmp_path, verbose=False)
    with pytest.warns(CockpitWarning), pytest.raises(FileNotFoundError, match=r"junk\.pth"):
        tm.to(Net())
    with pytest.raises(FileNotFoundError, match=r"missing\.pth"):
        tm.to(Net(), "missing.pth")


def test_missing_paths_are_value_errors(tmp_path):
    with pytest.raises(ValueError, match="save_path"):
        TimeMachine(ckpt_path=tmp_path).drop(Net())
    with pytest.raises(ValueError, match="ckpt_path"):
        TimeMachine(save_path=tmp_path).to(Net())


def test_rank_above_zero_drops_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("NEB_RANK", "1")
    assert TimeMachine(save_path=tmp_path, verbose=False).drop(Net()) is None
    assert os.listdir(tmp_path) == []


class _Payload:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_malicious_pickle_does_not_run(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "ckpt" / "cnn-9.pth"
    evil.parent.mkdir()
    torch.save({"fc.weight": _Payload(str(marker))}, evil)
    assert not marker.exists()
    tm = TimeMachine(ckpt_path=tmp_path / "ckpt", verbose=False)
    with pytest.raises(pickle.UnpicklingError):
        tm.to(Net(), "cnn-9.pth")
    with pytest.warns(CockpitWarning, match="cnn-9.pth"), pytest.raises(FileNotFoundError):
        tm.to(Net())
    good, restored = Net(), Net()
    torch.save(good.state_dict(), evil.parent / "cnn-1.pth")
    with pytest.warns(CockpitWarning, match="cnn-9.pth"):  # the planted newest file is skipped, not run
        assert tm.to(restored) == os.path.join(evil.parent, "cnn-1.pth")
    assert _same(good, restored)
    assert not marker.exists()


def _kill_after(script, ckpt, line: str, pause: float) -> None:
    """Run ``script ckpt``, wait for it to print ``line``, then SIGKILL it (after ``pause`` seconds)."""
    proc = subprocess.Popen([sys.executable, str(script), str(ckpt)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == line
        time.sleep(pause)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


_KILLED_WRITER = textwrap.dedent(
    """
    import os, sys, time, torch
    from torch import nn
    from nebulae.cockpit import TimeMachine

    net = nn.Sequential(nn.Linear(256, 1024), nn.Linear(1024, 256))
    net.scope = "big"
    tm = TimeMachine(save_path=sys.argv[1], verbose=False)
    tm.drop(net)
    real_fsync = os.fsync

    def stall(fd):
        print("writing", flush=True)
        time.sleep(60)  # killed here: the new file is written but not yet synced or renamed
        real_fsync(fd)

    os.fsync = stall
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    tm.drop(net)
    """
)


def test_sigkill_during_drop_leaves_previous_checkpoint_loadable(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(_KILLED_WRITER)
    ckpt = tmp_path / "ckpt"
    _kill_after(script, ckpt, "writing", pause=0.0)
    names = sorted(os.listdir(ckpt))
    assert names[0] == "big-1.pth" and all(n == "big-1.pth" or ".tmp-" in n for n in names)
    net = nn.Sequential(nn.Linear(256, 1024), nn.Linear(1024, 256))
    net.scope = "big"
    tm = TimeMachine(ckpt_path=ckpt, verbose=False)
    assert tm.to(net, frozen=True) == os.path.join(ckpt, "big-1.pth")
    # The next run numbers on after the surviving checkpoint.
    assert TimeMachine(save_path=ckpt, verbose=False).drop(net).endswith("big-2.pth")


def test_sigkill_at_random_moments_never_leaves_a_bad_pth(tmp_path):
    script = tmp_path / "loop.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys, torch
            from torch import nn
            from nebulae.cockpit import TimeMachine
            net = nn.Linear(512, 512); net.scope = "loop"
            tm = TimeMachine(save_path=sys.argv[1], max_anchors=2, verbose=False)
            tm.drop(net)
            print("first", flush=True)
            while True:
                tm.drop(net)
            """
        )
    )
    ckpt = tmp_path / "ckpt"
    _kill_after(script, ckpt, "first", pause=0.5)  # a few drops in, killed wherever it is
    pth = [n for n in os.listdir(ckpt) if n.endswith(".pth")]
    assert pth
    for name in pth:
        assert set(torch.load(ckpt / name, weights_only=True)) == {"weight", "bias"}


_names = st.sampled_from(["fc", "fc2", "f", "c", "backbone", "0", "1", "10", "weight", "bias"])


@given(key=st.lists(_names, min_size=1, max_size=4), scope=st.lists(_names, min_size=1, max_size=3))
def test_scopes_match_whole_attribute_names_only(key, scope):
    dotted = ".".join(key)
    expected = key[: len(scope)] == scope
    assert _in_scope(dotted, _scope_prefix("/".join(scope), "save_scope")) == expected
    assert _in_scope(dotted, _scope_prefix("/" + "/".join(scope) + "/", "save_scope")) == expected
