from __future__ import annotations

from typing import Any

from django import forms

from webapp.prompt_templates.models import TemplateKind
from webapp.prompt_templates.pinned import CHAT_KEYS, IMAGE_KEYS
from webapp.prompt_templates.variables import MAX_BODY_CHARS, ParsedBody, Variable

STRATEGIES = [("", "Not pinned"), ("greedy", "Greedy"), ("beam", "Beam search"), ("sample", "Sampling")]
BODY_HELP = (
    "Variables: <code>{{topic}}</code>, <code>{{tone|select:formal,casual|default:formal}}</code>, "
    "<code>{{count|number:1..10|default:3}}</code>, <code>{{notes|textarea}}</code>; built-ins "
    "<code>{{date}}</code>, <code>{{user}}</code>, <code>{{project}}</code>. Image templates: "
    "<code>{prompt}</code> is the user's own text."
)
# Settings fields: empty means "not pinned", so every one is optional.
CHAT_FIELDS = ("model", "system", "strategy", "temperature", "top_k", "top_p", "num_beams", "max_new_tokens", "stop", "seed")
IMAGE_FIELDS = ("image_model", "negative_prompt", "scheduler", "steps", "guidance_scale", "width", "height")


def _choices(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [("", "Not pinned"), *pairs]


class TemplateForm(forms.Form):
    name = forms.CharField(max_length=100)
    command = forms.CharField(max_length=40, help_text="Typed after / in the chat: lowercase letters, digits, dashes.")
    kind = forms.ChoiceField(choices=TemplateKind.choices, initial=TemplateKind.CHAT)
    description = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))
    shared_with_team = forms.BooleanField(required=False, label="Share with every project of the team")
    body = forms.CharField(max_length=MAX_BODY_CHARS, widget=forms.Textarea(attrs={"rows": 8}), help_text=BODY_HELP)
    note = forms.CharField(required=False, max_length=300, label="What changed", help_text="Kept with the version.")
    # Chat settings
    model = forms.ChoiceField(required=False, label="Model")
    system = forms.CharField(required=False, max_length=8000, label="System prompt", widget=forms.Textarea(attrs={"rows": 2}))
    strategy = forms.ChoiceField(required=False, choices=STRATEGIES)
    temperature = forms.FloatField(required=False)
    top_k = forms.IntegerField(required=False, label="Top-k")
    top_p = forms.FloatField(required=False, label="Top-p")
    num_beams = forms.IntegerField(required=False, label="Beams")
    max_new_tokens = forms.IntegerField(required=False, label="Max new tokens")
    stop = forms.CharField(required=False, label="Stop sequences", widget=forms.Textarea(attrs={"rows": 2}),
                           help_text="One per line.")
    seed = forms.IntegerField(required=False)
    # Image settings
    image_model = forms.ChoiceField(required=False, label="Image model")
    negative_prompt = forms.CharField(required=False, label="Negative prompt", widget=forms.Textarea(attrs={"rows": 2}))
    scheduler = forms.ChoiceField(required=False)
    steps = forms.IntegerField(required=False)
    guidance_scale = forms.FloatField(required=False, label="Guidance")
    width = forms.IntegerField(required=False)
    height = forms.IntegerField(required=False)

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from generation.image import SCHEDULERS, image_models
        from generation.text.registry import text_models

        self._choice("model").choices = _choices([(s.name, s.display_name) for s in text_models()])
        self._choice("image_model").choices = _choices([(s.name, s.display_name) for s in image_models()])
        self._choice("scheduler").choices = _choices([(name, label) for name, (_, _, label) in SCHEDULERS.items()])
        if editing:
            del self.fields["kind"]
        else:
            del self.fields["note"]

    def _choice(self, name: str) -> forms.ChoiceField:
        field = self.fields[name]
        assert isinstance(field, forms.ChoiceField)
        return field

    def settings_for(self, kind: str) -> dict[str, Any]:
        """The pinned settings in the engines' names; empty fields are not pinned."""
        data = self.cleaned_data
        if kind == TemplateKind.IMAGE:
            settings = {name: data.get(name) for name in IMAGE_FIELDS if name != "image_model"}
            settings["model"] = data.get("image_model")
        else:
            settings = {name: data.get(name) for name in CHAT_FIELDS if name != "stop"}
            settings["stop"] = [line for line in (data.get("stop") or "").splitlines() if line]
        return {key: value for key, value in settings.items() if value not in (None, "", [])}

    @staticmethod
    def initial_from(*, kind: str, settings: dict[str, Any]) -> dict[str, Any]:
        keys = IMAGE_KEYS if kind == TemplateKind.IMAGE else CHAT_KEYS
        initial = {key: settings[key] for key in keys if key in settings}
        if kind == TemplateKind.IMAGE and "model" in initial:
            initial["image_model"] = initial.pop("model")
        if isinstance(initial.get("stop"), list):
            initial["stop"] = "\n".join(initial["stop"])
        return initial

    @property
    def image_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in IMAGE_FIELDS]

    @property
    def chat_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in CHAT_FIELDS]


# Engine field names the form shows under another name.
FORM_FIELD_NAMES = {"image": {"model": "image_model"}, "chat": {}}


def _variable_field(variable: Variable) -> forms.Field:
    required = variable.required
    label = variable.name.replace("_", " ").capitalize()
    common: dict[str, Any] = {"required": required, "label": label, "initial": variable.default}
    if variable.type == "select":
        return forms.ChoiceField(choices=[(o, o) for o in variable.options], **common)
    if variable.type == "number":
        attrs: dict[str, Any] = {"step": "any"}
        if variable.minimum is not None:
            attrs.update(min=str(variable.minimum), max=str(variable.maximum))
        return forms.CharField(widget=forms.NumberInput(attrs=attrs), **common)
    if variable.type == "textarea":
        return forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), strip=False, **common)
    return forms.CharField(**common)


class VariablesForm(forms.Form):
    """The form built from a version's variables (``v-<name>``), plus the user's prompt for images."""

    version = forms.IntegerField(widget=forms.HiddenInput)

    def __init__(self, *args: Any, parsed: ParsedBody, image: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.parsed = parsed
        if image:
            self.fields["prompt"] = forms.CharField(
                label="Your prompt", required=parsed.has_prompt_slot, widget=forms.Textarea(attrs={"rows": 2}),
                help_text="Fills {prompt}." if parsed.has_prompt_slot else "Put in front of the template's text.",
            )
        for variable in parsed.variables:
            self.fields[f"v-{variable.name}"] = _variable_field(variable)

    def raw_values(self) -> dict[str, str]:
        return {v.name: str(self.data.get(f"{self.prefix + '-' if self.prefix else ''}v-{v.name}", "")) for v in self.parsed.variables}
