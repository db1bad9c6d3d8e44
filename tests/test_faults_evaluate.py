"""Issue 27 item 8: evaluate says what it scored, bounds its trials, tells the truth when
stopped and resolves --device auto; the demo calls a stopped stage an interruption."""

from __future__ import annotations

import functools
import json
import os
import signal
from pathlib import Path

import pytest
from fault_pipeline import files, make_pipeline, one_line_error

import maskvit.demo_pipeline as demo_pipeline
from maskvit.cli import Terminated, main
from maskvit.data import EpisodeStore
from maskvit.devices import resolve_device
from maskvit.errors import UserError
from maskvit.inference.predictor import Predictor


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> dict[str, Path]:
    return make_pipeline(tmp_path_factory.mktemp("pipeline"))


def _evaluate(pipeline, out: Path, *extra: str) -> int:
    return main(["evaluate", "--model", str(pipeline["model"]), "--data", str(pipeline["data"]),
                 "--out", str(out), "--metrics", "psnr", "--no-progress", *extra])


def test_the_report_says_how_many_videos_were_scored(pipeline, tmp_path, capsys):
    assert _evaluate(pipeline, tmp_path / "report", "--num-videos", "1000000", "--trials", "1") == 0
    assert "note: scored 2 videos" in capsys.readouterr().out  # the store has 2 test episodes
    model = json.loads((tmp_path / "report" / "metrics.json").read_text())["model"]
    assert model["num_videos"] == model["protocol"]["num_videos"] == 2
    assert model["videos_requested"] == 1000000
    html = (tmp_path / "report" / "index.html").read_text()
    assert "1000000" not in html and "2 video(s)" in html


def test_trials_are_capped_in_one_line_before_any_work(pipeline, tmp_path, capsys):
    from maskvit.metrics import MetricNetworks, Protocol
    from maskvit.metrics.protocol import MAX_TRIALS
    from maskvit.prediction_eval import evaluate_predictor

    assert _evaluate(pipeline, tmp_path / "report", "--trials", str(MAX_TRIALS + 1)) == 2
    one_line_error(capsys, "evaluate", "--trials", f"at most {MAX_TRIALS}", "memory")
    assert not (tmp_path / "report").exists()
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    assert f"1 to {MAX_TRIALS}" in capsys.readouterr().out
    # `--set eval.trials=...` and library callers meet the same cap.
    predictor = Predictor.from_run(pipeline["model"])
    protocol = Protocol("tiny", 2, 2, trials=MAX_TRIALS + 1, num_videos=2)
    with pytest.raises(UserError, match=f"trials must be at most {MAX_TRIALS}"):
        evaluate_predictor(predictor, EpisodeStore.open(pipeline["data"]), protocol,
                           networks=MetricNetworks(), metrics=("psnr",))


def test_a_stopped_evaluation_says_nothing_is_kept(pipeline, tmp_path, monkeypatch, capsys):
    report = tmp_path / "report"
    assert _evaluate(pipeline, report, "--trials", "1") == 0
    before = files(report)
    real_predict = Predictor.predict

    def predict_then_sigterm(self, *args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)  # as if the scheduler stopped the job midway
        return real_predict(self, *args, **kwargs)

    monkeypatch.setattr(Predictor, "predict", predict_then_sigterm)
    capsys.readouterr()
    assert _evaluate(pipeline, report, "--trials", "2") == 128 + signal.SIGTERM
    err = capsys.readouterr().err.strip()
    assert err.startswith("maskvit evaluate: terminated; nothing of this evaluation is kept"), err
    assert "finished outputs are kept" not in err and "\n" not in err
    assert files(report) == before  # the earlier report, untouched


def test_metric_networks_resolve_device_auto(tmp_path):
    from maskvit.metrics import MetricNetworks

    networks = MetricNetworks.load(("lpips",), device="auto")
    assert networks.lpips_model is not None, networks.skipped
    assert {p.device for p in networks.lpips_model.parameters()} == {resolve_device("auto")}


# --------------------------------------------------------------------------- the demo


def _stages_stopped_at(stage: str, code: int):
    """A stand-in for `maskvit STAGE ...`: every stage succeeds until `stage` exits `code`."""
    def run(argv: list[str]) -> int:
        return code if argv[0] == stage else 0
    return run


@pytest.mark.parametrize("code, how", [(130, "interrupted"), (143, "terminated")])
def test_the_demo_reports_a_stopped_stage_as_interrupted(tmp_path, monkeypatch, capsys, code,
                                                         how):
    out = tmp_path / "demo"
    monkeypatch.setattr(demo_pipeline, "run_demo", functools.partial(
        demo_pipeline.run_demo, run_command=_stages_stopped_at("tokenize", code)))
    assert main(["demo", "--quick", "--out", str(out)]) == code
    err = capsys.readouterr().err.strip()
    assert err == (f"maskvit demo: {how}; stage tokenize was stopped; rerun "
                   f"`maskvit demo --out {out} --quick` to resume from this stage"), err
    assert sorted(p.name for p in (out / ".stages").iterdir()) == [
        "chain", "collect", "evaluate-shipped", "plan-shipped"]


def test_a_failed_demo_stage_is_still_a_failure(tmp_path):
    with pytest.raises(UserError, match="stage tokenize failed \\(exit 1\\); fix the cause"):
        demo_pipeline.run_demo(tmp_path / "demo", quick=True,
                               run_command=_stages_stopped_at("tokenize", 1))
    with pytest.raises(Terminated):
        demo_pipeline.run_demo(tmp_path / "demo", quick=True,
                               run_command=_stages_stopped_at("tokenize", 143))
