"""The synthetic world the toy model is trained on: one flat shape sliding across a plain
background, and the plain-English caption that describes it.

Pure numpy (no torch), deterministic for a given seed: the training command, the judge and
the tests all draw scenes from here, so they agree on what "a blue square" looks like.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

# RGB of each word. Shape colours are far apart from each other and from every background
# (the judge classifies by the nearest palette entry, so ambiguity here would be ours).
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "orange": (245, 140, 20),
    "yellow": (240, 220, 30),
    "green": (30, 170, 50),
    "blue": (30, 70, 230),
    "purple": (150, 40, 200),
}
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "white": (255, 255, 255),
    "black": (0, 0, 0),
    "gray": (128, 128, 128),
}
SHAPES = ("circle", "square", "triangle")
# Unit direction of travel in image coordinates (x right, y down).
MOTIONS: dict[str, tuple[int, int]] = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}

# Colour–motion pairs never shown in training (any shape, any background), to test that the
# model composes words it has only seen apart. Every colour keeps three seen motions and
# every motion stays seen with at least four colours.
HELD_OUT_PAIRS: frozenset[tuple[str, str]] = frozenset(
    {
        ("red", "up"),
        ("orange", "left"),
        ("yellow", "down"),
        ("green", "right"),
        ("blue", "down"),
        ("purple", "left"),
    }
)

NATIVE_SIZE = 32  # frames are NATIVE_SIZE × NATIVE_SIZE at training time
NATIVE_FRAMES = 9
# In units of the frame side: the shape's size and how far it travels over the clip.
SHAPE_FRACTION = 14 / 32
TRAVEL_FRACTION = 10 / 32
_SUPERSAMPLE = 4  # anti-aliased edges: each pixel averages 4×4 sub-pixel samples


@dataclass(frozen=True)
class Scene:
    colour: str
    shape: str
    motion: str
    background: str

    @property
    def caption(self) -> str:
        return f"a {self.colour} {self.shape} moving {self.motion} on a {self.background} background"

    @property
    def held_out(self) -> bool:
        return (self.colour, self.motion) in HELD_OUT_PAIRS


def all_scenes() -> list[Scene]:
    return [Scene(c, s, m, b) for c, s, m, b in itertools.product(COLOURS, SHAPES, MOTIONS, BACKGROUNDS)]


def seen_scenes() -> list[Scene]:
    """The scenes training may use."""
    return [scene for scene in all_scenes() if not scene.held_out]


def held_out_scenes() -> list[Scene]:
    return [scene for scene in all_scenes() if scene.held_out]


def shape_alpha(shape: str, cx: float, cy: float, size: float, height: int, width: int) -> np.ndarray:
    """Coverage in [0, 1] of each pixel by `shape`, centred (bounding box) at (cx, cy) in
    pixel units (pixel i spans [i, i+1)), `size` pixels wide and tall."""
    n = _SUPERSAMPLE
    ys = (np.arange(height * n) + 0.5) / n
    xs = (np.arange(width * n) + 0.5) / n
    x, y = np.meshgrid(xs, ys)
    half = size / 2
    if shape == "square":
        inside = (np.abs(x - cx) <= half) & (np.abs(y - cy) <= half)
    elif shape == "circle":
        inside = (x - cx) ** 2 + (y - cy) ** 2 <= half**2
    elif shape == "triangle":
        # Pointing up: apex at the top centre, base along the bottom of the box.
        top, bottom = cy - half, cy + half
        along = (y - top) / size  # 0 at the apex, 1 at the base
        inside = (y >= top) & (y <= bottom) & (np.abs(x - cx) <= along * half)
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return inside.reshape(height, n, width, n).mean(axis=(1, 3))


def render(
    scene: Scene, *, start: tuple[float, float], size: int = NATIVE_SIZE, frames: int = NATIVE_FRAMES
) -> tuple[np.ndarray, np.ndarray]:
    """The clip as uint8 (frames, size, size, 3) and the shape's coverage (frames, size, size).
    `start` is the shape's centre in the first frame, in units of the frame side."""
    shape_px = SHAPE_FRACTION * size
    travel_px = TRAVEL_FRACTION * size
    dx, dy = MOTIONS[scene.motion]
    fg = np.array(COLOURS[scene.colour], dtype=np.float32)
    bg = np.array(BACKGROUNDS[scene.background], dtype=np.float32)
    video = np.empty((frames, size, size, 3), dtype=np.uint8)
    alphas = np.empty((frames, size, size), dtype=np.float32)
    for i in range(frames):
        progress = i / max(frames - 1, 1)
        cx = start[0] * size + dx * travel_px * progress
        cy = start[1] * size + dy * travel_px * progress
        alpha = shape_alpha(scene.shape, cx, cy, shape_px, size, size)
        alphas[i] = alpha
        video[i] = np.rint(bg + (fg - bg) * alpha[..., None]).astype(np.uint8)
    return video, alphas


def random_start(scene: Scene, rng: np.random.Generator) -> tuple[float, float]:
    """A first-frame centre that keeps the whole shape inside the frame for the whole clip
    (one pixel of margin at the native size)."""
    half = SHAPE_FRACTION / 2 + 1 / NATIVE_SIZE
    dx, dy = MOTIONS[scene.motion]

    def axis(direction: int) -> float:
        if direction == 0:
            return float(rng.uniform(half, 1 - half))
        low, high = half, 1 - half - TRAVEL_FRACTION
        value = float(rng.uniform(low, high))
        return value if direction > 0 else 1 - value

    return axis(dx), axis(dy)


def sample_clips(
    scenes: list[Scene], count: int, *, seed: int, size: int = NATIVE_SIZE, frames: int = NATIVE_FRAMES
) -> tuple[np.ndarray, np.ndarray, list[Scene]]:
    """`count` random clips of the given scenes (uniformly), deterministic for `seed`:
    uint8 videos (count, frames, size, size, 3), coverages (count, frames, size, size), scenes."""
    rng = np.random.default_rng(seed)
    videos = np.empty((count, frames, size, size, 3), dtype=np.uint8)
    alphas = np.empty((count, frames, size, size), dtype=np.float32)
    chosen: list[Scene] = []
    for i in range(count):
        scene = scenes[int(rng.integers(len(scenes)))]
        videos[i], alphas[i] = render(scene, start=random_start(scene, rng), size=size, frames=frames)
        chosen.append(scene)
    return videos, alphas, chosen
