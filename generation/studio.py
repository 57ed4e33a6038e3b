"""What the studio offers: frame sizes by aspect ratio and resolution, durations, step
counts, and which of them the team's plan allows (greyed out with the plan that would).

Plain functions over the catalog and the plans; whether a plan allows a request is decided
only by billing.quotas.check_submission, asked here with each option."""

import json
import re
from dataclasses import dataclass, field

from django import forms
from django.utils.functional import cached_property

from billing import quotas
from billing.models import BillingAccount, Plan
from core.errors import Refusal

from . import catalog
from .forms import JobForm
from .loras import DEFAULT_SCALE, MAX_SCALE, loras_for_job, loras_for_team
from .params import JobParams
from .models import Job, Speed

ASPECTS = [
    ("16:9", "16:9 landscape"),
    ("9:16", "9:16 portrait"),
    ("1:1", "1:1 square"),
    ("4:3", "4:3"),
    ("3:4", "3:4 portrait"),
]
CUSTOM = "custom"
RATIOS = {name: tuple(int(part) for part in name.split(":")) for name, _ in ASPECTS}
# Resolutions are the short side of the frame; a model offers those at which a 16:9 frame
# fits its limits.
SHORT_SIDES = [32, 64, 96, 128, 256, 480, 720, 1080]
STEP_PRESETS = [4, 8, 12, 16, 20, 25, 30, 40, 50, 75, 100]
LORA_PICKERS = (1, 2, 3)  # generation.loras.MAX_LORAS_PER_JOB


def resolutions(spec: catalog.ModelSpec) -> list[tuple[int, str]]:
    offered = []
    for short_side in SHORT_SIDES:
        width, height = _rounded_size(spec, "16:9", short_side)
        if spec.min_side <= short_side and width <= spec.max_side and width * height <= spec.max_pixels_per_frame:
            offered.append((short_side, f"{short_side}p"))
    return offered


def _rounded_size(spec: catalog.ModelSpec, aspect: str, short_side: int) -> tuple[int, int]:
    a, b = RATIOS[aspect]
    long_side = round(short_side * max(a, b) / min(a, b) / spec.size_multiple) * spec.size_multiple
    return (long_side, short_side) if a >= b else (short_side, long_side)


def frame_size(spec: catalog.ModelSpec, aspect: str, short_side: int) -> tuple[int, int]:
    """(width, height) for an aspect ratio at a resolution: the long side rounded to the
    model's size multiple, or the model's own default size where that is within 5% of the
    ratio (Wan's 832×480 for 16:9 at 480p, rather than 848×480)."""
    width, height = spec.defaults["width"], spec.defaults["height"]
    a, b = RATIOS[aspect]
    if min(width, height) == short_side:
        if abs(max(width, height) / min(width, height) / (max(a, b) / min(a, b)) - 1) < 0.05:
            return (max(width, height), short_side) if a >= b else (short_side, max(width, height))
    return _rounded_size(spec, aspect, short_side)


def durations(spec: catalog.ModelSpec, fps: int) -> list[int]:
    """Whole seconds the model can make at `fps`."""
    longest = (spec.max_frames - 1) // fps
    return list(range(1, max(longest, 1) + 1))


def aspect_of(spec: catalog.ModelSpec, width: int, height: int) -> tuple[str, int] | None:
    """The (aspect, resolution) preset that gives exactly this size, if any."""
    for aspect in RATIOS:
        for short_side, _ in resolutions(spec):
            if frame_size(spec, aspect, short_side) == (width, height):
                return aspect, short_side
    return None


def plan_refusal(plan: Plan, *, width: int, height: int, num_frames: int, fps: int, steps: int) -> str | None:
    """Why `plan` would refuse a request of this shape (None: it allows it)."""
    account = BillingAccount(plan=plan, status=BillingAccount.Status.ACTIVE)
    try:
        quotas.check_submission(
            account,
            quotas.Request(width=width, height=height, num_frames=num_frames, fps=fps, steps=steps, price=0, via_api=False),
        )
    except Refusal as refusal:
        return refusal.message
    return None


@dataclass
class Option:
    value: str
    label: str
    model: str
    needs: str = ""  # the cheapest plan that allows it, when the team's does not
    data: dict = field(default_factory=dict)

    @property
    def sizes_json(self) -> str:
        return json.dumps(self.data.get("sizes", {}))


def _needs(plan: Plan, plans: list[Plan], **shape) -> str:
    """'' if the team's plan allows the shape, else the name of the cheapest plan that does
    ('a larger plan' if none)."""
    if plan_refusal(plan, **shape) is None:
        return ""
    for candidate in plans:
        if plan_refusal(candidate, **shape) is None:
            return candidate.name
    return "a larger plan"


def studio_options(plan: Plan) -> dict:
    """Every choice the studio offers, per model, each marked with the plan it needs."""
    plans = list(Plan.objects.filter(is_active=True).order_by("price_cents", "order"))
    options: dict[str, list[Option]] = {"resolution": [], "duration": [], "steps": [], "speed": []}
    for spec in catalog.available_models():
        defaults = spec.defaults
        for speed in spec.offered_speeds():
            fixed = spec.steps_and_guidance(speed)
            data = {"note": catalog.SPEED_NOTES[speed], "fixed": fixed and f"{fixed[0]} steps, guidance {fixed[1]:g}"}
            options["speed"].append(Option(speed, Speed(speed).label, spec.name, data=data))
        base = dict(num_frames=1, fps=defaults["fps"], steps=1)
        for short_side, label in resolutions(spec):
            sizes = {}
            for aspect in RATIOS:
                width, height = frame_size(spec, aspect, short_side)
                needs = _needs(plan, plans, width=width, height=height, **base)
                sizes[aspect] = {"width": width, "height": height, "needs": needs}
            options["resolution"].append(Option(str(short_side), label, spec.name, data={"sizes": sizes}))
        small = dict(width=spec.min_side, height=spec.min_side)
        for seconds in durations(spec, defaults["fps"]):
            frames = catalog.frames_for_duration(spec, seconds, defaults["fps"])
            needs = _needs(plan, plans, **small, num_frames=frames, fps=defaults["fps"], steps=1)
            options["duration"].append(Option(str(seconds), f"{seconds} s", spec.name, needs))
        for steps in [count for count in STEP_PRESETS if count <= spec.max_steps]:
            needs = _needs(plan, plans, **small, num_frames=1, fps=defaults["fps"], steps=steps)
            options["steps"].append(Option(str(steps), str(steps), spec.name, needs))
    return options


def initial_from_job(job: Job) -> dict:
    """The studio's fields for the same settings as `job` (seed included)."""
    initial = {**JobForm.initial_for(JobParams.from_job(job)), "aspect_ratio": CUSTOM, "duration": ""}
    spec = catalog.get_model(job.model_name)
    if spec is not None:
        preset = aspect_of(spec, job.width, job.height)
        if preset:
            initial["aspect_ratio"], initial["resolution"] = preset
        for number, entry in zip(LORA_PICKERS, job.loras or (), strict=False):
            initial[f"lora_{number}"], initial[f"lora_{number}_scale"] = entry["id"], entry["scale"]
        seconds = job.num_frames // job.fps if job.fps else 0
        if seconds and catalog.frames_for_duration(spec, seconds, job.fps) == job.num_frames:
            initial["duration"] = seconds
    return initial


def initial_defaults() -> dict:
    """The studio's fields for the default model's defaults."""
    spec = catalog.default_model()
    defaults = spec.defaults
    initial = {"model": spec.name, "fps": defaults["fps"], "steps": defaults["steps"], "guidance": defaults["guidance"]}
    preset = aspect_of(spec, defaults["width"], defaults["height"])
    if preset:
        initial["aspect_ratio"], initial["resolution"] = preset
    seconds = defaults["num_frames"] // defaults["fps"]
    initial["duration"] = seconds or ""
    return initial


class StudioForm(JobForm):
    """The studio's form: the frame size as an aspect ratio and a resolution, the length
    in seconds. Without them (older forms, scripts) width, height and frames apply as given."""

    aspect_ratio = forms.ChoiceField(choices=[*ASPECTS, (CUSTOM, "Custom size")], required=False, label="Aspect ratio")
    resolution = forms.IntegerField(required=False, label="Resolution")
    duration = forms.IntegerField(required=False, min_value=1, label="Duration")

    # The steps menu and the guidance box always send a value; turbo replaces them.
    SPEED_SETS_STEPS_SILENTLY = True

    def __init__(self, *args, team=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.team = team
        # The pickers' options are read when the form is shown, not for every submission.
        choices = lambda: [("", "None"), *[(str(lora.pk), lora.name) for lora in self.team_loras]]  # noqa: E731
        for number in LORA_PICKERS:
            self.fields[f"lora_{number}"] = forms.CharField(
                required=False, label=f"LoRA {number}", widget=forms.Select(choices=choices, attrs={"data-lora-select": ""})
            )
            self.fields[f"lora_{number}_scale"] = forms.FloatField(
                required=False, label=f"LoRA {number} scale", widget=forms.NumberInput(attrs={"step": "0.05", "min": "0.05", "max": f"{MAX_SCALE:g}", "placeholder": f"{DEFAULT_SCALE:g}"}),
            )

    @cached_property
    def team_loras(self) -> list:
        return list(loras_for_team(self.team)) if self.team is not None else []

    # Fields a plan refusal names, as this form shows them.
    SHOWN_AS = {"width": "resolution", "height": "resolution", "num_frames": "duration"}

    def clean(self):
        data = self.cleaned_data
        spec = catalog.get_model(data.get("model") or catalog.default_model().name)
        if spec is not None:
            self._size_from_aspect(spec, data)
            self._frames_from_duration(spec, data)
        cleaned = super().clean()
        if spec is not None and self.team is not None and "model" not in self.errors:
            self._loras(spec, cleaned)
        return cleaned

    def _loras(self, spec, cleaned) -> None:
        """The pickers' LoRAs, resolved by the one rule (generation.loras.loras_for_job)."""
        pickers = [number for number in LORA_PICKERS if cleaned.get(f"lora_{number}")]
        requested = [
            {"id": cleaned[f"lora_{number}"], "scale": cleaned.get(f"lora_{number}_scale") or DEFAULT_SCALE}
            for number in pickers
        ]
        try:
            cleaned["loras"] = loras_for_job(self.team, spec.name, requested)
        except Refusal as refusal:
            self.add_error(self._picker_field(refusal.field, pickers), refusal.message)

    @staticmethod
    def _picker_field(field: str | None, pickers: list[int]) -> str:
        """`loras[1].scale` → the second filled picker's scale box; `loras` → the first picker."""
        match = re.match(r"^loras\[(\d+)\](?:\.(\w+))?$", field or "")
        if match is None:
            return f"lora_{pickers[0] if pickers else 1}"
        number = pickers[int(match[1])]
        return f"lora_{number}_scale" if match[2] == "scale" else f"lora_{number}"

    def params(self) -> JobParams:
        return super().params().replace(loras=self.cleaned_data.get("loras"))

    def _size_from_aspect(self, spec, data) -> None:
        aspect, resolution = data.get("aspect_ratio"), data.get("resolution")
        if not aspect or aspect == CUSTOM or "resolution" in self.errors:
            return
        offered = resolutions(spec)
        if resolution not in [side for side, _ in offered]:
            labels = ", ".join(label for _, label in offered)
            self.add_error("resolution", f"Resolution: choose one of {labels} for {spec.label}.")
            return
        data["width"], data["height"] = frame_size(spec, aspect, resolution)

    def _frames_from_duration(self, spec, data) -> None:
        seconds = data.get("duration")
        if not seconds or "fps" in self.errors:
            return
        fps = data.get("fps") or spec.defaults["fps"]
        frames = catalog.frames_for_duration(spec, seconds, fps)
        if frames > spec.max_frames:
            longest = max(durations(spec, fps))
            self.add_error("duration", f"Duration: {spec.label} makes at most {longest} s at {fps} fps (got {seconds} s).")
            return
        data["num_frames"] = frames

    def refusal_field(self, field: str | None) -> str | None:
        """Where to show a plan's refusal about `field` in this form."""
        if field in self.SHOWN_AS and self.cleaned_data.get("aspect_ratio") not in (None, "", CUSTOM):
            return self.SHOWN_AS[field]
        return super().refusal_field(field)
