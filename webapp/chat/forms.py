from __future__ import annotations

from typing import Any

from django import forms

from webapp.chat.params import (
    ReplySettings,
    default_model_name,
    default_params,
    model_choices,
    settings_validate,
)

STRATEGIES = [("greedy", "Greedy"), ("beam", "Beam search"), ("sample", "Sampling")]
# Form fields named like the engine's parameters, so that an engine
# ValidationError(field=...) lands next to the field of the same name.
PARAM_FIELDS = ("strategy", "temperature", "top_k", "top_p", "num_beams", "max_new_tokens", "stop", "seed")


class ReplySettingsForm(forms.Form):
    """The model, system prompt and decoding parameters; the engine validates the ranges."""

    model = forms.ChoiceField(label="Model")
    system = forms.CharField(label="System prompt", required=False, max_length=8000,
                             widget=forms.Textarea(attrs={"rows": 2}))
    strategy = forms.ChoiceField(label="Strategy", choices=STRATEGIES)
    temperature = forms.FloatField(label="Temperature", help_text="Sampling only, 0 to 2.")
    top_k = forms.IntegerField(label="Top-k", help_text="Sampling only; 0 turns it off.")
    top_p = forms.FloatField(label="Top-p", help_text="Sampling only, above 0 up to 1.")
    num_beams = forms.IntegerField(label="Beams", help_text="Beam search only, 1 to 8.")
    max_new_tokens = forms.IntegerField(label="Max new tokens")
    stop = forms.CharField(label="Stop sequences", required=False, help_text="One per line, up to 4.",
                           widget=forms.Textarea(attrs={"rows": 2}))
    seed = forms.IntegerField(label="Seed", required=False, help_text="Sampling only; empty draws one.")
    use_knowledge = forms.BooleanField(label="Use project knowledge", required=False,
                                       help_text="Answer from the project's documents, citing them.")

    def __init__(self, *args: Any, base: ReplySettings | None = None, **kwargs: Any) -> None:
        self.base = base or ReplySettings(model_name=default_model_name(), params=default_params())
        kwargs.setdefault("initial", settings_initial(self.base))
        super().__init__(*args, **kwargs)
        model_field = self.fields["model"]
        assert isinstance(model_field, forms.ChoiceField)
        model_field.choices = model_choices()

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        params = {**default_params(), **self.base.params}
        params.update({name: data.get(name) for name in PARAM_FIELDS if name != "stop"})
        params["stop"] = [line for line in (data.get("stop") or "").splitlines() if line]
        reply_settings = ReplySettings(model_name=data["model"], system_prompt=data.get("system") or "", params=params,
                                       use_knowledge=bool(data.get("use_knowledge")))
        from generation.errors import ValidationError as GenerationValidationError

        try:
            settings_validate(reply_settings)
        except GenerationValidationError as exc:
            self.add_error(exc.field if exc.field in self.fields else None, exc.message)
            return data
        data["reply_settings"] = reply_settings
        return data


def settings_initial(reply_settings: ReplySettings) -> dict[str, Any]:
    params = {**default_params(), **reply_settings.params}
    initial = {name: params.get(name) for name in PARAM_FIELDS}
    initial["stop"] = "\n".join(params.get("stop") or [])
    initial["model"] = reply_settings.model_name
    initial["system"] = reply_settings.system_prompt
    initial["use_knowledge"] = reply_settings.use_knowledge
    return initial


class ComposerForm(ReplySettingsForm):
    """A prompt, where it goes in the tree, and the settings for this one message."""

    text = forms.CharField(label="Message", max_length=20000, widget=forms.Textarea(attrs={"rows": 3}))
    parent = forms.IntegerField(required=False, widget=forms.HiddenInput)
    # Set by the template picker: {"version": id, "values": {...}}, recorded as the reply's lineage.
    template_use = forms.CharField(required=False, max_length=100_000, widget=forms.HiddenInput)

    field_order = ["text", "parent"]


class TitleForm(forms.Form):
    title = forms.CharField(label="Title", max_length=200)
