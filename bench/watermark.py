"""bench/watermark: how visible Framecast's watermark is, how fast, and what it survives.

For a short synthetic clip (moving shapes on gradients, with sensor-like noise) at each
size Framecast makes, marks it (safety/watermark.py), encodes it the way the worker does
(H.264 CRF 20, yuv420p), then attacks the MP4 and reads the mark back. Prints PSNR of
marked against original frames, marking time per frame, and for each attack the bit
accuracy (share of the 56 payload bits read right, all frames' votes combined) and
whether the identifier was recovered (CRC valid and equal).

Attacks, each applied to the platform's MP4 and encoded again:
  h264       the platform's own encode only
  crf28      decoded and re-encoded at CRF 28 (about a third of the bitrate)
  crf35      re-encoded at CRF 35 (heavy compression)
  half       downscaled to half width and height, CRF 23
  crop10     10% of each dimension cut off (5% per edge), CRF 23
  crop20     20% cut off (10% per edge), CRF 23
  brighter   +12 levels of brightness, CRF 23

With --compare (invisible-watermark installed), the same clip and attacks for its dwtDct
method (32-bit payload, majority vote over frames), where the frame is at least 256×256.

    .venv/bin/python bench/watermark.py [--frames 17] [--compare]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from gpu_workers.encode import decode_frames, encode_mp4  # noqa: E402
from safety import watermark  # noqa: E402

SIZES = [(480, 832), (256, 256), (128, 128), (48, 64), (32, 32)]
PLATFORM_CRF = 20


def test_clip(frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth gradients, a moving disc and a moving bar, with a little noise: flat areas
    (where marks show) and edges (where codecs spend bits)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    clip = []
    for t in range(frames):
        image = np.empty((height, width, 3), np.float32)
        image[..., 0] = 120 + 80 * np.sin(x / width * 3 + t * 0.2)
        image[..., 1] = 100 + 60 * np.cos(y / height * 4 - t * 0.1)
        image[..., 2] = 60 + 40 * np.sin((x + y) / (width + height) * 6)
        cx, cy, r = width * (0.3 + 0.03 * t), height * 0.5, min(height, width) / 5
        image[(x - cx) ** 2 + (y - cy) ** 2 < r**2] = (230, 40, 40)
        bar = int(width * (0.8 - 0.02 * t))
        image[:, bar : bar + max(2, width // 20)] = (20, 20, 30)
        image += rng.normal(0, 3, image.shape)
        clip.append(np.clip(image, 0, 255).astype(np.uint8))
    return np.stack(clip)


def _even(frames: np.ndarray) -> np.ndarray:
    height, width = frames.shape[1:3]
    return np.ascontiguousarray(frames[:, : height // 2 * 2, : width // 2 * 2])


def _resize(frames: np.ndarray, scale: float) -> np.ndarray:
    height, width = frames.shape[1:3]
    size = (max(8, round(width * scale)), max(8, round(height * scale)))
    return np.stack([np.asarray(Image.fromarray(frame).resize(size, Image.Resampling.BILINEAR)) for frame in frames])


def _crop(frames: np.ndarray, fraction: float) -> np.ndarray:
    height, width = frames.shape[1:3]
    dy, dx = round(height * fraction / 2), round(width * fraction / 2)
    return frames[:, dy : height - dy, dx : width - dx]


def _brighter(frames: np.ndarray, levels: int) -> np.ndarray:
    return np.clip(frames.astype(np.int16) + levels, 0, 255).astype(np.uint8)


# name → (change to the decoded frames, CRF of the new encode); None: the platform MP4 as is.
ATTACKS = {
    "h264": None,
    "crf28": (lambda f: f, 28),
    "crf35": (lambda f: f, 35),
    "half": (lambda f: _resize(f, 0.5), 23),
    "crop10": (lambda f: _crop(f, 0.10), 23),
    "crop20": (lambda f: _crop(f, 0.20), 23),
    "brighter": (lambda f: _brighter(f, 12), 23),
}


def attacked(platform_mp4: bytes, attack: str, fps: int = 16) -> np.ndarray:
    """The frames a viewer of the attacked copy would decode."""
    decoded = decode_frames(platform_mp4)
    if ATTACKS[attack] is None:
        return decoded
    change, crf = ATTACKS[attack]
    return decode_frames(encode_mp4(_even(change(decoded)), fps=fps, crf=crf))


def framecast_figures(clip: np.ndarray, mark_ids: list[int]) -> dict:
    """PSNR and marking time, and per attack: mean bit accuracy and how many of the marks
    were recovered."""
    psnrs, embed_ms, read_ms = [], [], []
    results = {attack: [] for attack in ATTACKS}
    for mark_id in mark_ids:
        started = time.perf_counter()
        marked = watermark.embed(clip, mark_id)
        embed_ms.append((time.perf_counter() - started) * 1000 / len(clip))
        psnrs.append(watermark.psnr(clip, marked))
        platform_mp4 = encode_mp4(marked, fps=16, crf=PLATFORM_CRF)
        for attack in ATTACKS:
            frames = attacked(platform_mp4, attack)
            started = time.perf_counter()
            reading = watermark.read(frames)
            read_ms.append((time.perf_counter() - started) * 1000)
            accuracy = float(np.mean(reading.bits == watermark.payload_bits(mark_id)))
            results[attack].append((accuracy, reading.mark_id == mark_id))
    unmarked = watermark.read(decode_frames(encode_mp4(clip, fps=16, crf=PLATFORM_CRF)))
    return {
        "psnr": min(psnrs),
        "embed_ms": float(np.mean(embed_ms)),
        "read_ms": float(np.median(read_ms)),
        "attacks": {
            attack: (float(np.mean([a for a, _ in found])), sum(ok for _, ok in found), len(found))
            for attack, found in results.items()
        },
        "unmarked_false_positive": unmarked.mark_id is not None,
    }


def imwatermark_figures(clip: np.ndarray, mark_id: int) -> dict | None:
    try:
        from imwatermark import WatermarkDecoder, WatermarkEncoder
    except ImportError:
        return None
    import cv2

    encoder = WatermarkEncoder()
    encoder.set_watermark("bits", [int(b) for b in format(mark_id, "032b")])
    started = time.perf_counter()
    # imwatermark works on BGR frames.
    marked = np.stack([encoder.encode(frame[..., ::-1].copy(), "dwtDct")[..., ::-1] for frame in clip])
    embed_ms = (time.perf_counter() - started) * 1000 / len(clip)
    platform_mp4 = encode_mp4(np.ascontiguousarray(marked), fps=16, crf=PLATFORM_CRF)
    decoder = WatermarkDecoder("bits", 32)
    expected = np.array([int(b) for b in format(mark_id, "032b")])
    figures = {"psnr": watermark.psnr(clip, marked), "embed_ms": embed_ms, "attacks": {}}
    for attack in ATTACKS:
        frames = attacked(platform_mp4, attack)
        votes = []
        for frame in frames:
            try:
                votes.append(np.array(decoder.decode(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), "dwtDct"), dtype=float))
            except Exception:  # noqa: BLE001 - too small after the attack
                votes.append(np.full(32, 0.5))
        bits = (np.mean(votes, axis=0) > 0.5).astype(int)
        accuracy = float(np.mean(bits == expected))
        figures["attacks"][attack] = (accuracy, int(accuracy == 1.0), 1)
    return figures


def _print(label: str, figures: dict) -> None:
    cells = "  ".join(
        f"{name} {acc * 100:5.1f}% {found}/{total}" for name, (acc, found, total) in figures["attacks"].items()
    )
    print(f"{label:<26} PSNR {figures['psnr']:4.1f} dB  mark {figures['embed_ms']:5.1f} ms/frame  {cells}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=17)
    parser.add_argument("--marks", type=int, default=5, help="random identifiers tried per size")
    parser.add_argument("--compare", action="store_true", help="also measure invisible-watermark's dwtDct")
    args = parser.parse_args()
    mark_ids = [int(x) for x in np.random.default_rng(2026).integers(1, 2**32, args.marks)]
    print(f"{args.frames} frames per clip, {args.marks} identifiers: per attack, mean bit accuracy and "
          "identifiers recovered\n")
    for height, width in SIZES:
        clip = test_clip(args.frames, height, width)
        figures = framecast_figures(clip, mark_ids)
        _print(f"framecast {width}x{height}", figures)
        print(f"{'':<26} read {figures['read_ms']:.0f} ms per clip (median); unmarked clip read as marked: "
              f"{figures['unmarked_false_positive']}")
        if args.compare and min(height, width) >= 256:
            theirs = imwatermark_figures(clip, mark_ids[0])
            if theirs is None:
                print("(invisible-watermark not installed: pip install invisible-watermark)")
            else:
                _print(f"imwatermark dwtDct {width}x{height}", theirs)


if __name__ == "__main__":
    main()
