"""Faults around outputs: full disks, read-only folders, a second writer, SIGTERM, bad flags.

The real CLI (`maskvit.cli.main`) runs in-process on tiny inputs: a two-episode store,
the shipped push64 model and tokenizer, and one or two short random-policy planning
episodes. Reports (evaluate, reconstruct, plan) are replaced whole or not at all.
"""

from __future__ import annotations

import errno
import os
import select
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import maskvit.atomic as atomic
from maskvit.cli import main
from maskvit.data import EpisodeStore, EpisodeStoreWriter
from maskvit.errors import UserError
from maskvit.pretrained import pretrained_path
from maskvit.report.staging import MARKER, staged_report

SHIPPED = pretrained_path()
pytestmark = pytest.mark.skipif(SHIPPED is None, reason="this install ships no reference model")

REPORTS = ["evaluate", "reconstruct", "plan"]
# The file each report writes last through `maskvit.atomic`: failing there is "midway".
LAST_FILE = {"evaluate": "index.html", "reconstruct": "reconstructions.png",
             "plan": "index.html", "collect": "manifest.json"}
PLAN_SETS = ["plan.samples=8", "plan.iterations=1", "plan.episode_steps=2", "plan.horizon=2",
             "plan.replan_every=1"]


def write_store(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    with EpisodeStoreWriter(path, source="push", action_dim=2, resolution=64) as writer:
        for i in range(2):
            writer.add(f"ep{i}", rng.integers(0, 256, (12, 64, 64, 3), dtype=np.uint8),
                       rng.normal(0, 0.01, (12, 2)).astype(np.float32), split="test")
    return path


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> tuple[Path, Path]:
    """Two stores of different frames, so a second report differs from the first."""
    root = tmp_path_factory.mktemp("stores")
    return write_store(root / "a", 0), write_store(root / "b", 1)


def argv_for(kind: str, out: Path, stores: tuple[Path, Path], variant: int = 0) -> list[str]:
    data = str(stores[variant])
    if kind == "evaluate":
        return ["evaluate", "--data", data, "--out", str(out), "--num-videos", "1",
                "--trials", "1", "--metrics", "psnr", "--seed", str(variant), "--no-progress"]
    if kind == "reconstruct":
        return ["reconstruct", "--tokenizer", str(SHIPPED / "tokenizer"), "--data", data,
                "--out", str(out), "--episodes", "2", "--frames", "2", "--metrics-frames", "4",
                "--no-progress"]
    if kind == "plan":
        return ["plan", "--policy", "random", "--episodes", "2", "--out", str(out),
                "--seed", str(variant), "--no-progress",
                *[a for s in PLAN_SETS for a in ("--set", s)]]
    if kind == "collect":
        return ["collect", "--episodes", str(2 + variant), "--steps", "3", "--workers", "1",
                "--out", str(out), "--no-progress"]
    raise AssertionError(kind)


def run(capsys, argv: list[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = main(argv)
    return code, capsys.readouterr().err.strip()


def assert_one_line(err: str, command: str) -> None:
    assert err.startswith(f"maskvit {command}: error: "), err
    assert "\n" not in err and "Traceback" not in err, err


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir()
            if ".maskvit-new-" in p.name or ".maskvit-old-" in p.name or p.name.endswith(".tmp")]


def fail_writing(monkeypatch, name: str, error) -> None:
    """Make `maskvit.atomic.atomic_write` raise `error(path)` for files called `name`."""
    real = atomic.atomic_write

    def failing(path, write):
        if Path(path).name == name:
            raise error(path)
        return real(path, write)

    monkeypatch.setattr(atomic, "atomic_write", failing)


def no_space(path) -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as write() raises it: no file name


def permission_denied(path) -> OSError:
    return PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))


# -- reports are replaced whole or not at all


@pytest.mark.parametrize("kind", REPORTS)
def test_a_full_disk_midway_leaves_the_previous_report_untouched(kind, stores, tmp_path,
                                                                 monkeypatch, capsys):
    out = tmp_path / "report"
    assert run(capsys, argv_for(kind, out, stores))[0] == 0
    before = snapshot(out)
    assert LAST_FILE[kind] in before

    fail_writing(monkeypatch, LAST_FILE[kind], no_space)
    code, err = run(capsys, argv_for(kind, out, stores, variant=1))
    assert code == 1
    assert_one_line(err, kind)
    assert "No space left on device" in err and str(out) in err and ".maskvit-new-" not in err
    assert snapshot(out) == before  # byte for byte: no new file beside the old ones
    assert leftovers(tmp_path) == []

    monkeypatch.undo()
    assert run(capsys, argv_for(kind, out, stores, variant=1))[0] == 0
    after = snapshot(out)
    assert set(after) == set(before) and after != before and leftovers(tmp_path) == []
    assert MARKER in after  # what marks the folder as a report that may be replaced


@pytest.mark.parametrize("kind", [*REPORTS, "collect"])
def test_a_read_only_output_is_one_line_and_keeps_what_was_there(kind, stores, tmp_path,
                                                                monkeypatch, capsys):
    out = tmp_path / "out"
    assert run(capsys, argv_for(kind, out, stores))[0] == 0
    before = snapshot(out)
    if os.geteuid() == 0:  # root writes into 0o555 folders: fail the write instead
        fail_writing(monkeypatch, "writer.json" if kind == "collect" else LAST_FILE[kind],
                     permission_denied)
    else:
        out.chmod(0o555)
    try:
        code, err = run(capsys, argv_for(kind, out, stores, variant=1))
    finally:
        out.chmod(0o755)
    assert code == 1
    assert_one_line(err, kind)
    assert "Permission denied" in err and str(out) in err and ".maskvit-new-" not in err
    if kind == "collect":  # the episodes stay; the store resumes (see the next test)
        assert all(snapshot(out).get(k) == v for k, v in before.items() if "episodes/" in k)
    else:
        assert snapshot(out) == before
    assert leftovers(tmp_path) == []


def test_a_full_disk_during_collect_is_one_line_and_the_store_resumes(stores, tmp_path,
                                                                     monkeypatch, capsys):
    out = tmp_path / "store"
    assert run(capsys, argv_for("collect", out, stores))[0] == 0
    before = snapshot(out)
    fail_writing(monkeypatch, "manifest.json", no_space)
    code, err = run(capsys, argv_for("collect", out, stores, variant=1))
    assert code == 1
    assert_one_line(err, "collect")
    assert "No space left on device" in err and str(out) in err
    assert all(snapshot(out)[k] == v for k, v in before.items() if "episodes/" in k)
    monkeypatch.undo()
    assert run(capsys, argv_for("collect", out, stores, variant=1))[0] == 0
    assert len(EpisodeStore.open(out)) == 3


def test_rerunning_a_finished_collect_writes_nothing(stores, tmp_path, monkeypatch, capsys):
    out = tmp_path / "store"
    assert run(capsys, argv_for("collect", out, stores))[0] == 0
    before = snapshot(out)
    fail_writing(monkeypatch, "writer.json", no_space)  # a full disk does not matter now
    fail_writing(monkeypatch, "manifest.json", no_space)
    assert run(capsys, argv_for("collect", out, stores))[0] == 0
    assert snapshot(out) == before


@pytest.mark.parametrize("kind", REPORTS)
def test_an_output_that_is_not_a_report_is_refused_before_any_work(kind, stores, tmp_path,
                                                                   capsys):
    out = tmp_path / "mine"
    (out / "sub").mkdir(parents=True)
    (out / "sub" / "notes.txt").write_text("keep me")
    code, err = run(capsys, argv_for(kind, out, stores))
    assert code == 2
    assert_one_line(err, kind)
    assert f"not a maskvit {kind} report" in err and "sub/notes.txt" in err
    assert snapshot(out) == {"sub/notes.txt": b"keep me"}

    store = stores[0]
    before = snapshot(store)
    code, err = run(capsys, argv_for(kind, store, stores))  # --out mistyped as the data
    assert code == 2 and "not a maskvit" in err and snapshot(store) == before

    (tmp_path / "file").write_text("x")
    code, err = run(capsys, argv_for(kind, tmp_path / "file", stores))
    assert code == 2 and "exists and is not a directory" in err
    assert leftovers(tmp_path) == []


def test_a_report_from_before_markers_is_replaced_and_only_its_files_go(tmp_path):
    out = tmp_path / "report"
    (out / "videos").mkdir(parents=True)
    for name in ("index.html", "metrics.json", "curve_psnr.png", "videos/video_000.gif"):
        (out / name).write_text("old")
    with staged_report(out, "evaluate") as stage:
        (stage / "index.html").write_text("new")
    assert snapshot(out) == {"index.html": b"new", MARKER: snapshot(out)[MARKER]}
    assert leftovers(tmp_path) == []


def test_a_folder_that_merely_holds_gifs_is_not_taken_for_an_old_report(tmp_path):
    out = tmp_path / "pictures"
    (out / "trip").mkdir(parents=True)
    (out / "holiday.gif").write_text("mine")
    with pytest.raises(UserError, match="not a maskvit reconstruct report"):
        with staged_report(out, "reconstruct"):
            pass
    (out / "reconstructions.png").write_text("old")
    (out / "trip" / "beach.gif").write_text("mine")  # `*.gif` names top-level files only
    with pytest.raises(UserError, match="trip/beach.gif"):
        with staged_report(out, "reconstruct"):
            pass
    assert (out / "holiday.gif").read_text() == "mine" and leftovers(tmp_path) == []


def test_the_current_folder_is_never_swapped_away(tmp_path, monkeypatch):
    (tmp_path / "empty").mkdir()
    monkeypatch.chdir(tmp_path / "empty")
    for out in (".", ".."):
        with pytest.raises(UserError, match="is the current folder"):
            with staged_report(out, "plan"):
                pass
    assert (tmp_path / "empty").is_dir() and leftovers(tmp_path) == []


def test_a_swap_killed_midway_is_undone_by_the_next_job(tmp_path):
    """Killed after renaming the old report aside and before renaming the new one in."""
    out = tmp_path / "report"
    with staged_report(out, "plan") as stage:
        (stage / "results.json").write_text("first")
    aside = tmp_path / ".report.maskvit-old-killed"
    out.rename(aside)
    (tmp_path / ".report.maskvit-new-killed").mkdir()  # the half-written new report
    with pytest.raises(RuntimeError):
        with staged_report(out, "plan") as stage:
            (stage / "results.json").write_text("second")
            raise RuntimeError("failed midway")
    assert (out / "results.json").read_text() == "first"  # the old report is back
    assert leftovers(tmp_path) == []


def test_a_failed_report_into_a_new_folder_leaves_nothing(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with staged_report(tmp_path / "report", "evaluate") as stage:
            (stage / "metrics.json").write_text("{}")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == [tmp_path / ".report.maskvit-lock"]


def test_files_a_user_added_to_a_report_are_never_deleted(tmp_path):
    out = tmp_path / "report"
    with staged_report(out, "evaluate") as stage:
        (stage / "index.html").write_text("first")
    (out / "my notes.txt").write_text("mine")
    with pytest.raises(UserError, match="my notes.txt"):
        with staged_report(out, "evaluate") as stage:
            (stage / "index.html").write_text("second")
    assert (out / "my notes.txt").read_text() == "mine"
    assert (out / "index.html").read_text() == "first" and leftovers(tmp_path) == []


# -- one writer per output directory

HOLDER = textwrap.dedent("""
    import sys
    from maskvit.locking import output_lock, set_job
    set_job("maskvit " + sys.argv[2])
    with output_lock(sys.argv[1]):
        print("ready", flush=True)
        sys.stdin.read()
""")


@pytest.mark.parametrize("kind", [*REPORTS, "demo"])
def test_a_second_job_on_the_same_output_is_refused_in_one_line(kind, stores, tmp_path, capsys):
    out = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out), kind],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        argv = ["demo", "--quick", "--out", str(out)] if kind == "demo" else argv_for(kind, out,
                                                                                       stores)
        code, err = run(capsys, argv)
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)
    assert code == 2
    assert_one_line(err, kind)
    assert f"pid {holder.pid}" in err and f"`maskvit {kind}`" in err
    assert not out.exists()


# -- SIGTERM during collect

# `maskvit collect` held at a known point for the SIGTERM: one of episodes 0 and 1 is
# written, then the parent waits on its stdin and the workers sit inside episodes 2 and 3.
HELD_COLLECT = textwrap.dedent("""
    import signal, sys
    import maskvit.sim.collection as collect
    real_episode, real_write = collect.collect_episode, collect._write
    def held_episode(env, run_seed, index, *args):
        if index >= 2:
            signal.pause()  # mid-episode until the pool ends this worker
        return real_episode(env, run_seed, index, *args)
    def write_then_wait(writer, index, episode):
        real_write(writer, index, episode)
        print("written", index, flush=True)
        sys.stdin.read()  # until the SIGTERM (or the test closes stdin)
    collect.collect_episode, collect._write = held_episode, write_then_wait
    from maskvit.cli import main
    sys.exit(main(sys.argv[1:]))
""")


def test_sigterm_during_collect_is_one_line_and_the_store_resumes(tmp_path):
    out = tmp_path / "store"
    args = ["collect", "--episodes", "12", "--steps", "3", "--workers", "2", "--out", str(out),
            "--no-progress"]
    with subprocess.Popen([sys.executable, "-c", HELD_COLLECT, *args], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            assert select.select([proc.stdout], [], [], 120)[0], "collect wrote no episode"
            said, index = proc.stdout.readline().split()
            assert said == "written"
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        err = proc.stderr.read()
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert proc.returncode == 128 + signal.SIGTERM
    lines = [line for line in err.splitlines() if not line.startswith("pybullet build time")]
    assert lines == [lines[0]] and lines[0].startswith("maskvit collect: terminated"), err
    assert not (out / "manifest.json").exists()
    finished = [e.name for e in (out / "episodes").iterdir() if not e.name.endswith(".partial")]
    assert finished == [f"push_{int(index):06d}"]  # what was written before the signal stays

    done = subprocess.run([sys.executable, "-m", "maskvit", *args], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert len(EpisodeStore.open(out)) == 12


def test_the_cli_restores_the_sigterm_handler_it_replaced(capsys):
    before = signal.getsignal(signal.SIGTERM)
    main(["bench", "decode", "--presets", "nope"])
    assert signal.getsignal(signal.SIGTERM) is before


# -- bad input is one line


@pytest.mark.parametrize(("extra", "message"), [
    (["evaluate", "--trials", "0"], "--trials must be at least 1"),
    (["evaluate", "--num-videos", "-2"], "--num-videos must be at least 1"),
    (["evaluate", "--batch-size", "0"], "--batch-size must be at least 1"),
    (["evaluate", "--metrics", ","], "--metrics names no metric"),
    (["evaluate", "--data", "MISSING"], "episode store not found"),
    (["reconstruct", "--metrics-frames", "-1"], "--metrics-frames must be 0"),
    (["reconstruct", "--data", "MISSING"], "episode store not found"),
    (["plan", "--first-task", "-1"], "--first-task must be 0 or more"),
    (["plan", "--set", "plan.samples=abc"], "plan.samples must be an integer"),
    (["plan", "--set", "samples"], "must look like section.key=value"),
])
def test_bad_flags_are_one_line_and_write_nothing(extra, message, stores, tmp_path, capsys):
    kind, flags = extra[0], [f.replace("MISSING", str(tmp_path / "missing")) for f in extra[1:]]
    out = tmp_path / "out"
    argv = argv_for(kind, out, stores)
    for flag, value in zip(flags[::2], flags[1::2], strict=True):
        if flag in argv and flag != "--set":
            argv[argv.index(flag) + 1] = value
        else:
            argv += [flag, value]
    code, err = run(capsys, argv)
    assert code == 2
    assert_one_line(err, kind)
    assert message in err
    assert not out.exists()


@pytest.mark.parametrize(("flags", "message"), [
    (["--presets", ","], "--presets names no preset"),
    (["--presets", "push64", "--ar-passes", "0"], "--ar-passes must be at least 1"),
    (["--presets", "push64", "--steps", "0"], "--steps must be at least 1"),
    (["--presets", "push64", "--device", "gpu"], "choose auto, cpu, cuda or cuda:N"),
])
def test_bad_bench_flags_are_one_line(flags, message, capsys):
    code, err = run(capsys, ["bench", "decode", *flags])
    assert code == 2
    assert_one_line(err, "bench")
    assert message in err
