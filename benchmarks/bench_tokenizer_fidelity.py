"""How much of the push world does a tokenizer keep? One row per tokenizer run.

For the first V held-out clips (the same clips `maskvit evaluate` scores: each test
episode's first context + predicted frames), reconstructs every frame through the
tokenizer and measures, against the true clips:

* PSNR and SSIM per frame (mean over frames and clips, ± standard error over clips);
* object fidelity (`maskvit.metrics.objects`): box-mask IoU and centroid error;
* FVD of the reconstructed clips against the true clips — the bound a video model built
  on this tokenizer cannot beat — next to FVD of copy-last-frame on the same clips.

    python benchmarks/bench_tokenizer_fidelity.py --data STORE --tokenizer RUN [RUN ...] \
        [--videos 32] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from maskvit.config import load_preset
from maskvit.data import EpisodeStore
from maskvit.metrics.fvd import fvd_from_features, i3d_features
from maskvit.metrics.i3d import load_i3d
from maskvit.metrics.objects import object_fidelity
from maskvit.metrics.pixel import psnr, ssim
from maskvit.metrics.protocol import Protocol, copy_last_frame, standard_error
from maskvit.prediction_eval import test_clips
from maskvit.tokenizer.vqgan import load_vqgan


@torch.no_grad()
def reconstruct(vqgan, clips: np.ndarray, batch: int = 64) -> np.ndarray:
    """uint8 (V, T, H, W, 3) -> the tokenizer's reconstruction of every frame."""
    flat = clips.reshape(-1, *clips.shape[2:])
    out = [vqgan.decode(vqgan.encode(torch.from_numpy(flat[i:i + batch]))).cpu().numpy()
           for i in range(0, len(flat), batch)]
    return np.concatenate(out).reshape(clips.shape)


def frame_scores(truth: np.ndarray, recon: np.ndarray) -> dict[str, float]:
    t, r = torch.from_numpy(truth.reshape(-1, *truth.shape[2:])), torch.from_numpy(
        recon.reshape(-1, *recon.shape[2:]))
    per_frame = {"psnr": psnr(t, r).clamp(max=100.0), "ssim": ssim(t, r)}
    out = {}
    for name, values in per_frame.items():
        per_clip = values.reshape(len(truth), -1).mean(1).numpy()
        out[name], out[f"{name}_se"] = float(per_clip.mean()), standard_error(per_clip)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--tokenizer", nargs="+", required=True,
                        help="tokenizer run directories; RUN@STEP for one checkpoint")
    parser.add_argument("--videos", type=int, default=32)
    parser.add_argument("--preset", default="push64", help="whose eval protocol picks the clips")
    parser.add_argument("--json", default=None, help="append the rows to this JSON file")
    args = parser.parse_args()

    ev = load_preset(args.preset).eval
    protocol = Protocol("tokenizer", ev.context_frames, ev.predicted_frames, 1, args.videos)
    store = EpisodeStore.open(args.data)
    truth, _ = test_clips(store, protocol, "test", args.videos)
    i3d = load_i3d()
    real = i3d_features(i3d, truth)
    copy_last = np.concatenate([truth[:, :ev.context_frames],
                                copy_last_frame(truth, ev.context_frames,
                                                ev.predicted_frames)[:, 0]], 1)
    copy_scores = object_fidelity(truth[:, ev.context_frames:], copy_last[:, ev.context_frames:])
    rows = [{"tokenizer": "copy last frame (predicted frames)",
             "fvd": fvd_from_features(real, i3d_features(i3d, copy_last)),
             "iou": copy_scores["iou"]["mean"],
             "centroid_error_px": copy_scores["centroid_error_px"]["mean"],
             **frame_scores(truth[:, ev.context_frames:], copy_last[:, ev.context_frames:])}]
    for run in args.tokenizer:
        started = time.perf_counter()
        path, _, step = run.partition("@")  # RUN@STEP: that checkpoint, else the latest
        vqgan = load_vqgan(path, step=int(step) if step else None)
        recon = reconstruct(vqgan, truth)
        objects = object_fidelity(truth, recon)
        rows.append({
            "tokenizer": run, "videos": len(truth), "step": step or "latest",
            "grid": vqgan.cfg.token_grid, "channels": vqgan.cfg.channels,
            "codebook": vqgan.cfg.codebook_size,
            **frame_scores(truth, recon),
            "iou": objects["iou"]["mean"], "iou_se": objects["iou"]["se"],
            "centroid_error_px": objects["centroid_error_px"]["mean"],
            "missing": objects["missing"], "objects": objects["objects"],
            "fvd": fvd_from_features(real, i3d_features(i3d, recon)),
            "seconds": time.perf_counter() - started,
        })
        print(json.dumps(rows[-1]), flush=True)
    print(json.dumps(rows[0]))
    if args.json:
        path = Path(args.json)
        old = json.loads(path.read_text()) if path.is_file() else []
        path.write_text(json.dumps(old + rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
