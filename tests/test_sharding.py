"""maskvit.sharding: round-robin split and merge, JSON gather over a real gloo group."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from maskvit.errors import UserError
from maskvit.sharding import Shard, check_workers, gather_json, merge_round_robin, run_local_workers


@pytest.mark.parametrize("world_size", [1, 2, 3, 7])
@pytest.mark.parametrize("jobs", [0, 1, 5, 12])
def test_take_then_merge_gives_every_job_once_in_order(world_size, jobs):
    items = [f"job{i}" for i in range(jobs)]
    parts = [Shard(rank, world_size).take(items) for rank in range(world_size)]
    assert sorted(sum(parts, [])) == sorted(items)
    assert merge_round_robin(parts) == items


def _gather_job(shard: Shard, out: str) -> None:
    mine = [{"job": job, "rank": shard.rank, "text": "é" * (job + 1)} for job in shard.take(list(range(7)))]
    parts = gather_json(mine, shard)
    if shard.is_main:
        Path(out).write_text(json.dumps(merge_round_robin(parts)))
    else:
        assert parts is None


def test_two_local_workers_gather_their_results_in_job_order(tmp_path):
    out = tmp_path / "merged.json"
    run_local_workers(_gather_job, 2, str(out))
    merged = json.loads(out.read_text())
    assert [row["job"] for row in merged] == list(range(7))
    assert [row["rank"] for row in merged] == [job % 2 for job in range(7)]
    assert merged[3]["text"] == "éééé"  # payloads of different lengths survive the padding


def _failing_job(shard: Shard) -> None:
    if shard.rank == 1:
        raise UserError("rank one cannot find its instance file")


def test_a_worker_user_error_ends_the_job_in_one_line():
    with pytest.raises(UserError, match="rank one cannot find its instance file"):
        run_local_workers(_failing_job, 2)


def test_workers_must_be_positive_and_not_mixed_with_torchrun(monkeypatch):
    with pytest.raises(UserError, match="--workers must be 1 or more"):
        check_workers(0)
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(UserError, match="do not mix"):
        check_workers(2)
    assert check_workers(1) == 1


_RANK_SCRIPT = """
import torch.distributed as dist
from maskvit.sharding import gather_json, torchrun_session
with torchrun_session() as shard:
    parts = gather_json(shard.rank, shard)
print(shard.rank, shard.world_size, parts, dist.is_initialized(), flush=True)
"""


def test_a_torchrun_session_destroys_its_process_group_before_the_rank_exits():
    """Two ranks given torchrun's environment by hand: each joins, gathers, and leaves with
    its group destroyed (a gloo group alive at exit can abort the rank with SIGABRT)."""
    import os
    import subprocess
    import sys

    from maskvit.sharding import _free_port

    port = str(_free_port())
    ranks = [subprocess.Popen(
        [sys.executable, "-c", _RANK_SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env={**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2",
                        "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port})
        for rank in range(2)]
    outputs = [rank.communicate(timeout=300) for rank in ranks]
    assert [rank.returncode for rank in ranks] == [0, 0], [err[-1000:] for _, err in outputs]
    assert [out.split() for out, _ in outputs] == [
        ["0", "2", "[0,", "1]", "False"], ["1", "2", "None", "False"]]
