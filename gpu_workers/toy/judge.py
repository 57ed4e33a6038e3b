"""An automatic, classical judge of toy-world videos: what background, what colour, what
shape, moving which way. Deterministic, numpy only.

It works on any frame size at or above the native one and tolerates what the platform does
to a video on the way out (upscaling for display, an invisible watermark, H.264's yuv420p
chroma subsampling): frames are first box-downscaled to the native size, which averages
that noise away, and every decision is relative (nearest palette entry, best-fitting
shape template) rather than an exact colour match.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from . import world

MIN_TRAVEL = 1.5  # native pixels the centroid must move for a direction (else "none")


@dataclass(frozen=True)
class Verdict:
    background: str
    colour: str
    shape: str
    motion: str
    # How far the shape's centroid moved, in native pixels (x right, y down).
    travel: tuple[float, float] = (0.0, 0.0)
    # Mean template error per shape (lower fits better), for diagnostics.
    shape_errors: dict[str, float] = field(default_factory=dict, compare=False)

    def agrees_with(self, scene: world.Scene) -> dict[str, bool]:
        return {
            "background": self.background == scene.background,
            "colour": self.colour == scene.colour,
            "shape": self.shape == scene.shape,
            "motion": self.motion == scene.motion,
        }


def _to_native(frames: np.ndarray, size: int) -> np.ndarray:
    """(T, H, W, 3) uint8 -> (T, size, size, 3) float32 by box (area) averaging."""
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected frames of shape (T, H, W, 3), got {frames.shape}")
    t, h, w, _ = frames.shape
    if h < size or w < size:
        raise ValueError(f"frames are {w}x{h}; the judge needs at least {size}x{size}")
    if (h, w) == (size, size):
        return frames.astype(np.float32)
    out = [np.asarray(Image.fromarray(f).resize((size, size), Image.Resampling.BOX), dtype=np.float32) for f in frames]
    return np.stack(out)


def _nearest(rgb: np.ndarray, palette: dict[str, tuple[int, int, int]]) -> str:
    names = list(palette)
    distances = [np.linalg.norm(rgb - np.array(palette[name], dtype=np.float32)) for name in names]
    return names[int(np.argmin(distances))]


def _border(video: np.ndarray) -> np.ndarray:
    return np.concatenate(
        [video[:, 0].reshape(-1, 3), video[:, -1].reshape(-1, 3), video[:, :, 0].reshape(-1, 3), video[:, :, -1].reshape(-1, 3)]
    )


def _template(shape: str, area: float, mx: float, my: float, size: int) -> np.ndarray:
    """The shape's coverage with the given area and centroid."""
    if shape == "square":
        side = np.sqrt(area)
        return world.shape_alpha("square", mx, my, side, size, size)
    if shape == "circle":
        side = np.sqrt(4 * area / np.pi)
        return world.shape_alpha("circle", mx, my, side, size, size)
    side = np.sqrt(2 * area)  # triangle: base = height = side; centroid 2/3 of the way down
    return world.shape_alpha("triangle", mx, my - side / 6, side, size, size)


def judge(frames: np.ndarray, *, native_size: int = world.NATIVE_SIZE) -> Verdict:
    """Reads a toy-world video (uint8 frames (T, H, W, 3)) back into words."""
    video = _to_native(np.asarray(frames), native_size)
    bg = np.median(_border(video), axis=0)
    background = _nearest(bg, world.BACKGROUNDS)

    # The shape's colour: the pixels that differ most from the background.
    distance = np.linalg.norm(video - bg, axis=-1)
    strong = distance >= 0.6 * max(float(np.percentile(distance, 99.5)), 1.0)
    if not strong.any():  # nothing but background
        return Verdict(background, "none", "none", "none")
    fg = np.median(video[strong], axis=0)
    colour = _nearest(fg, world.COLOURS)

    # Coverage: how far each pixel is along the way from background to foreground.
    span = fg - bg
    alpha = np.clip(((video - bg) @ span) / max(float(span @ span), 1.0), 0.0, 1.0)
    alpha[alpha < 0.15] = 0.0  # compression ringing and watermark noise are not the shape

    ys, xs = np.mgrid[0:native_size, 0:native_size] + 0.5
    areas = alpha.sum(axis=(1, 2))
    visible = areas > 4.0
    if visible.sum() < 2:
        return Verdict(background, colour, "none", "none")
    cx = (alpha * xs).sum(axis=(1, 2))[visible] / areas[visible]
    cy = (alpha * ys).sum(axis=(1, 2))[visible] / areas[visible]
    # Slope of a straight-line fit over the frames, times the clip's length: robust to one
    # noisy frame at either end.
    index = np.flatnonzero(visible).astype(np.float64)
    span_frames = float(len(alpha) - 1)
    travel_x = float(np.polyfit(index, cx, 1)[0] * span_frames)
    travel_y = float(np.polyfit(index, cy, 1)[0] * span_frames)
    if max(abs(travel_x), abs(travel_y)) < MIN_TRAVEL:
        motion = "none"
    elif abs(travel_x) >= abs(travel_y):
        motion = "right" if travel_x > 0 else "left"
    else:
        motion = "down" if travel_y > 0 else "up"

    errors = {shape: 0.0 for shape in world.SHAPES}
    for a, area, mx, my in zip(alpha[visible], areas[visible], cx, cy):
        for shape in world.SHAPES:
            errors[shape] += float(np.abs(a - _template(shape, area, mx, my, native_size)).sum() / area)
    errors = {shape: error / len(cx) for shape, error in errors.items()}
    shape = min(errors, key=errors.get)
    return Verdict(background, colour, shape, motion, (travel_x, travel_y), errors)


@dataclass
class Scores:
    """Agreement rates (percent) of the judge with the prompts, per attribute."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(("background", "colour", "shape", "motion"), 0))
    total: int = 0

    def add(self, verdict: Verdict, scene: world.Scene) -> None:
        self.total += 1
        for key, ok in verdict.agrees_with(scene).items():
            self.counts[key] += int(ok)

    def percent(self) -> dict[str, float]:
        return {key: 100.0 * count / max(self.total, 1) for key, count in self.counts.items()}

    def __str__(self) -> str:
        return ", ".join(f"{key} {value:.1f}%" for key, value in self.percent().items()) + f" (n={self.total})"
