"""Where a job's files are stored, and how every one of them leaves again.

Each job has a folder of its own, `jobs/<job id>/`, and each file a name fixed by what it
is and which attempt made it: `video-a2.mp4`, `poster-a2.jpg`, `spritesheet-a2.jpg`,
`input.png` (reference image), and `video.mp4`… for a result-cache copy. So

- storing the same file of the same attempt again replaces it (deleted, then saved:
  FileSystemStorage, and S3Storage with `file_overwrite=False`, would otherwise save
  beside it under a random suffix; S3's default overwrites anyway);
- the attempt that succeeds removes what earlier attempts left (a worker killed while
  encoding or storing); names carry the attempt because an attempt presumed lost may wake
  up and store after its replacement did, and must neither overwrite nor, once fenced off,
  delete the files the job now references;
- deleting a job removes its folder whatever is in it, and the files it references
  elsewhere (the date folders used before this layout);
- a file that no job references is an orphan: `orphan_files_sweep` finds them, in the job
  folders and the old date folders, and removes those older than a grace period.
"""

import logging
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta

from django.core.files.base import ContentFile, File
from django.utils import timezone

from .models import Job

logger = logging.getLogger(__name__)

ROOT = "jobs"
# Folders of the layout before `jobs/` (upload_to of the model's fields): swept, never written.
LEGACY_ROOTS = ("videos", "posters", "spritesheets", "inputs")
FILE_FIELDS = {"video": ("video", "mp4"), "poster": ("poster", "jpg"), "spritesheet": ("spritesheet", "jpg"),
               "input_image": ("input", "png")}
_LEADING_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _storage():
    return Job._meta.get_field("video").storage


def job_folder(job_id) -> str:
    return f"{ROOT}/{job_id}"


def job_file_name(job_id, field_name: str, *, attempt: int | None = None) -> str:
    stem, extension = FILE_FIELDS[field_name]
    return f"{job_folder(job_id)}/{stem}{'' if attempt is None else f'-a{attempt}'}.{extension}"


def job_file_store(job_id, field_name: str, content: bytes | File, *, attempt: int | None = None) -> str:
    """Store one of the job's files under its fixed name, replacing an earlier try's;
    returns the name to put on the job."""
    storage = _storage()
    name = job_file_name(job_id, field_name, attempt=attempt)
    storage.delete(name)
    return storage.save(name, ContentFile(content) if isinstance(content, bytes) else content)


def referenced_names(job: Job) -> set[str]:
    return {getattr(job, name).name for name in FILE_FIELDS if getattr(job, name)}


def job_files(job_id) -> list[str]:
    """Every file stored in the job's folder."""
    try:
        _, files = _storage().listdir(job_folder(job_id))
    except FileNotFoundError:  # FileSystemStorage; S3 lists nothing
        return []
    return [f"{job_folder(job_id)}/{name}" for name in files]


def job_files_prune(job: Job) -> None:
    """Remove the files in the job's folder that it does not reference (earlier attempts')."""
    keep = referenced_names(job)
    storage = _storage()
    for name in job_files(job.pk):
        if name not in keep:
            storage.delete(name)


def job_files_delete(jobs: Iterable[tuple]) -> None:
    """Delete every file stored for each (job id, referenced names): the job's folder and
    whatever it references outside it."""
    storage = _storage()
    for job_id, names in jobs:
        for name in {*names, *job_files(job_id)}:
            storage.delete(name)
        try:
            storage.delete(job_folder(job_id))  # the now empty directory (FileSystemStorage)
        except OSError:
            pass  # a file stored meanwhile (the sweep takes it later)


@dataclass
class SweepReport:
    scanned: int = 0  # files looked at
    orphans: int = 0  # referenced by no job, older than the grace period
    orphan_bytes: int = 0
    removed: int = 0  # of the orphans (0 on a dry run)
    young: int = 0  # referenced by no job but younger than the grace period: left alone
    unknown: int = 0  # no job id in the name: not Framecast's, left alone
    samples: list[str] = field(default_factory=list)  # a few orphans, for the log


def _walk(storage, folder: str) -> Iterator[str]:
    try:
        directories, files = storage.listdir(folder)
    except FileNotFoundError:
        return
    for name in files:
        yield f"{folder}/{name}"
    for directory in directories:
        yield from _walk(storage, f"{folder}/{directory}")


def _job_id_of(name: str) -> uuid.UUID | None:
    """The job a stored name belongs to: its folder under jobs/, or (old layout) the uuid
    its file name starts with (`<id>.mp4`, `<id>_<random>.mp4`)."""
    parts = name.split("/")
    candidate = parts[1] if parts[0] == ROOT and len(parts) > 2 else parts[-1]
    match = _LEADING_UUID.match(candidate)
    return uuid.UUID(match.group()) if match else None


def _chunks(names: Iterator[str], size: int) -> Iterator[list[str]]:
    chunk = []
    for name in names:
        chunk.append(name)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def orphan_files_sweep(*, grace: timedelta, delete: bool, batch: int = 500) -> SweepReport:
    """Find stored files that no job references; remove those older than `grace` when
    `delete` (otherwise only count them). A referenced file, a file younger than `grace`
    (an attempt still storing, a submission not yet committed) and a file without a job id
    in its name are never removed."""
    storage = _storage()
    report = SweepReport()
    cutoff = timezone.now() - grace
    names = (name for root in (ROOT, *LEGACY_ROOTS) for name in _walk(storage, root))
    for chunk in _chunks(names, batch):
        owners = {name: _job_id_of(name) for name in chunk}
        referenced = set()
        for job in Job.objects.filter(pk__in={owner for owner in owners.values() if owner}).only(*FILE_FIELDS):
            referenced |= referenced_names(job)
        for name, owner in owners.items():
            report.scanned += 1
            if owner is None:
                report.unknown += 1
                continue
            if name in referenced:
                continue
            # Checked last: a modification time is one request per file on S3.
            if storage.get_modified_time(name) > cutoff:
                report.young += 1
                continue
            report.orphans += 1
            report.orphan_bytes += storage.size(name)
            if len(report.samples) < 5:
                report.samples.append(name)
            if delete:
                storage.delete(name)
                report.removed += 1
    logger.info(
        "Orphan file sweep (%s): %d files scanned, %d orphans (%d bytes), %d removed, %d younger than %g h kept, "
        "%d not Framecast's; e.g. %s",
        "deleting" if delete else "dry run", report.scanned, report.orphans, report.orphan_bytes, report.removed,
        report.young, grace.total_seconds() / 3600, report.unknown, ", ".join(report.samples) or "none",
    )
    return report
