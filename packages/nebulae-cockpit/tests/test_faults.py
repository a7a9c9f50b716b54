"""TimeMachine fault suite: a child SIGKILLs itself at an exact point of ``drop``; check what is on disk.

Each child drops ``before`` checkpoints normally (weights filled with 1, 2, ...), then starts one more
drop (weights ``before + 1``) and kills itself at the chosen point. The test then loads what a user
would find and runs the next drop.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

from nebulae.cockpit import TimeMachine

_CHILD = textwrap.dedent(
    """
    import os, signal, sys, torch
    from torch import nn
    from nebulae.cockpit import TimeMachine

    save_path, point, before = sys.argv[1], sys.argv[2], int(sys.argv[3])
    net = nn.Linear(16, 16)
    net.scope = "lin"
    tm = TimeMachine(save_path=save_path, max_anchors=3, verbose=False)

    def fill(value):
        with torch.no_grad():
            for p in net.parameters():
                p.fill_(value)

    for value in range(1, before + 1):
        fill(value)
        tm.drop(net)
    fill(before + 1)

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    real_replace, real_save = os.replace, torch.save
    renamed = []

    def replace_then_die(*args, **kwargs):
        real_replace(*args, **kwargs)
        die()

    def replace_and_note(*args, **kwargs):
        real_replace(*args, **kwargs)
        renamed.append(True)

    def half_save(obj, handle, *args, **kwargs):
        handle.write(b"PK\\x03\\x04 only the start of a checkpoint")
        handle.flush()
        die()

    def remove_or_die(path, *args, **kwargs):
        if renamed:
            die()  # the first removal after the rename is the rotation
        real_remove(path, *args, **kwargs)

    real_remove = os.remove
    if point == "during_write":
        torch.save = half_save
    elif point == "before_rename":
        os.replace = die
    elif point == "after_rename":
        os.replace = replace_then_die
    elif point == "during_rotation":
        os.replace = replace_and_note
        os.remove = os.unlink = remove_or_die
    tm.drop(net)
    sys.exit("the drop finished: the kill point was never reached")
    """
)


def _crash(tmp_path, save_path: str, point: str, before: int) -> None:
    script = tmp_path / "drop_and_die.py"
    script.write_text(_CHILD)
    done = subprocess.run(
        [sys.executable, str(script), save_path, point, str(before)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr


def _net(value: float | None = None) -> nn.Linear:
    net = nn.Linear(16, 16)
    net.scope = "lin"
    if value is not None:
        with torch.no_grad():
            for p in net.parameters():
                p.fill_(value)
    return net


def _value(net: nn.Linear) -> float:
    values = torch.cat([p.detach().flatten() for p in net.parameters()]).unique()
    assert len(values) == 1
    return float(values[0])


def _names(directory) -> tuple[list[str], list[str]]:
    names = sorted(os.listdir(directory))
    return [n for n in names if n.endswith(".pth")], [n for n in names if ".tmp-" in n]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("point", "new_state_visible"),
    [("during_write", False), ("before_rename", False), ("after_rename", True), ("during_rotation", True)],
)
def test_a_drop_killed_at_any_point_leaves_old_or_new_state_and_the_next_drop_cleans_up(
    tmp_path, point, new_state_visible
):
    ckpt = tmp_path / "ckpt"
    _crash(tmp_path, str(ckpt), point, before=3)
    pth, temps = _names(ckpt)
    for name in pth:  # never a truncated checkpoint under a .pth name
        assert set(torch.load(ckpt / name, weights_only=True)) == {"weight", "bias"}
    if new_state_visible:
        assert temps == [] and "lin-4.pth" in pth
    else:
        assert len(temps) == 1 and pth == ["lin-1.pth", "lin-2.pth", "lin-3.pth"]
    restored = _net()
    TimeMachine(ckpt_path=ckpt, verbose=False).to(restored, frozen=True)
    assert _value(restored) == (4.0 if new_state_visible else 3.0)

    path = TimeMachine(save_path=ckpt, max_anchors=3, verbose=False).drop(_net(9.0))
    pth, temps = _names(ckpt)
    newest = 5 if new_state_visible else 4  # numbering goes on after the files that made it to disk
    assert temps == []
    assert path == os.path.join(ckpt, f"lin-{newest}.pth")
    assert pth == [f"lin-{k}.pth" for k in range(newest - 2, newest + 1)]


@pytest.mark.slow
def test_eight_crashed_runs_end_with_exactly_max_anchors_checkpoints_and_no_temps(tmp_path):
    ckpt = tmp_path / "ckpt"
    points = ["before_rename", "during_write", "after_rename", "during_rotation"]
    for run in range(8):
        _crash(tmp_path, str(ckpt), points[run % 4], before=2)
        assert len(_names(ckpt)[0]) <= 4  # a crash before rotation may leave one extra, no more
    last = TimeMachine(save_path=ckpt, max_anchors=3, verbose=False).drop(_net(9.0))
    pth, temps = _names(ckpt)
    assert temps == []
    assert len(pth) == 3 and os.path.basename(last) in pth
    restored = _net()
    assert TimeMachine(ckpt_path=ckpt, verbose=False).to(restored) == last
    assert _value(restored) == 9.0
