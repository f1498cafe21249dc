"""What the admin's model forms share (no registrations here).

JSON typed into an admin textarea may hold "\\u0000" or a lone surrogate: it
passes every text check (the typed text has neither), json.loads makes them
real, and PostgreSQL's jsonb refuses them (a 500). STORABLE_JSON makes that a
form error; give it as `formfield_overrides` to each ModelAdmin with an
editable JSONField."""
import json

from django import forms
from django.core.exceptions import ValidationError
from django.db import models

from .sanitize import data_clean, text_clean


class StorableJSONFormField(forms.JSONField):
    def to_python(self, value):
        value = super().to_python(value)
        if data_clean(value) != value:
            raise ValidationError("JSON here cannot hold NUL (\\u0000) or an unpaired surrogate (\\ud800).",
                                  code="unstorable")
        return value

    def prepare_value(self, value):
        # The refused form shows the text again: a surrogate stays an escape (raw, the page cannot be encoded).
        text = super().prepare_value(value)
        if isinstance(text, str) and text_clean(text) != text:
            return json.dumps(value, cls=self.encoder)
        return text


STORABLE_JSON = {models.JSONField: {"form_class": StorableJSONFormField}}
