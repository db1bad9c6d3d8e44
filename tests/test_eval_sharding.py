"""maskvit.sharding's array transport for sharded evaluation: named numpy arrays of any
numeric dtype reach rank 0 bit for bit (no pickle), and merge back into job order."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from maskvit.sharding import Shard, gather_arrays, merge_arrays_round_robin, run_local_workers


def rank_arrays(rank: int) -> dict[str, np.ndarray]:
    """Rank-specific arrays of several dtypes and shapes; rank 1 holds one row fewer and
    no "shown" rows at all (as a rank whose videos are not shown in a report)."""
    rows = 3 - rank
    rng = np.random.default_rng(rank)
    arrays = {"scores": rng.normal(size=(rows, 2, 4)),
              "frames": rng.integers(0, 256, (rows, 5, 5, 3), dtype=np.uint8),
              "events": rng.integers(-9, 9, rows).astype(np.int64)}
    arrays["scores"][0, 0, 0] = np.nan  # NaNs (no object in a frame) travel too
    if rank == 0:
        arrays["shown"] = np.ones((1, 3), np.float32)  # job 0 alone is shown
    return arrays


def _gather_job(shard: Shard, out: str) -> None:
    parts = gather_arrays(rank_arrays(shard.rank), shard)
    if shard.is_main:
        merged = merge_arrays_round_robin(parts)
        np.savez(Path(out) / "merged.npz", **merged)
        for rank, part in enumerate(parts):
            np.savez(Path(out) / f"rank{rank}.npz", **part)
    else:
        assert parts is None


def test_two_workers_send_their_arrays_to_rank_0_bit_for_bit(tmp_path):
    run_local_workers(_gather_job, 2, str(tmp_path))
    for rank in range(2):
        with np.load(tmp_path / f"rank{rank}.npz") as received:
            expected = rank_arrays(rank)
            assert sorted(received.files) == sorted(expected)
            for name, array in expected.items():
                assert received[name].dtype == array.dtype
                np.testing.assert_array_equal(received[name], array)  # NaN equals NaN here
    with np.load(tmp_path / "merged.npz") as merged:
        zero, one = rank_arrays(0), rank_arrays(1)
        np.testing.assert_array_equal(merged["events"], [zero["events"][0], one["events"][0],
                                                         zero["events"][1], one["events"][1],
                                                         zero["events"][2]])
        np.testing.assert_array_equal(merged["shown"], zero["shown"])


def test_one_process_gathers_its_own_arrays():
    arrays = rank_arrays(0)
    (part,) = gather_arrays(arrays, Shard())
    assert part.keys() == arrays.keys()
    assert merge_arrays_round_robin([part])["frames"].tobytes() == arrays["frames"].tobytes()


def test_merge_puts_rows_back_in_job_order_and_keeps_empty_arrays_shaped():
    jobs = np.arange(7 * 2).reshape(7, 2)
    parts = [{"x": jobs[rank::3], "none": np.zeros((0, 4))} for rank in range(3)]
    merged = merge_arrays_round_robin(parts)
    np.testing.assert_array_equal(merged["x"], jobs)
    assert merged["none"].shape == (0, 4)


def _wait_forever(shard: Shard, folder: str) -> None:
    """A worker that announces itself (its pid in a file, a line in the "started" pipe)
    and never finishes."""
    import os
    import threading

    Path(folder, f"rank{shard.rank}.pid").write_text(str(os.getpid()))
    with open(Path(folder, "started"), "w") as started:
        started.write(f"{shard.rank}\n")
    threading.Event().wait()


# SIGTERM to the parent alone (a scheduler stopping the job): the CLI turns it into
# Terminated; the workers must stop too, not finish the job (and write its report) after
# the command said nothing was kept.
STOPPED_PARENT = """
import os, sys
from pathlib import Path
from maskvit.cli import terminate_as_interrupt
from maskvit.sharding import run_local_workers

if __name__ == "__main__":
    sys.path.insert(0, sys.argv[1])
    from test_eval_sharding import _wait_forever
    try:
        with terminate_as_interrupt():
            run_local_workers(_wait_forever, 2, sys.argv[2])
    except KeyboardInterrupt:
        alive = []
        for pid_file in sorted(Path(sys.argv[2]).glob("rank*.pid")):
            try:
                os.kill(int(pid_file.read_text()), 0)
                alive.append(pid_file.stem)
            except ProcessLookupError:
                pass
        print("stopped; workers alive:", alive, flush=True)
"""


def test_a_stopped_parent_stops_its_workers(tmp_path):
    import os
    import select
    import signal
    import subprocess
    import sys

    script = tmp_path / "parent.py"
    script.write_text(STOPPED_PARENT)
    os.mkfifo(tmp_path / "started")
    started = os.open(tmp_path / "started", os.O_RDWR)  # never at EOF: we hold a writer too
    parent = subprocess.Popen([sys.executable, str(script), str(Path(__file__).parent),
                               str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        lines = b""
        while lines.count(b"\n") < 2:  # wait for both workers to say they run
            assert select.select([started], [], [], 120)[0], "the workers never started"
            lines += os.read(started, 64)
        parent.send_signal(signal.SIGTERM)
        out, _ = parent.communicate(timeout=120)  # failure bounds: without the fix it hangs
    finally:
        parent.kill()
        os.close(started)
    assert out.strip() == "stopped; workers alive: []"
