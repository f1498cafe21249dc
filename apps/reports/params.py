"""What a report is asked for (ReportParams: range, zone, filters, grouping), read from a
query string (params_from_query), and what its figures mean (DEFINITIONS)."""
from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from django.utils import timezone

from apps.accounts.models import Role
from apps.core.errors import DomainError
from apps.core.params import EARLIEST, LATEST, date_param, int_param, zone_param

from . import metrics

DIMENSIONS = ("channel", "account_id", "queue_id", "team_id", "agent_id")


@dataclass
class ReportParams:
    start: dt.date
    end: dt.date
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    channel: str = ""
    account_id: int = 0
    queue_id: int = 0
    team_id: int = 0
    agent_id: int = 0
    show_people: bool = True  # False for marketing: no names, handles or conversation links

    @property
    def utc_range(self) -> tuple[dt.datetime, dt.datetime]:
        return metrics.local_range_utc(self.start, self.end, self.tz)

    @property
    def cuts(self) -> list[dt.datetime]:
        """The UTC instants of the local midnights inside the range (where one local day ends and the next starts)."""
        return metrics.local_midnights(self.start, self.end, self.tz)

    @property
    def days(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    def filters(self) -> dict:
        out = {}
        for name in DIMENSIONS:
            value = getattr(self, name)
            if value:
                out[name] = value
        return out

    def as_dict(self) -> dict:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "tz": self.tz.key, **self.filters()}


DEFINITIONS = {
    "first_response_conversation": "First response time (the default, as Zendesk, Freshdesk and Chatwoot measure "
                                   "it): the conversation's first human reply the customer can see minus its first "
                                   "customer message. Once per conversation: a reopen does not start it again. "
                                   "Counted in the period of the reply; credited to the agent who replied.",
    "resolution_full": "Full resolution time (the default): the final resolve minus the conversation's first "
                       "customer message, across every reopen. When a resolved conversation reopens, its earlier "
                       "resolve is taken back; the next resolve counts instead. Counted in the period of the final "
                       "resolve; credited to the resolver.",
    "cohort_resolution_rate": "Resolution rate (the default, a cohort rate): of the conversations opened in the "
                              "period (first customer message in it; spam and ignored ones left out), the share "
                              "resolved now (never above 100%). Each day row is that day's new conversations.",
    "first_response": "First response per cycle: the first human reply the customer can see (public or direct, "
                      "not a private note, not an auto-reply or survey link) minus the start of the cycle "
                      "(when the conversation opened or reopened). Counted once per cycle.",
    "reply": "Reply time: each human reply minus the first customer message it answers: the first customer "
             "message after the previous human reply, never earlier than the start of the current cycle.",
    "resolution": "Resolution time per cycle: resolve (or close without resolve) minus the start of that cycle. "
                  "One resolution per cycle: resolved then closed counts once; resolved, reopened and "
                  "resolved again counts two cycles.",
    "resolution_rate": "Resolutions / cycles started: cycles resolved in the period / cycles started (opened + "
                       "reopened) in the period; the two sets differ, so a day row can pass 100%. Ignored "
                       "conversations are dismissed: out of the backlog and the rate, never a resolution. Spam is out "
                       "of every figure while it is marked (in whatever order it was marked); unmarked, it counts "
                       "again.",
    "agents": "Per agent: a reply and a first response are credited to the agent who replied; a resolution "
              "(and its times) to the resolver: the agent assigned at the resolve, else whoever resolved it; "
              "an SLA target decided by a reply or a resolve to that agent, a breach found by the SLA monitor "
              "to the agent assigned at that moment ((unassigned) when nobody was). Cycle starts belong to no "
              "agent. An agent handled a cycle when replying in it, resolving it or still assigned as it reopened; the agent's "
              "resolution rate is the cycles handled (counted at the cycle's start) that the agent resolved / "
              "the cycles the agent handled, so it never passes 100%.",
    "reopen_rate": "Reopen rate: reopens / resolutions in the period.",
    "business_hours": "Business-hours figures count only working time in the business hours and holidays "
                      "of the conversation's queue's team (its routing calendar, the one its SLAs use); a "
                      "team without a calendar uses REPORTS_BUSINESS_HOURS (default Mon-Fri 09:00-17:00) in "
                      "the team's time zone.",
    "sla": "SLA compliance: targets met / targets decided (met or breached) in the period. A first-response "
           "target is decided by the first reply, a resolution target by the resolve; a breach event from "
           "the SLA monitor decides it as breached. A breach counts at its due time.",
    "handle_time": "Handle time: an agent's active time on a conversation, from the inbox's presence: from "
                   "opening the thread to leaving it, while typing or otherwise using the page. A gap of more "
                   "than 5 minutes without activity (REPORTS_HANDLE_TIME) is not counted and ends the work "
                   "session; leaving and coming back within it continues the session without the time away. "
                   "One value per work session (an agent's continuous work on one conversation), counted for "
                   "that agent when it ends; two agents on one conversation count separately. Total: the sum.",
    "volume": "Volume in: customer messages received. Volume out: replies the network accepted "
              "(human; auto-replies and survey links shown apart).",
    "backlog": "Backlog: cycles started and not yet resolved, at the end of each day.",
    "periods": "Days are local days in the chosen time zone; durations count in the period they end in.",
    "csat": "CSAT: share of 4-5 answers on a 1-5 scale, over the answers received in the period (by answer "
            "time). Response rate: of the surveys sent in the period, the share answered so far (by send time, "
            "never above 100%). The two count different surveys when an answer comes in a later period than "
            "its survey; both are credited where the survey was sent (channel, queue, team, agent).",
    "ces": "CES: customer effort on 1-7 (higher = easier); the mean and median are shown.",
    "nps": "NPS: % promoters (9-10) minus % detractors (0-6) on 0-10.",
    "sentiment": "Sentiment: the compound score of each customer message from VADER tuned for customer care "
                 "(care phrases and words such as \"never arrived\" or \"outage\", negation stopped at a comma, "
                 "emoji: docs/sentiment.md), the score stored with the message at ingest; English (or "
                 "undetermined) text only, other languages are not scored. Positive >= 0.05, negative <= -0.05; "
                 "net sentiment = % positive - % negative.",
    "shift": "Sentiment shift: the conversation's last scored customer message minus its first.",
    "repeat": "Repeat contact rate: resolutions after which the same customer wrote again (a customer "
              "message in any conversation, on any channel) within 7 days / resolutions; counted in the "
              "period of the resolution. An agent's reopen is not a contact; spam counts neither way.",
    "at_risk": "Customers at risk: churn words (cancel, switching to, refund...), or the last two scored "
               "messages negative, or a fall of 0.5 or more from the first to the last of their recent messages.",
    "themes": "Themes: topics are keyword families (billing, delivery, outage...); hashtags as written "
              "(a tag of digits only, such as an order number, is not one); "
              "keywords from REPORTS_KEYWORDS. Example posts are masked (no handles, links, e-mails, phones).",
    "spikes": "Spike alerts: an hour with at least 3x the mean hourly volume of the day before (and 10+ "
              "messages), or a negative share 25+ points above the day before (8+ scored messages).",
    "gap": "Service met: no SLA target breached and at least one met; with no SLA targets, a first response "
           "within REPORTS_GAP_FRT_TARGET_SECONDS (default 1 h). Experience bad: last customer sentiment "
           "negative or CSAT <= 2; good: last sentiment positive or CSAT >= 4. Conversations resolved in the "
           "period.",
}


MAX_DAYS = 366


def _int(query, name) -> int:
    # An id: a whole number within bigint (99999999999999999999 was a 500 at the query).
    return int_param(name, query.get(name), minimum=0) or 0


def params_from_query(query, user) -> ReportParams:
    tz_name = (query.get("tz") or getattr(user, "time_zone", "") or "UTC").strip()
    try:
        tz = zone_param("tz", tz_name)
    except DomainError:
        raise DomainError(f"Unknown time zone {tz_name[:60]!r}.") from None
    today = timezone.now().astimezone(tz).date()
    # date_param refuses an impossible date and one outside 1970-2200: ?end=9999-12-31
    # overflowed a day later (the next local midnight), a 500 on every report.
    end = date_param("end", query.get("end")) or today
    start = date_param("start", query.get("start")) or end - dt.timedelta(days=6)
    if start > end:
        raise DomainError("The start date is after the end date.")
    if (end - start).days >= MAX_DAYS:
        raise DomainError(f"Pick at most {MAX_DAYS} days.")
    marketing = getattr(user, "role", "") == Role.MARKETING and not user.is_superuser
    return ReportParams(start=start, end=end, tz=tz, channel=(query.get("channel") or "").strip()[:32],
                        account_id=_int(query, "account"), queue_id=_int(query, "queue"),
                        team_id=_int(query, "team"), agent_id=0 if marketing else _int(query, "agent"),
                        show_people=not marketing)


def previous_period(params: ReportParams) -> ReportParams | None:
    """The period of the same length just before (the KPI cards' comparison), or None
    before the first date a report can read."""
    length = dt.timedelta(days=(params.end - params.start).days + 1)
    start = params.start - length
    if start < EARLIEST:
        return None
    return dataclasses.replace(params, start=start, end=params.start - dt.timedelta(days=1))


FORM_FIELDS = ("start", "end", "tz", "channel")


def form_errors(query, user) -> dict[str, str]:
    """The report page's reading of its form, one field at a time, so that each error is
    shown next to its own field ({"start": "...", "end": ..., "tz": ..., "": other}) and the
    form keeps what the person typed. Empty when params_from_query accepts the query."""
    errors: dict[str, str] = {}
    tz_name = (query.get("tz") or getattr(user, "time_zone", "") or "UTC").strip()
    try:
        zone_param("tz", tz_name)
    except DomainError:
        errors["tz"] = f"Unknown time zone {tz_name[:60]!r}: pick one from the list."
    days = {}
    for name, text in (("start", "From"), ("end", "To")):
        raw = (query.get(name) or "").strip()
        try:
            days[name] = date_param(name, raw)
        except DomainError:
            try:
                dt.date.fromisoformat(raw)
                errors[name] = f"{text}: pick a date from {EARLIEST:%-d %b %Y} to {LATEST:%-d %b %Y}."
            except ValueError:
                errors[name] = f"{text}: {raw[:40]!r} is not a date; write it as YYYY-MM-DD, e.g. 2026-11-05."
    start, end = days.get("start"), days.get("end")
    if start and end and "start" not in errors and "end" not in errors:
        if start > end:
            errors["end"] = "To: the end date is before the start date."
        elif (end - start).days >= MAX_DAYS:
            errors["end"] = f"To: pick at most {MAX_DAYS} days."
    if not errors:
        try:
            params_from_query(query, user)
        except DomainError as exc:  # the one-sided cases (only an end before... or a filter id)
            errors["start" if "date" in exc.detail or "days" in exc.detail else ""] = exc.detail
    return errors
