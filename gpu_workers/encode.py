"""MP4 (H.264) encoding, probing and poster frames for generated clips, with PyAV.

The PyAV wheel bundles its own FFmpeg built with libx264, so no system ffmpeg
is needed.
"""

from __future__ import annotations

import io
import struct
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image

DEFAULT_CRF = 20
DEFAULT_PRESET = "medium"


def _check_frames(frames: Any) -> np.ndarray:
    if not isinstance(frames, np.ndarray):
        raise ValueError(f"frames must be a numpy array, got {type(frames).__name__}")
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must have shape (n, height, width, 3), got {frames.shape}")
    if frames.shape[0] == 0:
        raise ValueError("frames is empty: need at least one frame")
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 RGB, got dtype {frames.dtype}")
    height, width = frames.shape[1:3]
    if height == 0 or width == 0:
        raise ValueError(f"frames have zero size {width}x{height}")
    return frames


# Videos whose short side is below this are stored upscaled by a whole factor: the invisible
# watermark needs blocks of at least 8 px to survive re-encoding by others (safety/watermark.py),
# and players show a 32-pixel video as a thumbnail.
DISPLAY_MIN_SIDE = 128


def upscale_for_display(frames: np.ndarray, min_side: int = DISPLAY_MIN_SIDE) -> np.ndarray:
    """`frames` (n, h, w, 3) enlarged by the smallest whole factor that brings the short side
    to `min_side` or more, each pixel becoming a k×k block (nothing is invented, and scaling
    back down by k gives the generated frames exactly); unchanged if already large enough."""
    frames = _check_frames(frames)
    factor = -(-min_side // min(frames.shape[1:3]))
    if factor <= 1:
        return frames
    return np.repeat(np.repeat(frames, factor, axis=1), factor, axis=2)


def encode_mp4(frames: np.ndarray, fps: int, *, crf: int = DEFAULT_CRF, preset: str = DEFAULT_PRESET) -> bytes:
    """Encodes uint8 RGB frames (n, h, w, 3) as H.264/yuv420p MP4 with the moov atom first.

    The output has exactly n frames at a constant `fps`.
    """
    frames = _check_frames(frames)
    height, width = frames.shape[1:3]
    if width % 2 or height % 2:
        # yuv420p stores chroma at half resolution in both directions.
        raise ValueError(f"width and height must be even for yuv420p H.264, got {width}x{height}")
    if not isinstance(fps, int) or fps < 1:
        raise ValueError(f"fps must be a positive integer, got {fps!r}")

    # +faststart moves moov before mdat at close by re-opening the output by
    # name, which fails on a BytesIO ("No such file or directory: '<none>'"),
    # so encode to a real temporary file.
    with tempfile.TemporaryDirectory(prefix="framecast-encode-") as tmp:
        out = Path(tmp) / "clip.mp4"
        _write_mp4(out, frames, fps, crf=crf, preset=preset)
        return out.read_bytes()


def _write_mp4(out: Path, frames: np.ndarray, fps: int, *, crf: int, preset: str) -> None:
    height, width = frames.shape[1:3]
    time_base = Fraction(1, fps)  # one tick per frame: pts = frame index
    with av.open(str(out), mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        stream.time_base = time_base
        stream.codec_context.time_base = time_base
        stream.options = {"crf": str(crf), "preset": preset}
        for index, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts = index
            frame.time_base = time_base
            container.mux(stream.encode(frame))
        # x264 buffers frames for lookahead/B-frames: flush them, or the tail is lost.
        container.mux(stream.encode(None))


def _top_level_boxes(data: bytes) -> list[str]:
    """Types of the top-level ISO-BMFF boxes, in file order."""
    boxes: list[str] = []
    offset = 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if size == 1:  # 64-bit size follows the type
            if offset + 16 > len(data):
                break
            (size,) = struct.unpack(">Q", data[offset + 8 : offset + 16])
        elif size == 0:  # box extends to end of file
            size = len(data) - offset
        if size < 8:
            break  # corrupt; stop rather than loop forever
        boxes.append(kind.decode("latin-1"))
        offset += size
    return boxes


def is_faststart(data: bytes) -> bool:
    boxes = _top_level_boxes(data)
    return "moov" in boxes and "mdat" in boxes and boxes.index("moov") < boxes.index("mdat")


def decode_frames(data: bytes) -> np.ndarray:
    """Decodes every frame of the first video stream to uint8 RGB (n, h, w, 3)."""
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    if not frames:
        raise ValueError("no decodable video frames")
    return np.stack(frames)


def probe_mp4(data: bytes) -> dict[str, Any]:
    """Facts about an MP4, counting frames by decoding all of them (not trusting headers)."""
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.video[0]
        count = sum(1 for _ in container.decode(stream))
        ctx = stream.codec_context
        rate = stream.average_rate or stream.guessed_rate
        return {
            "frames": count,
            "width": ctx.width,
            "height": ctx.height,
            "codec": ctx.name,
            "pix_fmt": ctx.pix_fmt,
            "fps": float(rate) if rate else None,
            "faststart": is_faststart(data),
        }


def poster_jpeg(frames: np.ndarray, *, quality: int = 90) -> bytes:
    """JPEG of the middle frame."""
    frames = _check_frames(frames)
    buf = io.BytesIO()
    Image.fromarray(frames[len(frames) // 2]).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


SPRITESHEET_MAX_TILES = 16
SPRITESHEET_TILE_SIDE = 256


def spritesheet_jpeg(
    frames: np.ndarray, *, tiles: int = SPRITESHEET_MAX_TILES, tile_side: int = SPRITESHEET_TILE_SIDE, quality: int = 85
) -> bytes:
    """JPEG grid of up to `tiles` evenly spaced frames, first and last included, left to
    right then top to bottom, each scaled so its longer side is at most `tile_side`."""
    frames = _check_frames(frames)
    count = min(tiles, len(frames))
    picks = np.linspace(0, len(frames) - 1, count).round().astype(int)
    height, width = frames.shape[1:3]
    scale = min(1.0, tile_side / max(height, width))
    tile_w, tile_h = max(1, round(width * scale)), max(1, round(height * scale))
    columns = int(np.ceil(np.sqrt(count)))
    rows = int(np.ceil(count / columns))
    sheet = Image.new("RGB", (columns * tile_w, rows * tile_h))
    for position, index in enumerate(picks):
        tile = Image.fromarray(frames[index]).resize((tile_w, tile_h), Image.Resampling.LANCZOS)
        sheet.paste(tile, ((position % columns) * tile_w, (position // columns) * tile_h))
    buf = io.BytesIO()
    sheet.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
