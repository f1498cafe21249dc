"""Forms for the supervisor's routing pages. They parse; services.py decides."""
from django import forms

from apps.accounts.models import Role, Team, User
from apps.connectors.models import ChannelAccount, Provider
from apps.inbox.models import CannedResponse, Queue

from .models import RoutingRule, SlaPolicy

BUCKETS = [("", "—"), (0, "Urgent"), (1, "High"), (2, "Normal"), (3, "Low")]
SENTIMENTS = [("positive", "Positive"), ("neutral", "Neutral"), ("negative", "Negative"),
              ("not_scored", "Not scored (other language)")]
LIST_HELP = "Comma-separated"


class ListField(forms.CharField):
    """A comma-separated text box <-> a list of strings."""

    def prepare_value(self, value):
        return ", ".join(value) if isinstance(value, list) else value

    def to_python(self, value):
        return [part.strip() for part in (value or "").split(",") if part.strip()]


class RuleForm(forms.Form):
    name = forms.CharField(max_length=100)
    is_active = forms.BooleanField(required=False, initial=True)
    # conditions
    channels = forms.MultipleChoiceField(choices=Provider.choices, required=False,
                                         widget=forms.CheckboxSelectMultiple)
    channel_accounts = forms.ModelMultipleChoiceField(queryset=ChannelAccount.objects.order_by("name"),
                                                      required=False, widget=forms.CheckboxSelectMultiple)
    keywords = ListField(required=False, help_text=LIST_HELP + "; any of them matches")
    regex = forms.CharField(required=False, max_length=500, label="Regular expression",
                            help_text="RE2 syntax, case-insensitive; no look-around or back-references")
    languages = ListField(required=False, help_text=LIST_HELP + " ISO codes, e.g. en, es")
    sentiments = forms.MultipleChoiceField(choices=SENTIMENTS, required=False, widget=forms.CheckboxSelectMultiple)
    # the column is a PostgreSQL integer: more is a form error, not an out-of-range 500
    min_followers = forms.IntegerField(required=False, min_value=0, max_value=2**31 - 1)
    max_followers = forms.IntegerField(required=False, min_value=0, max_value=2**31 - 1)
    customer_tags = ListField(required=False, help_text=LIST_HELP)
    customer_tiers = forms.MultipleChoiceField(choices=[("standard", "Standard"), ("vip", "VIP")], required=False,
                                               widget=forms.CheckboxSelectMultiple)
    hours = forms.ChoiceField(choices=RoutingRule.Hours.choices, initial="any", label="Business hours")
    hours_team = forms.ModelChoiceField(queryset=Team.objects.order_by("name"), required=False,
                                        label="Whose hours", help_text="Empty: the queue's team")
    visibility = forms.ChoiceField(choices=RoutingRule.Visibility.choices, initial="any")
    # actions
    set_queue = forms.ModelChoiceField(queryset=Queue.objects.order_by("name"), required=False, label="Queue")
    set_priority_bucket = forms.TypedChoiceField(choices=BUCKETS, required=False, coerce=int, empty_value=None,
                                                 label="Priority")
    priority_boost = forms.IntegerField(required=False, min_value=-50, max_value=50, initial=0,
                                        label="Priority points (-50..50)")
    add_tags = ListField(required=False, help_text=LIST_HELP)
    assign_agent = forms.ModelChoiceField(queryset=User.objects.filter(is_active=True, role__in=[
        Role.AGENT, Role.SUPERVISOR]).order_by("username"), required=False)
    assign_team = forms.ModelChoiceField(queryset=Team.objects.order_by("name"), required=False,
                                         help_text="Least-loaded online agent of the team")
    auto_reply = forms.ModelChoiceField(queryset=CannedResponse.objects.order_by("shortcut"), required=False,
                                        label="Auto-reply with")
    disposition = forms.ChoiceField(choices=RoutingRule.Disposition.choices, required=False,
                                    label="Spam / ignore")
    stop = forms.BooleanField(required=False, label="Stop: do not run later rules")

    def values(self) -> dict:
        data = dict(self.cleaned_data)
        data["priority_boost"] = data.get("priority_boost") or 0
        data["disposition"] = data.get("disposition") or ""
        return data

    @classmethod
    def initial_for(cls, rule: RoutingRule) -> dict:
        initial = {name: getattr(rule, name) for name in cls.base_fields if name != "channel_accounts"}
        initial["channel_accounts"] = list(rule.channel_accounts.all())
        return initial


class SlaPolicyForm(forms.ModelForm):
    priority_bucket = forms.TypedChoiceField(choices=BUCKETS, required=False, coerce=int, empty_value=None,
                                             label="Priority", help_text="Empty: every priority")

    class Meta:
        model = SlaPolicy
        fields = ["name", "queue", "priority_bucket", "first_response_minutes", "next_response_minutes",
                  "resolution_minutes", "business_hours_only", "is_active"]


class BusinessHoursForm(forms.Form):
    """One row per weekday: "09:00-12:00, 13:00-17:00" or empty (closed)."""

    time_zone = forms.CharField(max_length=64)
    mon = forms.CharField(required=False, label="Monday")
    tue = forms.CharField(required=False, label="Tuesday")
    wed = forms.CharField(required=False, label="Wednesday")
    thu = forms.CharField(required=False, label="Thursday")
    fri = forms.CharField(required=False, label="Friday")
    sat = forms.CharField(required=False, label="Saturday")
    sun = forms.CharField(required=False, label="Sunday")
    holidays = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 5}),
                               help_text="One a line: 2026-12-25 Christmas Day")

    DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

    @classmethod
    def initial_for(cls, hours) -> dict:
        if hours is None:
            return {"time_zone": "UTC", **{d: ("09:00-17:00" if d not in ("sat", "sun") else "") for d in cls.DAYS}}
        initial = {"time_zone": hours.time_zone}
        for day in cls.DAYS:
            initial[day] = ", ".join(f"{a}-{b}" for a, b in hours.schedule.get(day, []))
        initial["holidays"] = "\n".join(f"{h.date.isoformat()} {h.name}".strip() for h in hours.holidays.all())
        return initial

    def clean(self):
        import datetime as dt

        data = super().clean()
        schedule = {}
        for day in self.DAYS:
            intervals = []
            for part in (data.get(day) or "").split(","):
                part = part.strip()
                if not part:
                    continue
                if part.count("-") != 1:
                    self.add_error(day, f'"{part}" is not an interval like 09:00-17:00.')
                    continue
                start, end = (p.strip() for p in part.split("-"))
                intervals.append([start, end])
            schedule[day] = intervals
        holidays = []
        for line in (data.get("holidays") or "").splitlines():
            line = line.strip()
            if not line:
                continue
            date_text, _, name = line.partition(" ")
            try:
                holidays.append({"date": dt.date.fromisoformat(date_text), "name": name.strip()[:100]})
            except ValueError:
                self.add_error("holidays", f'"{date_text}" is not a date like 2026-12-25.')
        data["schedule"], data["holiday_list"] = schedule, holidays
        return data
