"""The invisible watermark: invisible (PSNR), recovered from every size Framecast makes
after its own H.264 encode, and robust as README "Provenance and safety" states on a
short clip. The attacks and the clip are bench/watermark.py's, so the test and the
benchmark measure the same thing."""

import numpy as np
import pytest

from bench.watermark import attacked
from bench.watermark import test_clip as make_clip
from gpu_workers.encode import decode_frames, encode_mp4
from safety import watermark

MARK = 0x2F6B91C3


def platform_mp4(clip: np.ndarray, mark_id: int = MARK) -> bytes:
    return encode_mp4(watermark.embed(clip, mark_id), fps=16, crf=20)


@pytest.mark.parametrize("height, width", [(32, 32), (48, 64), (128, 128), (480, 832)])
def test_marked_frames_are_visually_identical(height, width):
    clip = make_clip(5, height, width)
    assert watermark.psnr(clip, watermark.embed(clip, MARK)) >= 38.0


@pytest.mark.parametrize("height, width", [(32, 32), (48, 64), (64, 64), (128, 128), (144, 256), (480, 832)])
def test_the_identifier_survives_the_platforms_own_encode_at_every_size(height, width):
    frames = decode_frames(platform_mp4(make_clip(9, height, width)))
    reading = watermark.read(frames)
    assert reading.mark_id == MARK
    assert watermark.bit_accuracy(frames, MARK) >= 0.95
    assert reading.confidence > 0.3


# README "Provenance and safety" states these thresholds: from 256 px every attack of the
# benchmark leaves at least 95% of the bits readable and the identifier recovered; at 128 px (the default model's size) all but heavy
# compression (CRF 35) and halving, which fail or only sometimes succeed; below 128 px only
# the platform's own encode (and a brightness change) is survived.
SURVIVES = {
    (256, 256): ["h264", "crf28", "crf35", "half", "crop10", "crop20", "brighter"],
    (128, 128): ["h264", "crf28", "crop10", "crop20", "brighter"],
}


@pytest.mark.parametrize(
    "size, attack", [(size, attack) for size, attacks in SURVIVES.items() for attack in attacks], ids=str
)
def test_the_identifier_survives_common_edits(size, attack):
    frames = attacked(platform_mp4(make_clip(9, *size)), attack)
    assert watermark.bit_accuracy(frames, MARK) >= 0.95
    assert watermark.read(frames).mark_id == MARK


def test_heavy_compression_of_a_small_video_removes_the_mark_as_documented():
    """The honest limit: CRF 35 on a 128 px clip leaves the mark unreadable (README)."""
    frames = attacked(platform_mp4(make_clip(9, 128, 128)), "crf35")
    assert watermark.read(frames).mark_id is None


@pytest.mark.parametrize("seed", range(4))
def test_an_unmarked_video_carries_no_mark(seed):
    frames = decode_frames(encode_mp4(make_clip(9, 128, 160, seed=seed), fps=16))
    reading = watermark.read(frames)
    assert reading.mark_id is None and reading.confidence == 0.0


def test_random_noise_carries_no_mark():
    noise = np.random.default_rng(1).integers(0, 256, (9, 96, 96, 3), dtype=np.uint8)
    assert watermark.read(noise).mark_id is None


def test_two_videos_carry_their_own_identifiers():
    clip = make_clip(5, 128, 128)
    first = watermark.read(decode_frames(platform_mp4(clip, 1)))
    second = watermark.read(decode_frames(platform_mp4(clip, 2**32 - 1)))
    assert (first.mark_id, second.mark_id) == (1, 2**32 - 1)


def test_a_checksum_guards_every_identifier():
    bits = watermark.payload_bits(MARK)
    for flipped in range(watermark.PAYLOAD_BITS):
        damaged = bits.copy()
        damaged[flipped] ^= 1
        assert watermark._bits_to_id(damaged) is None


def test_frames_too_small_or_of_the_wrong_kind_are_refused():
    with pytest.raises(ValueError, match="too small"):
        watermark.embed(np.zeros((2, 6, 6, 3), np.uint8), MARK)
    with pytest.raises(ValueError, match="uint8 RGB"):
        watermark.embed(np.zeros((2, 32, 32, 3), np.float32), MARK)
    with pytest.raises(ValueError, match="non-zero 32-bit"):
        watermark.payload_bits(0)
