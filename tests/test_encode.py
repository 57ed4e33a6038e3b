"""H.264/MP4 encoding, probing and poster frames (PyAV + Pillow), on synthetic clips."""

from __future__ import annotations

import io
from fractions import Fraction

import av
import numpy as np
import pytest
from PIL import Image

from gpu_workers.encode import decode_frames, encode_mp4, is_faststart, poster_jpeg, probe_mp4, upscale_for_display


def moving_square(num_frames: int, height: int, width: int) -> np.ndarray:
    """A red square moving right over a blue-grey background, one step per frame."""
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    frames[:] = (40, 70, 110)
    side = height // 4
    for i in range(num_frames):
        x = (2 * i) % (width - side)
        frames[i, side : 2 * side, x : x + side] = (230, 40, 40)
    return frames


@pytest.mark.parametrize(("num_frames", "height", "width"), [(9, 64, 64), (17, 64, 96), (1, 32, 32)])
def test_mp4_has_the_requested_frames_size_and_format(num_frames: int, height: int, width: int) -> None:
    data = encode_mp4(moving_square(num_frames, height, width), fps=16)
    info = probe_mp4(data)
    assert info == {
        "frames": num_frames,
        "width": width,
        "height": height,
        "codec": "h264",
        "pix_fmt": "yuv420p",
        "fps": 16.0,
        "faststart": True,
    }


@pytest.mark.parametrize(("height", "width", "stored"), [(32, 32, (128, 128)), (48, 64, (144, 192)), (96, 128, (192, 256)), (128, 224, (128, 224))])
def test_small_videos_are_stored_upscaled_by_a_whole_factor(height: int, width: int, stored: tuple) -> None:
    frames = moving_square(3, height, width)
    big = upscale_for_display(frames)
    assert big.shape == (3, *stored, 3)
    factor = stored[0] // height
    # Each generated pixel became a factor × factor block: nothing is invented or blurred.
    blocks = big.reshape(3, height, factor, width, factor, 3)
    assert (blocks == frames[:, :, None, :, None]).all()


def test_decoded_frames_are_close_to_the_input() -> None:
    frames = moving_square(17, 64, 96)
    decoded = decode_frames(encode_mp4(frames, fps=24))
    assert decoded.shape == frames.shape
    error = np.abs(decoded.astype(np.int16) - frames.astype(np.int16))
    assert error.mean() < 10
    # The square is where it should be in the last frame (motion survived encoding).
    assert decoded[-1, 20, (2 * 16) + 4, 0] > 180


def test_fps_is_stored() -> None:
    assert probe_mp4(encode_mp4(moving_square(9, 32, 32), fps=8))["fps"] == 8.0


def _encode_without_faststart(frames: np.ndarray) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 8)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buf.getvalue()


def test_faststart_detection_tells_the_two_layouts_apart() -> None:
    frames = moving_square(5, 32, 32)
    assert is_faststart(encode_mp4(frames, fps=8)) is True
    plain = _encode_without_faststart(frames)
    assert probe_mp4(plain)["frames"] == 5
    assert is_faststart(plain) is False


def test_poster_is_a_jpeg_of_the_middle_frame() -> None:
    frames = np.zeros((9, 64, 96, 3), np.uint8)
    frames[4] = (200, 30, 30)  # only the middle frame is red
    data = poster_jpeg(frames)
    assert data[:3] == b"\xff\xd8\xff"
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG"
    assert image.size == (96, 64)
    r, g, b = np.asarray(image.convert("RGB")).reshape(-1, 3).mean(axis=0)
    assert r > 150 and g < 80 and b < 80


@pytest.mark.parametrize(
    ("frames", "message"),
    [
        (np.zeros((0, 64, 64, 3), np.uint8), "empty"),
        (np.zeros((9, 64, 63, 3), np.uint8), "even"),
        (np.zeros((9, 63, 64, 3), np.uint8), "even"),
        (np.zeros((9, 64, 64), np.uint8), "shape"),
        (np.zeros((9, 64, 64, 3), np.float32), "uint8"),
    ],
)
def test_bad_input_is_rejected_with_a_clear_message(frames: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        encode_mp4(frames, fps=16)


def test_bad_fps_and_empty_poster_are_rejected() -> None:
    with pytest.raises(ValueError, match="fps"):
        encode_mp4(moving_square(5, 32, 32), fps=0)
    with pytest.raises(ValueError, match="empty"):
        poster_jpeg(np.zeros((0, 32, 32, 3), np.uint8))
