"""The conversation list's filters as a django-filter FilterSet: the one place that
says which values each filter takes. The API answers 400 {"detail": {field: [...]}}
for a bad value (DjangoFilterBackend) and its OpenAPI parameters are generated
from here; the inbox page drops a bad value (ignored, not a 500). Applying them
stays in selectors.conversation_list_for_user."""
from __future__ import annotations

import django_filters
from django import forms

from apps.connectors.models import Provider
from apps.core.params import BadParameter, int_param, when_param

from . import selectors
from .models import Conversation, PriorityBucket, Status

SENTIMENTS = [(s, s) for s in ("positive", "neutral", "negative", "unscored")]


def _csv_of(choices, name):
    allowed = {str(value) for value, _ in choices}

    def validate(value):
        parts = selectors.csv_values(value)
        bad = [p for p in parts if p not in allowed]
        if bad:
            # User text goes in params: django-filter formats the message with %.
            raise forms.ValidationError("Unknown %(name)s %(value)s: one or more of %(allowed)s.", params={
                "name": name, "value": repr(bad[0][:40]), "allowed": ", ".join(sorted(allowed))})
    return validate


def _id_or(*words):
    def validate(value):
        if value in words:
            return
        try:
            int_param("id", value, minimum=1)
        except BadParameter:
            raise forms.ValidationError(
                "An id (a whole number)" + (f" or one of {', '.join(words)}." if words else ".")) from None
    return validate


def _when(end=False):
    def validate(value):
        try:
            when_param("date", value, end=end)
        except BadParameter as exc:
            raise forms.ValidationError("%(reason)s", params={"reason": exc.detail}) from None
    return validate


def _text(name, max_length, **kwargs):
    # CharField refuses NUL (ProhibitNullCharactersValidator) and over-long text.
    return django_filters.CharFilter(method="_noop", max_length=max_length, **kwargs)


class ConversationFilterSet(django_filters.FilterSet):
    view = django_filters.ChoiceFilter(method="_noop", choices=[(k, k) for k in selectors.VIEWS],
                                       help_text="the inbox's views (view=queue takes a queue id)")
    status = _text("status", 200, validators=[_csv_of(Status.choices, "status")],
                   help_text="comma-separated statuses: " + ", ".join(Status.values))
    queue = _text("queue", 20, validators=[_id_or("none")], help_text="queue id, or 'none' (unrouted)")
    assignee = _text("assignee", 20, validators=[_id_or("none", "me")], help_text="user id, 'none' or 'me'")
    priority = _text("priority", 50, validators=[_csv_of(PriorityBucket.choices, "priority")],
                     help_text="comma-separated buckets: 0 urgent .. 3 low")
    channel = django_filters.ChoiceFilter(method="_noop", choices=Provider.choices, help_text="provider")
    sentiment = django_filters.ChoiceFilter(method="_noop", choices=SENTIMENTS)
    tag = _text("tag", 100, help_text="tag name")
    q = _text("q", 500, help_text="search text (messages, customer handle or name)")
    date_from = _text("date_from", 40, validators=[_when()],
                      help_text="last message on or after: a date or an ISO 8601 time")
    date_to = _text("date_to", 40, validators=[_when(end=True)],
                    help_text="last message before the end of: a date (the whole day) or an ISO 8601 time")

    class Meta:
        model = Conversation
        fields = []

    def _noop(self, queryset, name, value):
        return queryset

    def filter_queryset(self, queryset):
        """The selector applies them all (visibility included): given the raw, valid values."""
        filters = {name: self.data.get(name) for name in self.form.cleaned_data if self.data.get(name)}
        return selectors.conversation_list_for_user(user=self.request.user, filters=filters)


def valid_list_filters(data) -> dict:
    """The inbox page's filters (raw text) with every invalid one dropped."""
    if set(data) <= {"view"} and data.get("view", "all") in selectors.VIEWS:
        # the list as it opens and as live.js refetches it: nothing to check, and a
        # FilterSet form (its fields deep-copied) is ~0.5 ms of the page's CPU
        return dict(data)
    form = ConversationFilterSet(data=data, queryset=Conversation.objects.none()).form
    form.is_valid()
    return {k: v for k, v in data.items() if k not in form.errors}


__all__ = ["ConversationFilterSet", "valid_list_filters"]
