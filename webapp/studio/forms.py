from __future__ import annotations

from typing import Any

from django import forms

# generation.image's top level is light (no torch): the registry and the static checks.
from generation.errors import ValidationError as EngineValidationError
from generation.image import DEFAULT_IMAGE_MODEL, SCHEDULERS, ImageRequest, get_image_model_spec, image_models
from generation.image import validate_image_request as engine_validate
from generation.image.request import MAX_PROMPT_CHARS

REQUEST_FIELDS = (
    "prompt", "negative_prompt", "model", "scheduler", "steps", "guidance_scale", "width", "height",
    "num_images", "seed",
)


def _choice_field(form: forms.Form, name: str) -> forms.ChoiceField:
    field = form.fields[name]
    assert isinstance(field, forms.ChoiceField)
    return field


class StudioForm(forms.Form):
    """The studio's request form; the engine's own static checks decide what is valid.

    ``cleaned_data["request"]`` is the ``ImageRequest`` to submit.
    """

    prompt = forms.CharField(max_length=MAX_PROMPT_CHARS, widget=forms.Textarea(attrs={"rows": 3, "placeholder": "a red circle on a blue background"}))
    negative_prompt = forms.CharField(required=False, max_length=MAX_PROMPT_CHARS, label="Negative prompt", widget=forms.Textarea(attrs={"rows": 2}))
    model = forms.ChoiceField()
    scheduler = forms.ChoiceField()
    steps = forms.IntegerField()
    guidance_scale = forms.FloatField(label="Guidance", widget=forms.NumberInput(attrs={"step": "0.5"}))
    width = forms.IntegerField(widget=forms.NumberInput(attrs={"step": "8"}))
    height = forms.IntegerField(widget=forms.NumberInput(attrs={"step": "8"}))
    num_images = forms.IntegerField(label="Images", initial=1)
    seed = forms.IntegerField(required=False, help_text="Empty for a random seed; the seed used is always recorded.")
    # Set by the template picker: {"version": id, "values": {...}}, recorded as the job's lineage.
    template_use = forms.CharField(required=False, max_length=100_000, widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _choice_field(self, "model").choices = [(spec.name, spec.display_name) for spec in image_models()]
        _choice_field(self, "scheduler").choices = [(name, label) for name, (_, _, label) in SCHEDULERS.items()]
        spec = get_image_model_spec(DEFAULT_IMAGE_MODEL)
        defaults = {
            "model": spec.name, "scheduler": spec.default_scheduler, "steps": spec.default_steps,
            "guidance_scale": spec.default_guidance, "width": spec.default_width, "height": spec.default_height,
            "num_images": 1,
        }
        for name, value in defaults.items():
            self.fields[name].initial = value

    @classmethod
    def initial_from_params(cls, params: dict[str, Any], *, prompt: str = "") -> dict[str, Any]:
        """Form initial values from a recorded request (prompt history "reuse", "edit and run")."""
        initial = {key: params[key] for key in REQUEST_FIELDS if params.get(key) is not None}
        if prompt:
            initial["prompt"] = prompt
        return initial

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        try:
            request = ImageRequest(**{name: data.get(name) for name in REQUEST_FIELDS})  # type: ignore[arg-type]
            engine_validate(request)
        except EngineValidationError as exc:
            self.add_error(exc.field if exc.field in self.fields else None, exc.message)
            return data
        data["request"] = request
        return data


class GalleryFilterForm(forms.Form):
    author = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="Who")
    model = forms.ChoiceField(required=False)
    date_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    job = forms.IntegerField(required=False, min_value=1, label="Job #")
    # The values the reviews app writes into Asset.review_state.
    review = forms.ChoiceField(required=False, label="Review", choices=[
        ("", "Any"), ("none", "Not reviewed"), ("in_review", "In review"), ("changes_requested", "Changes requested"),
        ("approved", "Approved"), ("rejected", "Rejected"),
    ])

    def __init__(self, *args: Any, members: list[Any], model_names: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _choice_field(self, "author").choices = [("", "Anyone")] + [(m.user_id, m.user.username) for m in members]
        _choice_field(self, "model").choices = [("", "Any model")] + [(name, name) for name in model_names]


# --- Edits (issue 19) -----------------------------------------------------------------------------

EDIT_FIELDS = (
    "mode", "prompt", "negative_prompt", "model", "scheduler", "steps", "guidance_scale", "seed", "num_images",
    "strength", "mask_blur", "inpaint_area", "padding", "outpaint_sides", "outpaint_pixels", "fill", "scale",
)


class EditForm(forms.Form):
    """The edit form: parameters only; the files come in ``request.FILES`` and are checked by the service.

    Empty number fields take the engine's defaults (the mode's strength, the model's steps...).
    """

    mode = forms.ChoiceField(choices=[
        ("img2img", "Image to image"), ("inpaint", "Inpaint"), ("outpaint", "Outpaint"), ("upscale", "Upscale"),
        ("variations", "Variations"),
    ])
    prompt = forms.CharField(required=False, max_length=MAX_PROMPT_CHARS, widget=forms.Textarea(attrs={"rows": 3}))
    negative_prompt = forms.CharField(required=False, max_length=MAX_PROMPT_CHARS, label="Negative prompt", widget=forms.Textarea(attrs={"rows": 2}))
    model = forms.ChoiceField()
    scheduler = forms.ChoiceField(required=False)
    steps = forms.IntegerField(required=False)
    guidance_scale = forms.FloatField(required=False, label="Guidance")
    seed = forms.IntegerField(required=False)
    num_images = forms.IntegerField(label="Images", initial=1)
    strength = forms.FloatField(required=False, widget=forms.NumberInput(attrs={"type": "range", "min": "0.05", "max": "1", "step": "0.05"}))
    mask_blur = forms.IntegerField(initial=4, label="Mask blur (px)")
    inpaint_area = forms.ChoiceField(choices=[("whole", "Whole picture"), ("only_masked", "Only masked")], initial="whole")
    padding = forms.IntegerField(initial=32, label="Only-masked padding (px)")
    outpaint_sides = forms.MultipleChoiceField(
        required=False, choices=[(s, s) for s in ("left", "right", "top", "bottom")], widget=forms.CheckboxSelectMultiple
    )
    outpaint_pixels = forms.IntegerField(initial=16, label="Outpaint (px)")
    fill = forms.ChoiceField(choices=[("edge", "Edge colour"), ("blur", "Blur"), ("noise", "Noise")], initial="edge")
    scale = forms.TypedChoiceField(choices=[(2, "x2"), (4, "x4")], coerce=int, initial=2)
    template_use = forms.CharField(required=False, max_length=100_000, widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _choice_field(self, "model").choices = [(spec.name, spec.display_name) for spec in image_models()]
        _choice_field(self, "model").initial = DEFAULT_IMAGE_MODEL
        _choice_field(self, "scheduler").choices = [("", "Model default")] + [
            (name, label) for name, (_, _, label) in SCHEDULERS.items()
        ]

    def edit_fields(self) -> dict[str, Any]:
        """The ``EditRequest`` keyword arguments the form holds (empty ones left to the engine)."""
        data = self.cleaned_data
        fields = {name: data.get(name) for name in EDIT_FIELDS}
        fields["outpaint_sides"] = tuple(fields["outpaint_sides"] or ())
        fields["prompt"] = fields["prompt"] or ""
        fields["negative_prompt"] = fields["negative_prompt"] or ""
        for name in ("scheduler", "steps", "guidance_scale", "strength"):
            if fields[name] in (None, ""):
                fields[name] = None
        return fields
