"""A job's parameters, declared once.

`JobParams` is what a request asks the GPU to make. Each field says, on itself, whether it
decides the frames (and so belongs to the result-cache key) and which Job column keeps it.
Everything else is derived from the declaration: the job's columns at submission
(`job_fields`), the parameters of an existing job (`from_job`, for remixes, the studio's
"same settings" and the worker), and the cache key (`request_key`).

To add a parameter: declare it here with `param(...)`, add its Job column (and migration),
and accept it in the forms/serializers that take it from users. Forgetting nothing else is
the point: the key, the job row and `from_job` follow the declaration.
"""

import hashlib
import json
from dataclasses import MISSING, dataclass, field, fields
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .models import Job


def param(
    *, decides_frames: bool, column: str | None = "", key_tag: str = "", to_pipeline: bool = False, default=MISSING
):
    """Declare a JobParams field.

    decides_frames: part of the result-cache key (two requests that agree on every such
    field get the same video). column: the Job field that keeps it ("" = the same name;
    None = not a plain column, stored by the service that owns it). key_tag: for optional
    fields (default None), a word put before the value in the key when it is set, so that
    keys of requests without the field stay what they were. to_pipeline: passed by that
    name to the worker's `pipeline.generate_frames` (see `pipeline_args`)."""
    metadata = {"decides_frames": decides_frames, "column": column, "key_tag": key_tag, "to_pipeline": to_pipeline}
    return field(default=default, metadata=metadata)


def _key_value(value):
    """A field's value as it goes into the cache key (JSON, stable across processes)."""
    if isinstance(value, bytes):
        return hashlib.sha256(value).hexdigest()
    if hasattr(value, "_meta"):  # a model instance, e.g. the remixed job
        return str(value.pk)
    if isinstance(value, tuple | list):  # LoRAs: what decides the frames is the file and its scale
        return [[entry["sha256"], float(entry["scale"])] for entry in value]
    return value


@dataclass(frozen=True)
class JobParams:
    # The order is the cache key's order: keep new fields after the existing ones.
    model_name: str = param(decides_frames=True)
    prompt: str = param(decides_frames=True, to_pipeline=True)
    negative_prompt: str = param(decides_frames=True, to_pipeline=True)
    seed: int | None = param(decides_frames=True, to_pipeline=True)
    width: int = param(decides_frames=True, to_pipeline=True)
    height: int = param(decides_frames=True, to_pipeline=True)
    num_frames: int = param(decides_frames=True, to_pipeline=True)
    fps: int = param(decides_frames=True)
    steps: int = param(decides_frames=True, to_pipeline=True)
    guidance: float = param(decides_frames=True, to_pipeline=True)
    speed: str = param(decides_frames=True, default="standard")
    # Video to video: the job whose frames are re-generated, and how far from them (0-1].
    remix_of: "Job | None" = param(decides_frames=True, column="remixed_from", key_tag="remix", default=None)
    strength: float | None = param(decides_frames=True, default=None)
    # Image to video: the reference image (PNG bytes, checked by generation.inputs); the
    # job keeps it as a file, saved by job_submit.
    input_image: bytes | None = param(decides_frames=True, column=None, key_tag="image", default=None)
    # Team LoRAs on top of the model: ({"id", "name", "scale", "file", "sha256"}, ...), in the
    # order given (generation.loras resolves and checks them); None: none.
    loras: tuple[dict, ...] | None = param(decides_frames=True, key_tag="loras", default=None)

    def __post_init__(self):
        # Guidance is a float in the key whatever number type a caller passed.
        object.__setattr__(self, "guidance", float(self.guidance))
        # No LoRAs is None whichever way it was said (the key of a plain job stays the same).
        object.__setattr__(self, "loras", tuple(self.loras) if self.loras else None)

    def request_key(self, *, seed: int) -> str:
        """What decides the frames, hashed: equal keys mean equal videos (the pipeline is
        deterministic for a seed on a given kind of device). `seed` is the one the job
        runs with (chosen at random when the request left it out)."""
        decisive = []
        for spec in fields(self):
            if not spec.metadata["decides_frames"]:
                continue
            value = seed if spec.name == "seed" else getattr(self, spec.name)
            if spec.default is None and value is None:
                continue  # an optional parameter left out: the key stays what it was without it
            if spec.metadata["key_tag"]:
                decisive.append(spec.metadata["key_tag"])
            decisive.append(_key_value(value))
        return hashlib.sha256(json.dumps(decisive).encode()).hexdigest()

    def job_fields(self, *, seed: int) -> dict:
        """The Job columns these parameters fill (the rest belong to the submission)."""
        columns = {}
        for spec in fields(self):
            column = spec.metadata["column"]
            if column is not None:
                columns[column or spec.name] = seed if spec.name == "seed" else getattr(self, spec.name)
        return columns

    @classmethod
    def from_job(cls, job: "Job", **changes) -> "JobParams":
        """The parameters `job` was made with (its recorded seed included), with `changes`."""
        values = {}
        for spec in fields(cls):
            column = spec.metadata["column"]
            if column is not None:
                values[spec.name] = getattr(job, column or spec.name)
        return cls(**{**values, **changes})

    def pipeline_args(self) -> dict:
        """The keyword arguments of the worker's generate_frames that are parameters."""
        return {spec.name: getattr(self, spec.name) for spec in fields(self) if spec.metadata["to_pipeline"]}

    def replace(self, **changes) -> "JobParams":
        return type(self)(**{**{spec.name: getattr(self, spec.name) for spec in fields(self)}, **changes})
