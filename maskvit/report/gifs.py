"""GIF grids of sampled videos: context | ground truth | samples, side by side."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from maskvit.atomic import atomic_write

CONTEXT_BORDER = (46, 160, 67)  # green: a given frame
PREDICTED_BORDER = (214, 39, 40)  # red: a predicted frame
BORDER, GAP, HEADER = 3, 4, 22


def video_grid_frames(
    ground_truth: np.ndarray, samples: np.ndarray, context_frames: int, scale: int = 1
) -> list[Image.Image]:
    """One image per time step: [context, ground truth, sample 1..N] columns.

    ground_truth: (T, H, W, 3) uint8 (context + future); samples: (N, Tp, H, W, 3) uint8.
    The context column holds the given frames and then stays on the last one; the
    ground-truth and sample columns play the whole clip, context frames framed green and
    predicted frames framed red.
    """
    total, height, width, _ = ground_truth.shape
    n = samples.shape[0]
    tile_h, tile_w = height * scale + 2 * BORDER, width * scale + 2 * BORDER
    labels = ["context", "ground truth", *[f"sample {k + 1}" for k in range(n)]]
    canvas_w = len(labels) * tile_w + (len(labels) - 1) * GAP
    font = ImageFont.load_default(size=12)
    frames = []
    for t in range(total):
        canvas = Image.new("RGB", (canvas_w, HEADER + tile_h), "white")
        draw = ImageDraw.Draw(canvas)
        predicted = t >= context_frames
        future = t - context_frames
        columns = [
            (ground_truth[min(t, context_frames - 1)], False),
            (ground_truth[t], predicted),
            *[(samples[k, future] if predicted else ground_truth[t], predicted) for k in range(n)],
        ]
        for col, ((frame, is_predicted), label) in enumerate(zip(columns, labels, strict=True)):
            x = col * (tile_w + GAP)
            draw.text((x + tile_w / 2, HEADER / 2), label, fill="black", font=font, anchor="mm")
            colour = PREDICTED_BORDER if is_predicted else CONTEXT_BORDER
            draw.rectangle([x, HEADER, x + tile_w - 1, HEADER + tile_h - 1], fill=colour)
            tile = Image.fromarray(np.ascontiguousarray(frame))
            if scale != 1:
                tile = tile.resize((width * scale, height * scale), Image.NEAREST)
            canvas.paste(tile, (x + BORDER, HEADER + BORDER))
        frames.append(canvas)
    return frames


def write_video_grid_gif(
    path: str | os.PathLike,
    ground_truth: np.ndarray,
    samples: np.ndarray,
    context_frames: int,
    fps: float = 4.0,
) -> Path:
    """Write the grid of one video as a looping GIF (small frames are enlarged)."""
    scale = max(1, 128 // ground_truth.shape[1])
    frames = video_grid_frames(ground_truth, samples, context_frames, scale)
    duration = int(round(1000 / fps))
    return atomic_write(
        path,
        lambda f: frames[0].save(
            f, format="GIF", save_all=True, append_images=frames[1:], duration=duration, loop=0
        ),
    )
