"""Per-frame metric curves drawn with Pillow (no plotting library needed)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from maskvit.atomic import atomic_write

WIDTH, HEIGHT = 640, 400
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 70, 30, 60, 45
COLOURS = [(31, 119, 180), (127, 127, 127), (214, 39, 40), (44, 160, 44), (148, 103, 189)]


@dataclass
class Curve:
    """One line: values per frame, optional ± band (standard error)."""

    label: str
    values: Sequence[float | None]
    band: Sequence[float | None] | None = None


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (steps of 1, 2, 2.5 or 5 × 10^k)."""
    if not high > low:
        high = low + 1.0
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first, last = math.floor(low / step), math.ceil(high / step)
    return [round(k * step, 10) for k in range(first, last + 1)]


def plot_curves(
    curves: Sequence[Curve],
    path: str | os.PathLike,
    title: str,
    ylabel: str,
    first_frame: int = 1,
    x_labels: Sequence[str] | None = None,
    xlabel: str = "frame",
) -> Path:
    """Draw curves over frames first_frame, first_frame+1, ... into a PNG at `path`.

    `x_labels` names the points instead (a categorical axis, e.g. decoding steps 1, 2, 4,
    8, 16 evenly spaced). Non-finite points (e.g. the +inf PSNR of a perfect prediction)
    are left out.
    """
    ticks = _y_ticks(curves)
    y_low, y_high = ticks[0], ticks[-1]
    frames = max((len(c.values) for c in curves), default=1)
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image, "RGBA")
    font, small = ImageFont.load_default(size=16), ImageFont.load_default(size=12)
    left, right, top, bottom = MARGIN_LEFT, WIDTH - MARGIN_RIGHT, MARGIN_TOP, HEIGHT - MARGIN_BOTTOM

    def x_of(i: int) -> float:
        return left + (right - left) * (i / max(frames - 1, 1))

    def y_of(v: float) -> float:
        return bottom - (bottom - top) * (v - y_low) / (y_high - y_low)

    for tick in ticks:  # horizontal grid + y labels
        y = y_of(tick)
        draw.line([(left, y), (right, y)], fill=(230, 230, 230))
        draw.text((left - 6, y), f"{tick:g}", fill="black", font=small, anchor="rm")
    step = max(1, math.ceil(frames / 12))
    for i in range(0, frames, step):  # x labels
        label = x_labels[i] if x_labels is not None else str(first_frame + i)
        draw.text((x_of(i), bottom + 6), label, fill="black", font=small, anchor="mt")
    draw.rectangle([left, top, right, bottom], outline="black")
    draw.text(((left + right) / 2, 8), title, fill="black", font=font, anchor="mt")
    draw.text(((left + right) / 2, HEIGHT - 8), xlabel, fill="black", font=small, anchor="mb")
    draw.text((left, top - 6), ylabel, fill="black", font=small, anchor="rb")

    # Legend entries sit side by side, each as wide as its label, spread over the plot's
    # width when they fit (a fixed pitch cut off the fourth of four labels).
    widths = [30 + draw.textlength(curve.label, font=small) for curve in curves]
    gap = max(12.0, min(170.0 - max(widths, default=0.0), (right - left - 20 - sum(widths)) / max(len(curves), 1)))
    for index, curve in enumerate(curves):
        colour = COLOURS[index % len(COLOURS)]
        _draw_curve(draw, curve, colour, x_of, y_of)
        legend_x, legend_y = left + 20 + sum(widths[:index]) + gap * index, top - 16
        draw.line([(legend_x, legend_y), (legend_x + 25, legend_y)], fill=colour, width=3)
        draw.text((legend_x + 30, legend_y), curve.label, fill="black", font=small, anchor="lm")
    return atomic_write(path, lambda f: image.save(f, format="PNG"))


def _y_ticks(curves: Sequence[Curve]) -> list[float]:
    """Y ticks covering every finite point (and band) with a little room around them."""
    points: list[float] = []
    for curve in curves:
        band = _finite(curve.band) if curve.band is not None else [None] * len(curve.values)
        for value, spread in zip(_finite(curve.values), band, strict=True):
            if value is not None:
                points += [value] if spread is None else [value - spread, value + spread]
    low, high = (min(points), max(points)) if points else (0.0, 1.0)
    pad = (high - low) * 0.08 or abs(high) * 0.05 or 1.0
    # Metrics that cannot be negative (SSIM of real frames, LPIPS) keep their axis at >= 0.
    return nice_ticks(max(low - pad, 0.0) if low >= 0 else low - pad, high + pad)


def _draw_curve(draw: ImageDraw.ImageDraw, curve: Curve, colour: tuple[int, int, int],
                x_of: Callable[[int], float], y_of: Callable[[float], float]) -> None:
    """One curve: its band (translucent), its line and a dot per finite point."""
    values = _finite(curve.values)
    if curve.band is not None:
        pairs = [(i, v, s) for i, (v, s) in enumerate(zip(values, _finite(curve.band), strict=True))
                 if v is not None and s is not None]
        upper = [(x_of(i), y_of(v + s)) for i, v, s in pairs]
        lower = [(x_of(i), y_of(v - s)) for i, v, s in pairs]
        if len(upper) >= 2:
            draw.polygon(upper + lower[::-1], fill=(*colour, 50))
    line = [(x_of(i), y_of(v)) for i, v in enumerate(values) if v is not None]
    if len(line) >= 2:
        draw.line(line, fill=colour, width=3)
    for x, y in line:
        draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)


def _finite(values: Sequence[float | None]) -> list[float | None]:
    return [v if v is not None and math.isfinite(v) else None for v in values]
