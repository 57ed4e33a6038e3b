"""Framecast's invisible video watermark: a 32-bit identifier in every frame.

Plain numpy and Pillow, so the GPU worker (which marks) and the web tier (whose verifier
reads marks) share one module; invisible-watermark would pull torch into the web tier,
and its dwtDct needs frames of at least 256×256 while Framecast's models make 32-256
pixel videos. README "Provenance and safety" has the measured figures of both.

The scheme keeps the robust core of DWT-DCT watermarking — quantisation index modulation
(QIM) of the lowest frequency of each block — and makes it independent of the frame size:

- A frame is seen as a G × G grid of blocks stretched over the whole picture: G = 16, or
  fewer for small frames (blocks of at least 8 pixels: 6 × 6 for 64×48). The payload
  (identifier + CRC-24, 56 bits) is spread over the blocks by a fixed pseudo-random
  order; when a frame has fewer blocks than bits, consecutive frames carry the rest.
- A block carries its bit in its mean luminance (the DC coefficient of the DCT of the
  DWT's approximation band): the mean moves to the nearest point of the bit's lattice
  (step STEP, dithered per block). The change is shaped by a window that fades out at
  the block's edges, so no block edges appear.
- Reading averages each block, turns the distance to the two lattices into a soft vote,
  and sums the votes of every block and frame of a bit. A wrong CRC means "no mark".

Block means survive H.264 (it quantises detail, not averages), re-encoding, scaling (the
grid is relative to the picture) and global brightness shifts (the reader searches the
offset). A crop shifts the grid: the reader tries centred crops of up to 20%
(CROP_HYPOTHESES); other crops, rotation, flips, strong contrast changes, and — for
videos under 56 blocks a frame — dropped or trimmed frames remove the mark.
"""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image

VERSION = 1
MAX_GRID = 16  # blocks per side
MIN_BLOCK_PIXELS = 8  # small frames get fewer, larger blocks
MIN_GRID = 4
ID_BITS = 32
CRC_BITS = 24
PAYLOAD_BITS = ID_BITS + CRC_BITS
# Lattice step in luminance levels (0-255): a block's mean moves by at most STEP / 2.
# 7 keeps PSNR near 40 dB (the limit is 38); see bench/watermark.py.
STEP = 7.0
# Visible fraction of the original picture (centred) that the reader tries, in order.
CROP_HYPOTHESES = (1.0, 0.95, 0.9, 0.85, 0.8)
# Global luminance offsets the reader tries per grid and crop (the strongest ones).
OFFSETS_TRIED = 4
# When the CRC fails, the reader also tries flipping one or two of this many least certain bits.
WEAK_BITS = 6
# The reader looks at up to this many frames.
MAX_READ_FRAMES = 48
# The window's peak over its mean (Tukey α = 0.5 in both directions, about 1.8).
_WINDOW_PEAK = 1.8

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def grid_for(height: int, width: int) -> int:
    return int(min(MAX_GRID, max(MIN_GRID, min(height, width) // MIN_BLOCK_PIXELS)))


# Every grid a Framecast video can have (sides are multiples of 16 from 32 up).
GRIDS = tuple(sorted({grid_for(side, side) for side in range(32, 257, 16)}, reverse=True))


@dataclass(frozen=True)
class Layout:
    """Which payload bit each block carries in each frame, and each block's dither.
    Fixed and public: the scheme needs no secret (the identifier is random and means
    something only to Framecast's records)."""

    grid: int
    order: np.ndarray  # (grid, grid): the block's place in the payload sequence
    dither: np.ndarray  # (grid, grid)

    @property
    def frames_per_payload(self) -> int:
        return -(-PAYLOAD_BITS // (self.grid * self.grid))

    def bits_of(self, frame_index: int) -> np.ndarray:
        """Payload bit index of each block in frame `frame_index`."""
        if self.frames_per_payload == 1:
            return self.order % PAYLOAD_BITS
        return (self.order + frame_index * self.grid * self.grid) % PAYLOAD_BITS


@lru_cache(maxsize=None)
def layout(grid: int) -> Layout:
    """Blocks take payload places from the centre outwards, PAYLOAD_BITS at a time in a
    shuffled order: the central blocks alone carry every bit, so crops lose no bit."""
    rng = np.random.default_rng([0xF4A3EC, grid])
    centre = (grid - 1) / 2
    rows, cols = np.mgrid[0:grid, 0:grid]
    distance = np.maximum(np.abs(rows - centre), np.abs(cols - centre)) + rng.uniform(0, 0.5, (grid, grid))
    by_distance = np.argsort(distance.ravel(), kind="stable")
    order = np.empty(grid * grid, dtype=int)
    for start in range(0, grid * grid, PAYLOAD_BITS):
        chunk = by_distance[start : start + PAYLOAD_BITS]
        order[chunk] = start + rng.permutation(PAYLOAD_BITS)[: len(chunk)] if len(chunk) == PAYLOAD_BITS else start + rng.permutation(len(chunk))
    return Layout(grid, order.reshape(grid, grid), rng.uniform(0, STEP, size=(grid, grid)))


def new_mark_id() -> int:
    """A random, non-zero 32-bit identifier."""
    return secrets.randbelow(2**ID_BITS - 1) + 1


def _crc24(data: bytes) -> int:
    """CRC-24/OPENPGP."""
    crc = 0xB704CE
    for byte in data:
        crc ^= byte << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    return crc & 0xFFFFFF


def _check(mark_id: int) -> int:
    return _crc24(bytes([VERSION]) + mark_id.to_bytes(4, "big"))


def payload_bits(mark_id: int) -> np.ndarray:
    if not 0 < mark_id < 2**ID_BITS:
        raise ValueError(f"mark_id must be a non-zero 32-bit integer, got {mark_id}")
    value = (mark_id << CRC_BITS) | _check(mark_id)
    return np.array([(value >> (PAYLOAD_BITS - 1 - i)) & 1 for i in range(PAYLOAD_BITS)], dtype=np.uint8)


def _bits_to_id(bits: np.ndarray) -> int | None:
    value = int("".join(str(int(b)) for b in bits), 2)
    mark_id, check = value >> CRC_BITS, value & (2**CRC_BITS - 1)
    return mark_id if mark_id and _check(mark_id) == check else None


# --- embedding -------------------------------------------------------------------------


def _luma(frame: np.ndarray) -> np.ndarray:
    return frame.astype(np.float32) @ _LUMA


def _block_means(luma: np.ndarray, blocks: int, box=None) -> np.ndarray:
    """Mean of each block (exact area averages, fractional block edges included)."""
    image = Image.fromarray(np.ascontiguousarray(luma, dtype=np.float32))
    return np.asarray(image.resize((blocks, blocks), Image.Resampling.BOX, box=box), dtype=np.float64)


def _window(n: int, grid: int) -> tuple[np.ndarray, np.ndarray]:
    """For n pixels along one side: each pixel's block and a Tukey (α = 0.5) weight that
    is flat in the block's middle and fades towards the block's edges."""
    position = (np.arange(n) + 0.5) * grid / n
    index = np.minimum(position.astype(int), grid - 1)
    u = position - index
    taper = 0.25
    weight = np.ones(n)
    low, high = u < taper, u > 1 - taper
    weight[low] = 0.5 - 0.5 * np.cos(np.pi * u[low] / taper)
    weight[high] = 0.5 - 0.5 * np.cos(np.pi * (1 - u[high]) / taper)
    return index, weight


def _shaped(delta: np.ndarray, height: int, width: int) -> np.ndarray:
    """A luminance change whose block means are `delta` (one value per block)."""
    grid = delta.shape[0]
    iy, wy = _window(height, grid)
    ix, wx = _window(width, grid)
    # Divide by the window's mean in each block, so the block's mean moves by delta.
    my = np.bincount(iy, wy, grid) / np.bincount(iy, minlength=grid)
    mx = np.bincount(ix, wx, grid) / np.bincount(ix, minlength=grid)
    gain = delta / np.outer(my, mx)
    return gain[iy][:, ix] * np.outer(wy, wx)


def _targets(means, bits, lows, highs, dither) -> np.ndarray:
    """Each block's nearest lattice point for its bit, one step further inwards where
    the change would push the block's darkest or brightest pixels out of 0-255."""
    offset = bits * 0.5  # bit 1: the lattice shifted by half a step
    target = (np.round((means + dither) / STEP - offset) + offset) * STEP - dither
    change = target - means
    target = np.where((lows + _WINDOW_PEAK * change < 0) & (change < 0), target + STEP, target)
    target = np.where((highs + _WINDOW_PEAK * change > 255) & (change > 0), target - STEP, target)
    return target


def embed_frame(frame: np.ndarray, bits: np.ndarray, index: int = 0) -> np.ndarray:
    """One uint8 RGB frame (h, w, 3), frame number `index` of its clip, with the payload
    `bits` marked in."""
    height, width = frame.shape[:2]
    plan = layout(grid_for(height, width))
    luma = _luma(frame)
    starts_y = np.searchsorted(_window(height, plan.grid)[0], np.arange(plan.grid))
    starts_x = np.searchsorted(_window(width, plan.grid)[0], np.arange(plan.grid))
    lows = np.minimum.reduceat(np.minimum.reduceat(luma, starts_y, axis=0), starts_x, axis=1)
    highs = np.maximum.reduceat(np.maximum.reduceat(luma, starts_y, axis=0), starts_x, axis=1)
    target = _targets(_block_means(luma, plan.grid), bits[plan.bits_of(index)], lows, highs, plan.dither)
    marked = frame.astype(np.float32)
    # Rounding to 8 bits and clipping move the means a little: correct once more.
    for _ in range(2):
        change = target - _block_means(_luma(np.clip(np.rint(marked), 0, 255)), plan.grid)
        marked += _shaped(change, height, width)[..., None].astype(np.float32)
    return np.clip(np.rint(marked), 0, 255).astype(np.uint8)


def embed(frames: np.ndarray, mark_id: int) -> np.ndarray:
    """Mark every frame of a uint8 RGB clip (n, h, w, 3) with `mark_id`."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 RGB (n, h, w, 3), got {frames.dtype} {frames.shape}")
    if min(frames.shape[1:3]) < MIN_GRID * 2:
        raise ValueError(f"frames of {frames.shape[2]}×{frames.shape[1]} pixels are too small to carry a mark")
    bits = payload_bits(mark_id)
    return np.stack([embed_frame(frame, bits, index) for index, frame in enumerate(frames)])


# --- reading ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    """What the reader found. `mark_id` is None when no valid mark was found."""

    mark_id: int | None
    bits: np.ndarray  # the 56 payload bits decided by the votes
    agreement: float  # share of block votes agreeing with the decided bits (0.5 = noise)
    grid: int
    crop: float  # the crop hypothesis that read it (visible fraction)
    frames_read: int

    @property
    def confidence(self) -> float:
        """How sure a found mark is, 0-1: the votes' agreement rescaled (0.5 → 0, 1 → 1)."""
        return 0.0 if self.mark_id is None else max(0.0, min(1.0, 2 * self.agreement - 1))


def _reduced(luma: np.ndarray, longest: int = 320) -> np.ndarray:
    """Area-averaged down to `longest` pixels: block means barely change, reading gets fast."""
    height, width = luma.shape
    factor = max(height, width) / longest
    if factor <= 1:
        return luma
    size = (max(1, round(width / factor)), max(1, round(height / factor)))
    return np.asarray(Image.fromarray(np.ascontiguousarray(luma)).resize(size, Image.Resampling.BOX))


def _visible(luma: np.ndarray, grid: int, crop: float):
    """Block means and their rows/columns in the grid, for the blocks wholly visible
    under a centred crop that left `crop` of the original picture."""
    height, width = luma.shape
    margin = (1 - crop) / 2  # cropped off each side, as a fraction of the original
    first = int(np.ceil(grid * margin - 1e-9))
    last = grid - first  # exclusive
    if last - first < 2:
        return None
    box = (
        max((first / grid - margin) * width / crop, 0),
        max((first / grid - margin) * height / crop, 0),
        min((last / grid - margin) * width / crop, width),
        min((last / grid - margin) * height / crop, height),
    )
    return _block_means(luma, last - first, box=box), slice(first, last)


def _decide(observed, plan: Layout, offset: float):
    """Bits, vote agreement and total vote strength for a global luminance offset."""
    sums = np.zeros(PAYLOAD_BITS)
    votes_and_bits = []
    for index, (means, part) in observed:
        votes = np.cos(2 * np.pi * (means + plan.dither[part, part] + offset) / STEP).ravel()
        bit_index = plan.bits_of(index)[part, part].ravel()
        np.add.at(sums, bit_index, votes)
        votes_and_bits.append((votes, bit_index))
    bits = (sums < 0).astype(np.uint8)
    agreeing = sum(int(np.sum((votes < 0) == bits[bit_index].astype(bool))) for votes, bit_index in votes_and_bits)
    total = sum(len(votes) for votes, _ in votes_and_bits)
    return bits, agreeing / max(total, 1), float(np.abs(sums).sum()), sums


def _corrected_id(bits: np.ndarray, sums: np.ndarray) -> int | None:
    """The identifier, if the bits or the bits with one or two of the WEAK_BITS least
    certain ones flipped pass the CRC (Chase decoding: weak votes are the likeliest wrong)."""
    mark_id = _bits_to_id(bits)
    if mark_id is not None:
        return mark_id
    weakest = np.argsort(np.abs(sums), kind="stable")[:WEAK_BITS]
    for count in (1, 2):
        for flipped in itertools.combinations(weakest, count):
            trial = bits.copy()
            trial[list(flipped)] ^= 1
            if (mark_id := _bits_to_id(trial)) is not None:
                return mark_id
    return None


def read(frames: np.ndarray) -> Reading:
    """Look for a mark in uint8 RGB frames (n, h, w, 3) of any size, in clip order.

    Tried: every grid a Framecast video can have (a scaled copy's size no longer tells),
    centred crops, and global luminance offsets: each encode and decode through yuv420p
    darkens a picture by about 1.3 levels (rounding in the colour conversion), and people
    brighten or darken videos. With up to two weak bits corrected per hypothesis, about
    len(GRIDS) × CROP_HYPOTHESES × OFFSETS_TRIED × 22 / 2^24 ≈ 1 in 5,000 unmarked videos
    pass the CRC by chance; such an identifier must then also be one Framecast issued
    (a 32-bit random number) to be reported as a Framecast video.

    `Reading.bits` are the bits as voted, before any correction (the benchmark's figure)."""
    indices = np.arange(len(frames))
    if len(frames) > MAX_READ_FRAMES:
        indices = indices[:MAX_READ_FRAMES]  # consecutive: small grids spread bits over frames
    lumas = [(int(index), _reduced(_luma(frames[index]))) for index in indices]
    best: Reading | None = None
    for grid in GRIDS:
        plan = layout(grid)
        for crop in CROP_HYPOTHESES:
            observed = [(index, found) for index, luma in lumas if (found := _visible(luma, grid, crop)) is not None]
            if not observed:
                continue
            candidates = sorted(
                (_decide(observed, plan, offset) for offset in np.arange(16) * STEP / 16), key=lambda found: -found[2]
            )[:OFFSETS_TRIED]
            for bits, agreement, _, sums in candidates:
                reading = Reading(_corrected_id(bits, sums), bits, agreement, grid, crop, len(lumas))
                if reading.mark_id is not None:
                    return reading
                if best is None or reading.agreement > best.agreement:
                    best = reading
    return best or Reading(None, np.zeros(PAYLOAD_BITS, dtype=np.uint8), 0.5, 0, 1.0, len(lumas))


def bit_accuracy(frames: np.ndarray, mark_id: int) -> float:
    """Share of the 56 payload bits read correctly (votes of all frames combined): the
    benchmark's figure. Without a valid mark, the most consistent hypothesis's bits."""
    return float(np.mean(read(frames).bits == payload_bits(mark_id)))


def psnr(original: np.ndarray, marked: np.ndarray) -> float:
    mse = np.mean((original.astype(np.float64) - marked.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))
