"""Provenance of Framecast videos: the worker marks every frame with the job's watermark
identifier before encoding; the verifier reads marks (and content credentials) back.

Both tiers import this module: it needs numpy, Pillow and PyAV, never torch.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field

import av
import numpy as np
from django.db import IntegrityError, transaction

from core.errors import Refusal

from . import watermark
from .models import WatermarkRecord

logger = logging.getLogger(__name__)


def mark_job_frames(job, frames: np.ndarray) -> np.ndarray:
    """The job's frames with its identifier marked in (called by the worker just before
    encoding). A retried job keeps the identifier of its first attempt."""
    return watermark.embed(frames, watermark_record_for(job).mark_id)


def watermark_record_for(job) -> WatermarkRecord:
    record = WatermarkRecord.objects.filter(job=job).first()
    while record is None:
        try:
            with transaction.atomic():
                record = WatermarkRecord.objects.create(
                    job=job, mark_id=watermark.new_mark_id(), model_name=job.model_name
                )
        except IntegrityError:
            # Another attempt of this job recorded one first, or (1 in 4 billion) the random
            # identifier is taken: use theirs, or draw again.
            record = WatermarkRecord.objects.filter(job=job).first()
    return record


class NotAVideo(ValueError):
    """The upload is not a video the verifier can decode."""


def decode_for_reading(data: bytes, *, max_frames: int = watermark.MAX_READ_FRAMES) -> np.ndarray:
    """The first frames of the first video stream, as uint8 RGB."""
    frames = []
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.video:
                raise NotAVideo("The file has no video stream.")
            for frame in container.decode(container.streams.video[0]):
                frames.append(frame.to_ndarray(format="rgb24"))
                if len(frames) >= max_frames:
                    break
    except NotAVideo:
        raise
    except (av.FFmpegError, ValueError, OSError) as error:
        raise NotAVideo("The file could not be read as a video (MP4, WebM, MOV…).") from error
    if not frames:
        raise NotAVideo("The file contains no video frames.")
    if min(frames[0].shape[:2]) < 8:
        raise NotAVideo("The video is too small to carry a mark.")
    return np.stack(frames)


@dataclass
class Verification:
    """What the verifier found in a video."""

    marked: bool
    confidence: float  # 0-1; 0 when not marked
    record: WatermarkRecord | None = None
    frames_read: int = 0
    credentials: dict | None = None  # C2PA manifest facts, when present
    notes: list[str] = field(default_factory=list)


def verify_video(data: bytes) -> Verification:
    """Look for a Framecast mark (and C2PA credentials) in an uploaded video. Raises
    NotAVideo for anything that does not decode."""
    frames = decode_for_reading(data)
    reading = watermark.read(frames)
    result = Verification(marked=False, confidence=0.0, frames_read=reading.frames_read)
    if reading.mark_id is not None:
        record = WatermarkRecord.objects.select_related("job", "job__team").filter(mark_id=reading.mark_id).first()
        if record is None:
            # A checksum can pass by chance (about 1 in 100,000 unmarked videos); an
            # identifier Framecast never issued is not a Framecast mark.
            logger.info("Verifier read unissued mark %08x", reading.mark_id)
        else:
            result.marked, result.confidence, result.record = True, reading.confidence, record
    from . import credentials

    result.credentials = credentials.read_manifest(data)
    return result


def sign_job_video(job, video: bytes) -> bytes:
    """The encoded MP4 with C2PA content credentials, when a certificate is configured."""
    from . import credentials

    return credentials.sign_mp4(video, model_name=job.model_name, created_at=job.created_at, title=f"{job.id}.mp4")


# --- the verifier (page and API) -------------------------------------------------------


class VerifyError(Refusal):
    """A verifier request that cannot be answered; the message says why, for the user."""

    def __init__(self, message: str, *, status: int = 400, code: str = "invalid_request", field: str = "file"):
        super().__init__(message, status=status, code=code, field=field)


def max_upload_bytes() -> int:
    from django.conf import settings

    return settings.FRAMECAST_VERIFY_MAX_MB * 1024 * 1024


def verify_upload(upload) -> Verification:
    """Verify an uploaded file (a Django UploadedFile)."""
    if upload.size > max_upload_bytes():
        raise VerifyError(too_large_message(upload.size), status=413, code="file_too_large")
    if upload.size == 0:
        raise VerifyError("The uploaded file is empty.", code="not_a_video")
    data = b"".join(upload.chunks())
    try:
        return verify_video(data)
    except NotAVideo as error:
        raise VerifyError(f"{error} Upload an MP4, WebM or MOV video.", status=415, code="not_a_video") from None


def too_large_message(size: int) -> str:
    from django.conf import settings

    return (
        f"The file is {size / 1024 / 1024:.1f} MB; the verifier takes videos up to "
        f"{settings.FRAMECAST_VERIFY_MAX_MB} MB."
    )


def verify_share_link(url: str) -> Verification:
    """Verify the video behind a Framecast share link (the full link or its path)."""
    from urllib.parse import urlsplit

    from django.http import Http404
    from django.urls import Resolver404, resolve

    from generation.sharing import job_for_share_token

    try:
        match = resolve(urlsplit(url.strip()).path or "/")
    except Resolver404:
        match = None
    if match is None or match.view_name not in ("generation:shared", "generation:shared_video"):
        raise VerifyError(
            "That is not a Framecast share link (it looks like https://…/s/<code>/).", field="share_url", code="invalid_share_link"
        )
    try:
        job = job_for_share_token(match.kwargs["token"])
    except Http404:
        raise VerifyError(
            "No shared video behind that link: it was turned off, taken down, or never existed.",
            status=404, field="share_url", code="not_found",
        ) from None
    with job.video.open("rb") as video:
        return verify_video(video.read())


def verification_json(result: Verification, *, staff: bool = False, team=None) -> dict:
    """The verifier's answer. Anyone sees whether the video carries a Framecast mark (and
    its content credentials); `staff` (accounts.permissions.is_staff_member) also see the
    job, team and time; the job's own team sees which of its videos it is."""
    body = {
        "marked": result.marked,
        "confidence": round(result.confidence, 3),
        "message": (
            "This video carries a Framecast watermark: it was generated by AI on Framecast."
            if result.marked
            else "No Framecast watermark was found in this video."
        ),
        "frames_read": result.frames_read,
        "content_credentials": result.credentials,
    }
    record = result.record
    if record is None:
        return body
    job = record.job
    if staff:
        body["job"] = {
            "id": str(job.id) if job else None,
            "team": {"id": job.team_id, "name": job.team.name} if job else None,
            "created_at": (job.created_at if job else record.created_at).isoformat(),
            "model": record.model_name,
            "prompt": job.prompt if job else None,
            "deleted": job is None,
        }
    elif job is not None and team is not None and job.team_id == team.pk:
        body["job"] = {"id": str(job.id), "created_at": job.created_at.isoformat(), "model": record.model_name}
    return body
