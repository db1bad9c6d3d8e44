"""The pieces of `benchmarks/gpu_check.sh`: what a first GPU run of maskvit checks.

    python benchmarks/gpu_check.py step --device cuda --json OUT/step.json     (or under torchrun)
    python benchmarks/gpu_check.py attention --device cuda --json OUT/attention.json
    python benchmarks/gpu_check.py serve --device cuda --json OUT/serve.json
    python benchmarks/gpu_check.py verdict OUT

`step` runs one training step of a preset's transformer (bair64 by default) through the
training engine on random token clips: the same clips, masks and initial weights on any
device and process count, so its loss is comparable between a CPU run, one GPU and
several (torchrun). `attention` times the training attention's forward and backward
with and without the CPU's chunking. `serve` starts `maskvit serve` and checks that one
/v1/predict answer equals `Predictor.predict` with the same seed. `verdict` reads the
results and says what passed. Every piece runs on the CPU too (`--device cpu`), which
is how the script itself is tested on machines without a GPU.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from maskvit.config import load_preset

# Losses at step 1 (before any update) may differ by float rounding only: TF32 products
# on a GPU (10-bit mantissas) against fp32 ones on the CPU, and bf16 autocast (8 bits).
LOSS_RTOL = {"fp32": 2e-3, "bf16": 2e-2}


class RandomClips(Dataset):
    """`n` fixed random token clips of the preset's shape (actions too, if it takes any)."""

    def __init__(self, config, n: int, seed: int = 0) -> None:
        t = config.transformer
        g = torch.Generator().manual_seed(seed)
        self.tokens = torch.randint(0, t.codebook_size, (n, t.num_frames, t.tokens_h, t.tokens_w),
                                    generator=g)
        self.actions = (torch.rand(n, t.num_frames, t.action_dim, generator=g) - 0.5) * 0.1

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"tokens": self.tokens[i], "actions": self.actions[i]}


def run_step(args: argparse.Namespace) -> dict:
    """One training step on this process's share of the batch; the loss of the whole batch."""
    from maskvit.model.masked_video_task import MaskedVideoTask
    from maskvit.train import Trainer, init_distributed
    from maskvit.train.distributed import shutdown_distributed

    env = init_distributed(args.device)
    try:
        config = load_preset(args.preset, [
            f"train.batch_size={args.batch}", "train.steps=1", "train.warmup_steps=0",
            f"train.precision={args.precision}", "train.log_every=1", "train.val_every=0"])
        torch.manual_seed(config.train.seed)  # the same initial weights on every device and rank
        task = MaskedVideoTask(config.transformer, config.train)
        trainer = Trainer(task, config.train, RandomClips(config, args.batch), env=env,
                          progress=False, tensorboard=False)
        start = time.perf_counter()
        result = trainer.fit()
        if env.device.type == "cuda":
            torch.cuda.synchronize(env.device)
        return {"device": str(env.device), "processes": env.world_size, "preset": args.preset,
                "batch": args.batch, "precision": trainer.precision,
                "loss": result.last_train["loss"], "accuracy": result.last_train["accuracy"],
                "seconds": time.perf_counter() - start, "is_main": env.is_main}
    finally:
        shutdown_distributed()


def run_attention(args: argparse.Namespace) -> dict:
    """Forward + backward of one spatiotemporal attention layer's attention, three ways."""
    import torch.nn.functional as F

    from maskvit.devices import resolve_device
    from maskvit.model.attention import biased_attention, chunked_biased_attention, resolve_window

    device = resolve_device(args.device)
    t = load_preset(args.preset).transformer
    grid = (t.num_frames, t.tokens_h, t.tokens_w)
    window = resolve_window(tuple(t.spatiotemporal_window), grid)
    length = window[0] * window[1] * window[2]
    windows = args.batch * (grid[0] * grid[1] * grid[2]) // length
    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(windows, t.heads, length, t.dim // t.heads, generator=g)
               .to(device, dtype).requires_grad_() for _ in range(3))
    bias = (0.02 * torch.randn(t.heads, length, length, generator=g)).to(device, dtype).requires_grad_()
    forms = {
        "chunked (the CPU's path)": lambda: chunked_biased_attention(q, k, v, bias),
        "sdpa (the GPU's path)": lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=bias[None]),
        "whole tensors": lambda: biased_attention(q, k, v, bias[None]),
    }
    timings = {}
    for name, form in forms.items():
        best = float("inf")
        for attempt in range(args.repeats + 1):  # the first is a warm-up
            for x in (q, k, v, bias):
                x.grad = None
            _sync(device)
            start = time.perf_counter()
            form().float().square().mean().backward()
            _sync(device)
            if attempt:
                best = min(best, time.perf_counter() - start)
        timings[name] = best
    return {"device": str(device), "preset": args.preset, "precision": args.precision,
            "shape": [windows, t.heads, length, t.dim // t.heads], "seconds": timings}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_serve(args: argparse.Namespace) -> dict:
    """Start `maskvit serve`, ask for one prediction, compare it with `Predictor.predict`."""
    import httpx

    from maskvit.inference.predictor import Predictor
    from maskvit.pretrained import default_model
    from maskvit.serve.frames import decode_png, encode_png

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (1, 2, 64, 64, 3), dtype=np.uint8)
    actions = rng.uniform(-0.05, 0.05, (1, 12, 2)).astype(np.float32)
    server = subprocess.Popen(
        [sys.executable, "-m", "maskvit", "serve", "--device", args.device, "--port", "0",
         "--max-wait-ms", "1", "--log-level", "warning"],
        stdout=subprocess.PIPE, text=True)
    try:
        url = _server_url(server)
        body = {"context": [[encode_png(f) for f in frames[0]]], "actions": actions.tolist(),
                "num_frames": 10, "seed": 3}
        answer = httpx.post(f"{url}/v1/predict", json=body, timeout=300).json()
    finally:
        server.terminate()
        server.wait(timeout=60)
    served = np.stack([np.stack([decode_png(f, 64, "answer") for f in video])
                       for video in answer["frames"]])
    predictor = Predictor.from_run(default_model(), device=args.device, precision="auto")
    expected = predictor.predict(frames, actions=actions, num_frames=10, seed=3)
    return {"device": str(predictor.device), "precision": predictor.precision,
            "equal": bool(np.array_equal(served, expected)),
            "pixels_differing": float((served != expected).mean())}


def _server_url(server: subprocess.Popen) -> str:
    """The address `maskvit serve` prints once it listens (it exits on an error)."""
    for line in server.stdout:
        print(line, end="", file=sys.stderr)
        found = re.search(r"(http://[^\s]+:\d+)", line)
        if found:
            return found.group(1)
    raise RuntimeError(f"maskvit serve exited ({server.wait()}) before it listened")


# --------------------------------------------------------------------------- verdict


def verdict(out: Path) -> int:
    """Print what passed; exit status 0 only when every check that ran passed."""
    def read(name: str) -> dict | None:
        path = out / f"{name}.json"
        return json.loads(path.read_text()) if path.is_file() else None

    checks: list[tuple[str, str, str]] = []  # (check, PASS/FAIL/SKIP, detail)
    reference = read("step_cpu")
    for name, label in (("step_1", "training step, 1 device"),
                        ("step_2", "training step, 2 processes"),
                        ("step_1_auto", "training step, 1 device, precision auto")):
        got = read(name)
        if got is None or reference is None:
            checks.append((label, _status(out, name, "SKIP"), "no result"))
            continue
        rtol = LOSS_RTOL[got["precision"]]
        diff = abs(got["loss"] - reference["loss"]) / abs(reference["loss"])
        checks.append((label, "PASS" if diff <= rtol else "FAIL",
                       f"{got['device']} x{got['processes']} {got['precision']}: loss "
                       f"{got['loss']:.6f} vs CPU {reference['loss']:.6f} (rel. diff {diff:.1e}, "
                       f"allowed {rtol:.0e}); {got['seconds']:.1f} s"))
    attention = read("attention")
    if attention is None:
        checks.append(("attention timing", _status(out, "attention", "SKIP"), "no result"))
    else:
        times = ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in attention["seconds"].items())
        checks.append(("attention timing", "PASS", f"{attention['device']} "
                       f"{attention['precision']} {attention['shape']}: {times}"))
    plan_ok = (out / "plan" / "results.json").is_file()
    if plan_ok:
        policies = json.loads((out / "plan" / "results.json").read_text())["policies"]
        solved = ", ".join(f"{k} {v['successes']}/{v['episodes']}" for k, v in policies.items())
    checks.append(("plan, 2 tasks", _status(out, "plan", "PASS" if plan_ok else "FAIL"),
                   solved if plan_ok else "no results.json"))
    serve = read("serve")
    if serve is None:
        checks.append(("serve = Predictor.predict", _status(out, "serve", "FAIL"), "no result"))
    else:
        checks.append(("serve = Predictor.predict", "PASS" if serve["equal"] else "FAIL",
                       f"{serve['device']} {serve['precision']}: "
                       f"{serve['pixels_differing']:.2%} of pixels differ"))
    width = max(len(c[0]) for c in checks)
    for check, status, detail in checks:
        print(f"{status:4s}  {check:{width}s}  {detail}")
    failed = [c for c, s, _ in checks if s == "FAIL"]
    print("verdict: " + (f"NOT ready ({', '.join(failed)})" if failed else "ready"))
    return 1 if failed else 0


def _status(out: Path, name: str, default: str) -> str:
    """What the shell script recorded for a step it skipped or saw fail, else `default`."""
    path = out / "status" / name
    if not path.is_file():
        return default
    code = path.read_text().strip()
    return "SKIP" if code == "skip" else default if code == "0" else "FAIL"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("step", "attention", "serve"):
        p = sub.add_parser(name)
        p.add_argument("--device", default="cuda")
        p.add_argument("--json", required=True, type=Path)
        if name != "serve":
            p.add_argument("--preset", default="bair64")
            p.add_argument("--batch", type=int, default=2)
            p.add_argument("--precision", default="fp32",
                           choices=["auto", "fp32", "bf16"] if name == "step" else ["fp32", "bf16"])
        if name == "attention":
            p.add_argument("--repeats", type=int, default=3)
    v = sub.add_parser("verdict")
    v.add_argument("out", type=Path)
    args = parser.parse_args()
    if args.command == "verdict":
        return verdict(args.out)
    result = {"step": run_step, "attention": run_attention, "serve": run_serve}[args.command](args)
    if result.pop("is_main", True):
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
