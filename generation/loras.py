"""Team LoRAs: uploaded, checked, stored, listed, deleted, and resolved for a job.

An upload is checked whole before anything is stored: a `.safetensors` file (pickle-based
formats can run code when loaded), its header (generation.safetensors_check), its tensors
against the model's layers (generation.lora_targets), its rank and size and the team's
count against the plan. Only then is the file stored under `teams/<team id>/loras/` in the
media storage (S3 when configured) and the row made; a failure after storing removes the
file again.

A job asks for `[{"id": ..., "scale": ...}]`: at most MAX_LORAS_PER_JOB, each a live LoRA of
the job's team for the job's model, at a scale in (0, MAX_SCALE] (default 1.0). Another
team's LoRA is answered exactly like a missing one (404). The job records each LoRA's id,
name, scale, storage name and digest (Job.loras), so a LoRA deleted later does not change
what a waiting job makes: deleting hides the LoRA at once and removes its row and file once
no waiting or running job refers to it (`loras_purge_deleted`, also run by beat).
"""

import hashlib
import json
import math
import uuid

from django.core.files.storage import default_storage
from django.core.files.uploadhandler import FileUploadHandler
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.ledger import account_for_team
from billing.models import Plan
from core.errors import InvalidInput, NotAllowed, Refusal
from core.text import is_blank

from . import catalog
from .lora_targets import LoraMismatch, lora_shape, transformer_config, wan_targets
from .models import Job, Lora
from .safetensors_check import SafetensorsError, read_header

MAX_LORAS_PER_JOB = 3
MIN_SCALE_EXCLUSIVE, MAX_SCALE = 0.0, 2.0
DEFAULT_SCALE = 1.0
MAX_NAME_CHARS = 100
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".pkl", ".pickle")
ROOT = "teams"


class LoraNotFound(Refusal):
    """No LoRA of this id in the team: missing, deleted or another team's, alike (404)."""

    status = 404
    code = "not_found"


class LoraPlanLimit(NotAllowed):
    """What the team's plan does not allow for LoRAs (403; 413 for a file over the size)."""


def lora_folder(team_id) -> str:
    return f"{ROOT}/{team_id}/loras"


def _plan_with(condition) -> str:
    """The cheapest active plan for which `condition(plan)` holds, by name."""
    for plan in Plan.objects.filter(is_active=True).order_by("price_cents", "order"):
        if condition(plan):
            return f"the {plan.name} plan"
    return "a larger plan"


def _require_loras(plan: Plan, *, field: str) -> None:
    if plan.max_loras == 0:
        raise LoraPlanLimit(
            f"The {plan.name} plan does not include team LoRAs; {_plan_with(lambda p: p.max_loras > 0)} does. "
            "Upgrade on the Billing page.",
            code="plan_no_loras", field=field,
        )


def max_upload_bytes_of_any_plan() -> int:
    """The largest LoRA file any plan stores: the cap while an upload is read."""
    largest = Plan.objects.filter(is_active=True).order_by("-max_lora_mb").values_list("max_lora_mb", flat=True).first()
    return (largest or 0) * 2**20


def upload_limit_checked(team) -> int:
    """The largest LoRA file the team's plan stores; LoraPlanLimit when it has no LoRAs
    (asked before the upload is read)."""
    plan = account_for_team(team).plan
    _require_loras(plan, field="file")
    return plan.max_lora_mb * 2**20


# --- Upload ----------------------------------------------------------------------------


class UploadTooLarge(LoraPlanLimit):
    status = 413
    code = "plan_limit_lora_size"


def _too_large(limit: int) -> UploadTooLarge:
    return UploadTooLarge(
        f"The file is larger than {limit // 2**20} MB, the most your plan stores for a LoRA. "
        "Save it in bf16 or at a lower rank, or upgrade your plan.",
        field="file",
    )


class SizeLimitHandler(FileUploadHandler):
    """Stops a multipart upload as soon as its files pass `limit` bytes, while they are
    read (before Django's handlers after it, which spool large files to a temporary file
    on disk, have stored the rest)."""

    def __init__(self, limit: int | None = None, request=None):
        """`limit`: bytes; None: the most any plan stores (looked up once a file comes)."""
        super().__init__(request)
        self.limit, self.received = limit, 0

    def receive_data_chunk(self, raw_data, start):
        if self.limit is None:
            self.limit = max_upload_bytes_of_any_plan()
        self.received += len(raw_data)
        if self.received > self.limit:
            raise _too_large(self.limit)
        return raw_data

    def file_complete(self, file_size):
        return None  # the next handler makes the file


def _clean_name(team, name) -> str:
    if not isinstance(name, str) or is_blank(name):
        raise InvalidInput("Name is required: what your team will call this LoRA.", field="name")
    name = name.strip()
    if len(name) > MAX_NAME_CHARS:
        raise InvalidInput(f"Name may be at most {MAX_NAME_CHARS} characters (got {len(name)}).", field="name")
    if Lora.objects.filter(team=team, name=name, deleted_at__isnull=True).exists():
        raise InvalidInput(f"Name: the team already has a LoRA called {name!r}.", field="name")
    return name


def _model_targets(model_name) -> tuple[catalog.ModelSpec, dict]:
    if not isinstance(model_name, str) or not model_name.strip():
        raise InvalidInput("Model is required: the model this LoRA was trained for (see GET /models).", field="model")
    spec = catalog.get_model(model_name.strip())
    if spec is None:
        raise InvalidInput(f"Model {model_name!r} is not available.", field="model")
    config = transformer_config(spec)
    if config is None:
        raise InvalidInput(f"Model: {spec.name} does not take LoRAs on this server.", field="model")
    return spec, wan_targets(config)


def _check_file(upload, *, plan: Plan, spec, targets) -> tuple[int, int, str]:
    """(rank, modules, sha256) of a valid upload, read from its stream."""
    if upload is None:
        raise InvalidInput("File is required: a LoRA in .safetensors format.", field="file")
    filename = (upload.name or "").lower()
    if filename.endswith(PICKLE_SUFFIXES):
        raise InvalidInput(
            f"File: {upload.name!r} is a pickle-based checkpoint, which can run code when loaded, so it is not "
            "accepted. Convert it to .safetensors (safetensors.torch.save_file) and upload that.",
            field="file", code="unsafe_format",
        )
    if not filename.endswith(".safetensors"):
        raise InvalidInput("File: only .safetensors LoRA files are accepted.", field="file")
    limit = plan.max_lora_mb * 2**20
    if upload.size > limit:
        raise _too_large(limit)
    upload.seek(0)
    try:
        header = read_header(upload, size=upload.size)
        shape = lora_shape(header, targets, model=spec.name)
    except (SafetensorsError, LoraMismatch) as error:
        raise InvalidInput(f"File: {error}", field="file") from None
    if shape.rank > plan.max_lora_rank:
        raise LoraPlanLimit(
            f"File: this LoRA has rank {shape.rank}; the {plan.name} plan takes at most {plan.max_lora_rank}"
            f"{'' if plan.max_lora_rank else ' (no LoRAs)'}. "
            f"{_plan_with(lambda p: p.max_lora_rank >= shape.rank).capitalize()} takes it.",
            code="plan_limit_lora_rank", field="file",
        )
    digest = hashlib.sha256()
    upload.seek(0)
    for chunk in upload.chunks():
        digest.update(chunk)
    return shape.rank, shape.modules, digest.hexdigest()


def _check_count(team, plan: Plan) -> None:
    count = Lora.objects.filter(team=team, deleted_at__isnull=True).count()
    if count >= plan.max_loras:
        raise LoraPlanLimit(
            f"The team keeps {count} LoRAs, the most the {plan.name} plan allows. Delete one, or upgrade your plan.",
            code="plan_limit_loras", field="file",
        )


def lora_create(*, team, user, name, model_name, upload) -> Lora:
    """Check and store a team's LoRA. Raises a Refusal naming the field (name, model, file),
    with nothing stored."""
    plan = account_for_team(team).plan
    _require_loras(plan, field="file")
    _check_count(team, plan)
    name = _clean_name(team, name)
    spec, targets = _model_targets(model_name)
    rank, modules, sha256 = _check_file(upload, plan=plan, spec=spec, targets=targets)
    lora_id = uuid.uuid4()
    upload.seek(0)
    stored = default_storage.save(f"{lora_folder(team.pk)}/{lora_id}.safetensors", upload)
    try:
        with transaction.atomic():
            plan = account_for_team(team, lock=True).plan  # concurrent uploads count one at a time
            _check_count(team, plan)
            try:
                with transaction.atomic():
                    return Lora.objects.create(
                        id=lora_id, team=team, model_name=spec.name, name=name, file=stored, sha256=sha256,
                        size_bytes=upload.size, rank=rank, modules=modules, created_by=user,
                    )
            except IntegrityError:
                raise InvalidInput(f"Name: the team already has a LoRA called {name!r}.", field="name") from None
    except BaseException:
        default_storage.delete(stored)
        raise


# --- Reading and deleting ---------------------------------------------------------------


def loras_for_team(team, *, model_name: str | None = None):
    loras = Lora.objects.filter(team=team, deleted_at__isnull=True)
    return loras.filter(model_name=model_name) if model_name else loras


def lora_for_team(team, lora_id, *, field: str = "id") -> Lora:
    """The team's live LoRA of this id; LoraNotFound (404) for any other id, another
    team's included."""
    try:
        lora_id = uuid.UUID(str(lora_id))
    except ValueError:
        lora_id = None
    lora = loras_for_team(team).filter(pk=lora_id).first() if lora_id else None
    if lora is None:
        what = f"LoRA {str(lora_id)!r}" if lora_id else "LoRA of that id"
        raise LoraNotFound(f"{field}: the team has no {what}.", field=field)
    return lora


def _referenced_by_waiting_jobs(team_id) -> set[str]:
    """Ids of the LoRAs that the team's jobs not yet ended will load."""
    waiting = Job.objects.filter(team_id=team_id, state__in=[Job.State.THROTTLED, *Job.ACTIVE], loras__isnull=False)
    return {entry["id"] for loras in waiting.values_list("loras", flat=True) for entry in loras or ()}


def lora_delete(lora: Lora) -> None:
    """Hide the LoRA now (its name is free again); its row and file go once no waiting or
    running job refers to it."""
    Lora.objects.filter(pk=lora.pk, deleted_at__isnull=True).update(deleted_at=timezone.now())
    loras_purge_deleted(team_id=lora.team_id)


def loras_purge_deleted(*, team_id=None) -> int:
    """Remove deleted LoRAs (row, then file once that commits) that no job still waiting or
    running refers to. Returns how many went."""
    deleted = Lora.objects.filter(deleted_at__isnull=False)
    if team_id is not None:
        deleted = deleted.filter(team_id=team_id)
    removed = 0
    for team in {lora.team_id for lora in deleted.only("team_id")}:
        in_use = _referenced_by_waiting_jobs(team)
        for lora in deleted.filter(team_id=team):
            if str(lora.pk) not in in_use:
                lora.delete()  # generation.signals removes the file
                removed += 1
    return removed


def lora_file_delete(name: str) -> None:
    transaction.on_commit(lambda: default_storage.delete(name))


# --- A job's LoRAs -----------------------------------------------------------------------


def _requested_list(requested) -> list:
    if isinstance(requested, str):  # a form or multipart field carries them as JSON text
        if not requested.strip():
            return []
        try:
            requested = json.loads(requested)
        except ValueError:
            raise InvalidInput('LoRAs must be a JSON list such as [{"id": "...", "scale": 0.8}].', field="loras") from None
    if not isinstance(requested, list):
        raise InvalidInput('LoRAs must be a list of {"id": ..., "scale": ...} objects.', field="loras")
    if len(requested) > MAX_LORAS_PER_JOB:
        raise InvalidInput(f"A video takes at most {MAX_LORAS_PER_JOB} LoRAs (got {len(requested)}).", field="loras")
    return requested


def _scale(entry: dict, where: str) -> float:
    scale = entry.get("scale", DEFAULT_SCALE)
    if scale is None:
        scale = DEFAULT_SCALE
    if isinstance(scale, str):
        try:
            scale = float(scale)
        except ValueError:
            scale = None
    if isinstance(scale, bool) or not isinstance(scale, int | float) or not math.isfinite(scale):
        raise InvalidInput(f"{where}.scale must be a number.", field=f"{where}.scale")
    if not MIN_SCALE_EXCLUSIVE < scale <= MAX_SCALE:
        raise InvalidInput(
            f"{where}.scale must be more than {MIN_SCALE_EXCLUSIVE:g} and at most {MAX_SCALE:g} (got {scale:g}).",
            field=f"{where}.scale",
        )
    return float(scale)


def loras_for_job(team, model_name: str, requested) -> tuple[dict, ...] | None:
    """The LoRAs a request asks for, resolved for `team` and checked for `model_name`, as
    the job records them; None for none. Raises InvalidInput (400) naming `loras` or
    `loras[i].<field>`, LoraNotFound (404) for an id the team has no LoRA of, and
    LoraPlanLimit (403) when the plan has no LoRAs."""
    if requested is None:
        return None
    requested = _requested_list(requested)
    if not requested:
        return None
    _require_loras(account_for_team(team).plan, field="loras")
    resolved, seen = [], set()
    for index, entry in enumerate(requested):
        where = f"loras[{index}]"
        if not isinstance(entry, dict):
            raise InvalidInput(f'{where} must be an object {{"id": ..., "scale": ...}}.', field=where)
        unknown = sorted(set(entry) - {"id", "scale"})
        if unknown:
            raise InvalidInput(f"{where}.{unknown[0]} is not a LoRA field: give id and scale.", field=f"{where}.{unknown[0]}")
        if not isinstance(entry.get("id"), str) or not entry["id"].strip():
            raise InvalidInput(f"{where}.id is required: the id of one of the team's LoRAs.", field=f"{where}.id")
        scale = _scale(entry, where)
        lora = lora_for_team(team, entry["id"].strip(), field=f"{where}.id")
        if lora.pk in seen:
            raise InvalidInput(f"{where}.id: LoRA {lora.name!r} is asked for twice.", field=f"{where}.id")
        seen.add(lora.pk)
        if lora.model_name != model_name:
            raise InvalidInput(
                f"{where}.id: LoRA {lora.name!r} is for {lora.model_name}, not {model_name}.", field=f"{where}.id"
            )
        resolved.append({"id": str(lora.pk), "name": lora.name, "scale": scale, "file": lora.file, "sha256": lora.sha256})
    return tuple(resolved)


def loras_again(job: Job) -> tuple[dict, ...] | None:
    """The LoRAs of `job` for a new job made from it (a remix): each must still be a live
    LoRA of the team (a deleted one's file may be gone). Raises a Refusal (409) naming it."""
    if not job.loras:
        return None
    requested = [{"id": entry["id"], "scale": entry["scale"]} for entry in job.loras]
    try:
        return loras_for_job(job.team, job.model_name, requested)
    except LoraNotFound as refusal:
        index = int(refusal.field.split("[")[1].split("]")[0])
        raise Refusal(
            f"This video was made with the LoRA {job.loras[index]['name']!r}, which has been deleted: it cannot be "
            "made again with it.", status=409, code="lora_deleted", field="loras",
        ) from None


def with_loras(params, team, requested):
    """`params` (a JobParams) with the LoRAs `requested` for its model, checked."""
    return params.replace(loras=loras_for_job(team, params.model_name, requested))


def lora_json(lora: Lora) -> dict:
    """A LoRA as the API lists it."""
    return {
        "id": str(lora.pk),
        "name": lora.name,
        "model": lora.model_name,
        "rank": lora.rank,
        "modules": lora.modules,
        "size_bytes": lora.size_bytes,
        "sha256": lora.sha256,
        "created_at": lora.created_at.isoformat().replace("+00:00", "Z"),
    }
