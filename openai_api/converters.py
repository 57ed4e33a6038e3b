import uuid


class VideoIdConverter:
    """OpenAI-style video ids, `video_<32 hex digits>`: Framecast's job UUID in OpenAI's form."""

    regex = "video_[0-9a-f]{32}"

    def to_python(self, value: str) -> uuid.UUID:
        return uuid.UUID(hex=value.removeprefix("video_"))

    def to_url(self, value) -> str:
        return video_id(value)


def video_id(job_id) -> str:
    return f"video_{(job_id if isinstance(job_id, uuid.UUID) else uuid.UUID(str(job_id))).hex}"


def job_id(value: str) -> uuid.UUID | None:
    """The job UUID of an OpenAI video id, or None if it is not one."""
    if not isinstance(value, str) or not value.startswith("video_"):
        return None
    try:
        return uuid.UUID(hex=value.removeprefix("video_"))
    except ValueError:
        return None
