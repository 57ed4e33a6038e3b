"""Validation of a generation request. Every rule names the field it is about."""

from django import forms

from core.errors import RefusalFormMixin
from core.text import is_blank

from . import catalog, pools
from .models import Speed
from .params import JobParams


class JobForm(RefusalFormMixin, forms.Form):
    prompt = forms.CharField(
        max_length=catalog.MAX_PROMPT_CHARS,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "A red fox running through fresh snow at dawn"}),
        error_messages={"required": "Prompt is required: describe the video you want."},
    )
    negative_prompt = forms.CharField(
        max_length=catalog.MAX_PROMPT_CHARS, required=False, widget=forms.Textarea(attrs={"rows": 1})
    )
    model = forms.ChoiceField(choices=(), required=False)
    seed = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=catalog.MAX_SEED,
        help_text="Leave empty for a random seed; the seed used is always recorded.",
    )
    width = forms.IntegerField(required=False)
    height = forms.IntegerField(required=False)
    num_frames = forms.IntegerField(required=False, label="Frames")
    fps = forms.IntegerField(required=False, min_value=catalog.MIN_FPS, max_value=catalog.MAX_FPS, label="FPS")
    steps = forms.IntegerField(required=False, label="Inference steps")
    guidance = forms.FloatField(
        required=False, min_value=catalog.MIN_GUIDANCE, max_value=catalog.MAX_GUIDANCE, label="Guidance scale"
    )
    speed = forms.ChoiceField(
        choices=Speed.choices,
        required=False,
        help_text=(
            "Fast costs less and finishes sooner, with a little less detail. Turbo (where the model has it) "
            f"runs a few-step distilled version: {catalog.SPEED_NOTES['turbo']}; it sets its own steps and guidance."
        ),
    )

    # A speed that fixes the steps and guidance (turbo) refuses other values given with it;
    # a form whose steps and guidance are always filled in (the studio's) lets it set them.
    SPEED_SETS_STEPS_SILENTLY = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["model"].choices = [(spec.name, spec.label) for spec in catalog.available_models()]
        defaults = catalog.default_model().defaults
        for name, value in defaults.items():
            self.fields[name].widget.attrs.setdefault("placeholder", value)

    def clean_prompt(self) -> str:
        prompt = self.cleaned_data["prompt"].strip()
        if is_blank(prompt):  # zero-width characters only show nothing either
            raise forms.ValidationError("Prompt is required: describe the video you want.")
        return prompt

    def clean(self):
        cleaned = super().clean()
        spec = catalog.get_model(cleaned.get("model") or catalog.default_model().name)
        if spec is None:
            self.add_error("model", f"Model {cleaned.get('model')!r} is not available.")
            return cleaned
        cleaned["model"] = spec.name
        self._steps_and_guidance_of_speed(spec, cleaned)
        # Empty optional fields take the model's defaults.
        for name, value in spec.defaults.items():
            if cleaned.get(name) is None and name not in self.errors:
                cleaned[name] = value
        if not any(name in self.errors for name in ("width", "height", "num_frames", "steps")):
            for field, message in catalog.shape_errors(
                spec,
                width=cleaned["width"],
                height=cleaned["height"],
                num_frames=cleaned["num_frames"],
                steps=cleaned["steps"],
                speed=cleaned.get("speed") or "standard",
            ).items():
                self.add_error(field, message)
            if not self.errors:
                try:
                    pools.pool_for_job(
                        spec.name, width=cleaned["width"], height=cleaned["height"], num_frames=cleaned["num_frames"]
                    )
                except pools.NoPool as error:
                    self.add_error("width" if pools.pools_for_model(spec.name) else "model", str(error))
        return cleaned

    def _steps_and_guidance_of_speed(self, spec, cleaned) -> None:
        speed = cleaned.get("speed") or Speed.STANDARD
        fixed = spec.steps_and_guidance(speed) if spec.supports_speed(speed) else None
        if fixed is None:
            return
        for name, value in zip(("steps", "guidance"), fixed, strict=True):
            given = cleaned.get(name)
            if given is not None and given != value and not self.SPEED_SETS_STEPS_SILENTLY and name not in self.errors:
                self.add_error(
                    name,
                    f"The {speed} speed of {spec.name} runs {name} {value:g} (got {given:g}): "
                    f"leave {name} out, or choose the standard speed.",
                )
            cleaned[name] = value

    def full_clean(self) -> None:
        super().full_clean()
        # Name the field in every message, so that an error read out of context (an API
        # client, a screen reader, a log) still says what it is about.
        for name, errors in list(self._errors.items()):
            if name not in self.fields:
                continue
            field = self.fields[name]
            label = str(field.label or name.replace("_", " ").capitalize())
            self._errors[name] = self.error_class(
                [message if message.lower().startswith(label.lower()) else f"{label}: {message}" for message in errors],
                field_id=errors.field_id,
            )

    # Form fields named differently from the JobParams field they fill.
    PARAM_OF_FIELD = {"model": "model_name"}

    def params(self) -> JobParams:
        data = self.cleaned_data
        values = {self.PARAM_OF_FIELD.get(name, name): data.get(name) for name in JobForm.base_fields}
        values["negative_prompt"] = (values["negative_prompt"] or "").strip()
        values["speed"] = values["speed"] or Speed.STANDARD
        return JobParams(**values)

    @classmethod
    def initial_for(cls, params: JobParams) -> dict:
        """The form's fields for the same settings as `params` (the inverse of `params()`)."""
        return {name: getattr(params, cls.PARAM_OF_FIELD.get(name, name)) for name in JobForm.base_fields}
