"""Packing at scale: three processes placed by RANK/WORLD_SIZE against one process with as many workers, and
resuming a pack that was killed half way. Called by bench_fuel.py (`--only scale`).

Every pack runs as a fresh `python` process, as a launcher would start it; times include its start-up (about
1-2 s here: imports, the CSV, the fork server), so the file list names each photo three times, for a pack long
enough that this fixed cost does not decide the ratios.
"""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import sys
import textwrap
import time

NSHARD = 12
REPEAT = 3
LAUNCH_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "NEB_RANK", "SLURM_PROCID", "SLURM_NTASKS")

# packs photo_dir/labels.csv at 224x224 JPEG into dst as 12 shards in the place its environment gives; with
# kill_at > 0 it SIGKILLs itself as it is about to commit its kill_at-th shard
CHILD = textwrap.dedent(
    """
    import os, re, signal, sys
    from nebulae.fuel import FuelGenerator

    photo_dir, dst, nworker, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    real, calls = os.replace, []

    def replace(src, final, *args, **kwargs):
        if re.fullmatch(r"s_\\d+\\.hdf5", os.path.basename(os.fspath(final))):
            calls.append(final)
            if len(calls) == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
        return real(src, final, *args, **kwargs)

    os.replace = replace
    fg = FuelGenerator(photo_dir, "scale.csv", ["int64"])
    fg.generate(dst, 224, 224, shards=12, nworker=nworker, verbose=False)
    """
)


def _env(**places: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_VARS}
    env.update(places)
    return env


def _fresh(directory: str) -> str:
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory)
    return os.path.join(directory, "s.hdf5")


def _pack(script: str, photo_dir: str, dst: str, nworker: int, nworld: int, kill_at: int = 0) -> float:
    """Seconds until all `nworld` processes (ranks 0..nworld-1; one process: no place) have ended."""
    start = time.perf_counter()
    procs = []
    for rank in range(nworld):
        env = _env(RANK=str(rank), WORLD_SIZE=str(nworld)) if nworld > 1 else _env()
        cmd = [sys.executable, script, photo_dir, dst, str(nworker), str(kill_at)]
        procs.append(subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True))
    for proc in procs:
        _, err = proc.communicate()
        want = -signal.SIGKILL if kill_at else 0
        if proc.returncode != want:
            raise SystemExit(f"packing process ended with {proc.returncode} (expected {want}): {err[-2000:]}")
    return time.perf_counter() - start


def bench_pack_scale(photo_dir: str, out_dir: str, n: int, rounds: int, cores: int) -> dict[str, object]:
    """Print and return the throughput of 3 ranks vs 1 process, and resume vs full pack times."""
    n *= REPEAT
    print(
        f"== 5. Packing at scale ({n} rows: the photos {REPEAT} times; 224x224 JPEG, 12 shards; each pack a fresh "
        "python process)",
        flush=True,
    )
    work = os.path.join(out_dir, "scale")
    os.makedirs(work, exist_ok=True)
    with open(os.path.join(photo_dir, "labels.csv")) as fh:
        header, *rows = fh.read().splitlines()
    with open(os.path.join(photo_dir, "scale.csv"), "w") as fh:
        fh.write("\n".join([header, *(rows * REPEAT)]) + "\n")
    script = os.path.join(work, "child.py")
    with open(script, "w") as fh:
        fh.write(CHILD)
    per_rank = max(1, cores // 3)
    total = 3 * per_rank  # the same number of encoding processes either way
    one_runs, three_runs = [], []
    # in turns, compared by medians: this machine's speed drifts over seconds
    for _ in range(rounds):
        one_runs.append(n / _pack(script, photo_dir, _fresh(os.path.join(work, "one")), total, 1))
        three_runs.append(n / _pack(script, photo_dir, _fresh(os.path.join(work, "three")), per_rank, 3))
    one, three = statistics.median(one_runs), statistics.median(three_runs)
    print(
        f"  1 process  : {one:8.1f} img/s  (nworker={total}; median of {rounds}: "
        f"{', '.join(f'{r:.0f}' for r in one_runs)})",
        flush=True,
    )
    print(
        f"  3 ranks    : {three:8.1f} img/s  (RANK=0..2, WORLD_SIZE=3, nworker={per_rank} each; median of {rounds}: "
        f"{', '.join(f'{r:.0f}' for r in three_runs)})",
        flush=True,
    )
    print(f"  ratio      : {three / one:.2f} x one process (target >= 0.9)", flush=True)
    full_runs, resume_runs = [], []
    for _ in range(rounds):
        full_runs.append(_pack(script, photo_dir, _fresh(os.path.join(work, "full")), total, 1))
        dst = _fresh(os.path.join(work, "resume"))
        _pack(script, photo_dir, dst, total, 1, kill_at=NSHARD // 2 + 1)  # 6 of 12 shards committed
        resume_runs.append(_pack(script, photo_dir, dst, total, 1))
        if not os.path.isfile(dst + ".manifest.json"):
            raise SystemExit("the resumed pack did not complete its family")
    full, resumed = statistics.median(full_runs), statistics.median(resume_runs)
    print(
        f"  full pack  : {full:8.2f} s  (1 process, nworker={total}; median of {rounds}: "
        f"{', '.join(f'{r:.2f}' for r in full_runs)})",
        flush=True,
    )
    print(
        f"  resume     : {resumed:8.2f} s  (the same command after a SIGKILL with 6 of 12 shards committed; median of "
        f"{rounds}: {', '.join(f'{r:.2f}' for r in resume_runs)})",
        flush=True,
    )
    print(f"  ratio      : {resumed / full:.2f} x a full pack (target <= 0.6)", flush=True)
    shutil.rmtree(work, ignore_errors=True)
    return {
        "one_process": one,
        "three_ranks": three,
        "one_runs": one_runs,
        "three_runs": three_runs,
        "full_s": full,
        "resume_s": resumed,
        "full_runs": full_runs,
        "resume_runs": resume_runs,
    }
