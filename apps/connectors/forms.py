"""The Channels pages' forms: one per network, asking for exactly the credential keys its
provider reads (providers/<network>.py), each with where to find it. They parse and
validate; services.py writes. Stored secrets never go back into a page: a secret field
is empty on the edit form ("set · ends in 1a2b"), and left empty it keeps the stored value."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

from django import forms
from django.core.exceptions import ValidationError

from apps.core import sanitize

from .models import SURVEY_CAP_DAYS_MAX, ChannelAccount, Provider, SurveyKind

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
SECRET_MAX = 500


def plain_text(value: str, what: str) -> str:
    """A name or handle: text, never markup. The pages escape it anyway; refusing it says so
    instead of storing "<script>" as a channel's name."""
    value = (value or "").strip()
    if "<" in value or ">" in value:
        raise ValidationError(f"{what} cannot contain < or >: write it as plain text.")
    if _CONTROL.search(value):
        raise ValidationError(f"{what} cannot contain control characters or line breaks.")
    return value


def web_address(value: str, what: str, *, path_allowed: bool) -> str:
    """An absolute https URL (plain http only for a server on this machine: a stand-in, a
    test), no user:password@, no javascript:/data:. Returned without a trailing slash."""
    value = (value or "").strip()
    if len(value) > 300:
        raise ValidationError(f"{what} is too long (at most 300 characters).")
    url = sanitize.http_url(value)
    example = "https://mastodon.social" if not path_allowed else "https://crm.example.com/cxinbox/replies"
    if not url:
        raise ValidationError(f"{what} must be a web address starting with https://, e.g. {example}.")
    parts = urlsplit(url)
    if parts.username or parts.password:
        raise ValidationError(f"{what} cannot carry a user name or password (user:password@).")
    if parts.scheme.lower() == "http" and parts.hostname not in LOOPBACK:
        raise ValidationError(f"{what} must use https:// (plain http is accepted only for a server on this machine).")
    if not path_allowed and (parts.path.strip("/") or parts.query or parts.fragment):
        raise ValidationError(f"{what}: enter only the server's address, e.g. {example} (not a profile or page link).")
    return url.rstrip("/")


def secret_value(value: str, what: str, *, spaces: bool = False) -> str:
    value = (value or "").strip()
    if len(value) > SECRET_MAX:
        raise ValidationError(f"{what} is too long (at most {SECRET_MAX} characters): was something else pasted?")
    if _CONTROL.search(value) or (not spaces and re.search(r"\s", value)):
        raise ValidationError(f"{what} cannot contain spaces or line breaks: copy the value alone.")
    return value


def secret_hint(value) -> str:
    """What the edit form says about a stored secret: never the value; the last 4 characters
    of a long token (to tell two apart), nothing of a short one (a password)."""
    if not value:
        return "not set"
    text = str(value)
    return f"set · ends in …{text[-4:]}" if len(text) >= 16 else "set"


def _secret(label: str, help_text: str, *, required: bool = True, spaces: bool = False) -> forms.CharField:
    field = forms.CharField(label=label, help_text=help_text, required=required, max_length=SECRET_MAX,
                            strip=True, widget=forms.PasswordInput(render_value=True, attrs={
                                "autocomplete": "new-password", "spellcheck": "false"}))
    field.secret = True
    field.spaces = spaces
    return field


def _text(label: str, help_text: str, *, required: bool = True, max_length: int = 200, initial=None,
          placeholder: str = "") -> forms.CharField:
    attrs = {"spellcheck": "false", "autocomplete": "off"}
    if placeholder:
        attrs["placeholder"] = placeholder
    return forms.CharField(label=label, help_text=help_text, required=required, max_length=max_length,
                           initial=initial, widget=forms.TextInput(attrs=attrs))


class ChannelForm(forms.Form):
    """Common to every network: the name agents see. Subclasses declare their fields and
    CREDENTIALS: form field -> the credential key the provider reads."""

    provider: str = ""
    # form field -> credentials key (providers/<network>.py reads exactly these)
    CREDENTIALS: dict[str, str] = {}
    # form fields that are model fields of ChannelAccount
    ACCOUNT_FIELDS: tuple[str, ...] = ("handle",)
    where: str = ""  # one line above the form: where the values come from

    name = forms.CharField(label="Name", max_length=100, help_text="What agents see on each conversation, e.g. "
                           "“Acme on X”. Plain text, at most 100 characters.")

    def __init__(self, *args, account: ChannelAccount | None = None, **kwargs):
        self.account = account
        if account is not None and "initial" not in kwargs:
            kwargs["initial"] = self.initial_for(account)
        super().__init__(*args, **kwargs)
        if account is not None:
            stored = account.credentials or {}
            for name, field in self.fields.items():
                if getattr(field, "secret", False):
                    key = self.CREDENTIALS.get(name)
                    hint = secret_hint(stored.get(key)) if key else "not set"
                    field.required = False
                    field.stored_hint = hint
                    field.help_text = f"{field.help_text} Stored: {hint}; leave empty to keep it."

    # --- reading an account into the form (never a secret) --------------------------------------
    def initial_for(self, account: ChannelAccount) -> dict:
        initial = {"name": account.name}
        for name in self.ACCOUNT_FIELDS:
            initial[name] = getattr(account, name, "")
        stored = account.credentials or {}
        for name, key in self.CREDENTIALS.items():
            if not getattr(self.base_fields[name], "secret", False) and key in stored:
                initial[name] = stored[key]
        return initial

    # --- validation ------------------------------------------------------------------------------
    def clean_name(self):
        return plain_text(self.cleaned_data.get("name", ""), "The name")

    def stored(self, name: str):
        """The value the account will have for a credential field: typed, else stored."""
        typed = self.cleaned_data.get(name)
        if typed not in (None, ""):
            return typed
        if self.account is not None and getattr(self.fields[name], "secret", False):
            return (self.account.credentials or {}).get(self.CREDENTIALS[name])
        return typed

    def clean(self):
        data = super().clean()
        for name, field in self.fields.items():
            if getattr(field, "secret", False) and name in data:
                try:
                    data[name] = secret_value(data[name], field.label, spaces=getattr(field, "spaces", False))
                except ValidationError as exc:
                    self.add_error(name, exc)
        handle = data.get("handle")
        if handle and self.provider and not self.errors:
            taken = ChannelAccount.objects.filter(provider=self.provider, handle__iexact=handle)
            if self.account is not None:
                taken = taken.exclude(pk=self.account.pk)
            if taken.exists():
                self.add_error("handle", f"{handle} is already connected as another {Provider(self.provider).label} "
                                         "channel: edit that one instead.")
        return data

    # --- what the services store -----------------------------------------------------------------
    def credentials(self) -> dict:
        """The credentials to store: the stored ones, with every typed value replacing its key;
        an optional non-secret field left empty removes its key (the provider's default applies)."""
        creds = dict(self.account.credentials or {}) if self.account is not None else {}
        for name, key in self.CREDENTIALS.items():
            value = self.cleaned_data.get(name)
            if getattr(self.fields[name], "secret", False):
                if value:
                    creds[key] = value
            elif value in (None, ""):
                creds.pop(key, None)
            else:
                creds[key] = value
        return creds

    def account_values(self) -> dict:
        values = {"name": self.cleaned_data["name"]}
        for name in self.ACCOUNT_FIELDS:
            values[name] = self.cleaned_data.get(name) or ""
        return values


# --- the networks ---------------------------------------------------------------------------------

X_PORTAL = "developer.x.com > Developer Portal > Projects & Apps > your app > Keys and tokens"


class TwitterForm(ChannelForm):
    provider = Provider.TWITTER
    ACCOUNT_FIELDS = ("handle", "external_user_id")
    CREDENTIALS = {"bearer_token": "bearer_token", "consumer_key": "consumer_key",
                   "consumer_secret": "consumer_secret", "access_token": "access_token",
                   "access_token_secret": "access_token_secret"}
    USER_KEYS = ("consumer_key", "consumer_secret", "access_token", "access_token_secret")
    where = (f"Everything below is in the X developer portal ({X_PORTAL}). The app needs “Read and write” "
             "(and “Direct messages”, to answer DMs) under User authentication settings before you generate "
             "the access token.")

    handle = _text("Handle to watch", "The brand's X handle: mentions of it come in, e.g. @acme.", max_length=16,
                   placeholder="@acme")
    external_user_id = _text("User id", "Optional: the numeric id of that account. Left empty, Test connection and "
                             "saving look it up (it is also the number before the dash of the access token).",
                             required=False, max_length=20)
    bearer_token = _secret("Bearer token", f"{X_PORTAL} > Bearer Token (Generate). Reads mentions; optional when "
                           "the four keys below are set.", required=False)
    consumer_key = _secret("API key", f"{X_PORTAL} > Consumer Keys > API Key and Secret. Also verifies the "
                           "webhook's deliveries (Account Activity API).", required=False)
    consumer_secret = _secret("API key secret", "Shown with the API key (X shows it once: regenerate it if lost).",
                              required=False)
    access_token = _secret("Access token", f"{X_PORTAL} > Authentication Tokens > Access Token and Secret, generated "
                           "while signed in as the brand account. Needed to post replies and DMs.", required=False)
    access_token_secret = _secret("Access token secret", "Shown with the access token.", required=False)

    def clean_handle(self):
        handle = plain_text(self.cleaned_data.get("handle", ""), "The handle").lstrip("@")
        if not re.fullmatch(r"[A-Za-z0-9_]{1,15}", handle):
            raise ValidationError("An X handle is 1 to 15 letters, digits or underscores, e.g. @acme.")
        return f"@{handle}"

    def clean_external_user_id(self):
        value = (self.cleaned_data.get("external_user_id") or "").strip()
        if value and not re.fullmatch(r"\d{1,20}", value):
            raise ValidationError("The user id is digits only, e.g. 783214 (not the handle).")
        return value

    def clean(self):
        data = super().clean()
        have = {name: bool(self.stored(name)) for name in self.CREDENTIALS}
        some_user, all_user = any(have[k] for k in self.USER_KEYS), all(have[k] for k in self.USER_KEYS)
        if some_user and not all_user:
            missing = [self.fields[k].label for k in self.USER_KEYS if not have[k]]
            self.add_error(None, "Replies need all four of API key, API key secret, access token and access token "
                                 f"secret: {', '.join(missing)} missing.")
        elif not all_user and not have["bearer_token"]:
            self.add_error(None, "Enter the bearer token, or the API key and secret with the access token and secret "
                                 "(needed to reply).")
        if not data.get("external_user_id") and not self.errors:
            token = str(self.stored("access_token") or "")
            if re.fullmatch(r"\d{1,20}-\S+", token):
                data["external_user_id"] = token.split("-", 1)[0]
        return data


class MastodonForm(ChannelForm):
    provider = Provider.MASTODON
    ACCOUNT_FIELDS = ("api_base_url", "handle")
    CREDENTIALS = {"access_token": "access_token"}
    where = ("Signed in to the instance as the brand account: Preferences > Development > New application. "
             "Give it the scopes read and write (at least read:accounts, read:notifications, read:statuses and "
             "write:statuses), submit, open the application and copy “Your access token”.")

    api_base_url = _text("Instance URL", "The server the brand's account is on, e.g. https://mastodon.social.",
                         max_length=300, placeholder="https://mastodon.social")
    handle = _text("Account", "The brand's full handle, e.g. @acme@mastodon.social.", placeholder="@acme@mastodon.social")
    access_token = _secret("Access token", "Preferences > Development > your application > “Your access token”.")

    def clean_api_base_url(self):
        return web_address(self.cleaned_data.get("api_base_url", ""), "The instance URL", path_allowed=False)

    def clean_handle(self):
        handle = plain_text(self.cleaned_data.get("handle", ""), "The account").lstrip("@")
        if not re.fullmatch(r"[A-Za-z0-9_]{1,30}(@[A-Za-z0-9.-]{1,200}\.[A-Za-z]{2,63})?", handle):
            raise ValidationError("Enter the handle as @name@instance, e.g. @acme@mastodon.social.")
        if "@" not in handle:
            host = urlsplit(self.cleaned_data.get("api_base_url") or "").hostname
            handle = f"{handle}@{host}" if host else handle
        return f"@{handle}"


class BlueskyForm(ChannelForm):
    provider = Provider.BLUESKY
    ACCOUNT_FIELDS = ("handle", "api_base_url")
    CREDENTIALS = {"handle": "identifier", "app_password": "app_password"}
    where = ("In Bluesky, signed in as the brand account: Settings > Privacy and security > App passwords > "
             "Add App Password. Use the app password, never the account's own password.")

    handle = _text("Handle", "The brand's handle, e.g. acme.bsky.social or acme.com.", placeholder="acme.bsky.social")
    app_password = _secret("App password", "Settings > Privacy and security > App passwords (looks like "
                           "abcd-efgh-ijkl-mnop).")
    api_base_url = _text("PDS URL", "Optional. Empty: bsky.social. Only for an account on a self-hosted PDS: its "
                         "https address.", required=False, max_length=300)

    def clean_handle(self):
        handle = plain_text(self.cleaned_data.get("handle", ""), "The handle").lstrip("@").lower()
        if not re.fullmatch(r"([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}", handle) or len(handle) > 253:
            raise ValidationError("A Bluesky handle looks like a domain, e.g. acme.bsky.social.")
        return handle

    def clean_api_base_url(self):
        value = self.cleaned_data.get("api_base_url", "")
        return web_address(value, "The PDS URL", path_allowed=False) if value.strip() else ""


class RedditForm(ChannelForm):
    provider = Provider.REDDIT
    CREDENTIALS = {"handle": "username", "password": "password", "client_id": "client_id",
                   "client_secret": "client_secret"}
    where = ("Signed in to Reddit as the brand account, open reddit.com/prefs/apps, “create another app…”, choose "
             "“script”, any name, redirect uri http://localhost:8080, then “create app”.")

    handle = _text("Reddit username", "The brand's account, without u/, e.g. acme_support.", max_length=23)
    password = _secret("Password", "That account's Reddit password (a script app signs in as the account).",
                       spaces=True)
    client_id = _secret("Client id", "reddit.com/prefs/apps > your app: the string under “personal use script”.")
    client_secret = _secret("Client secret", "reddit.com/prefs/apps > your app > “secret”.")

    def clean_handle(self):
        handle = plain_text(self.cleaned_data.get("handle", ""), "The username").lstrip("@").removeprefix("u/")
        if not re.fullmatch(r"[A-Za-z0-9_-]{3,20}", handle):
            raise ValidationError("A Reddit username is 3 to 20 letters, digits, - or _, e.g. acme_support.")
        return handle

    def account_values(self) -> dict:
        return {**super().account_values(), "handle": f"u/{self.cleaned_data['handle']}"}

    def initial_for(self, account):
        return {**super().initial_for(account), "handle": account.handle.removeprefix("u/")}


SECURITY = [("starttls", "STARTTLS (usually port 587)"), ("ssl", "SSL/TLS (usually port 465)"),
            ("none", "None (a server on this machine only)")]


def _host(value: str, what: str) -> str:
    value = plain_text(value, what)
    if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?", value):
        raise ValidationError(f"{what} is a server name such as imap.example.com (no https://, no port).")
    return value.lower()


class EmailForm(ChannelForm):
    provider = Provider.EMAIL
    CREDENTIALS = {"username": "username", "password": "password", "imap_host": "imap_host",
                   "imap_port": "imap_port", "imap_ssl": "imap_ssl", "folder": "folder", "smtp_host": "smtp_host",
                   "smtp_port": "smtp_port", "smtp_security": "smtp_security", "smtp_username": "smtp_username",
                   "smtp_password": "smtp_password"}
    where = ("Your mail provider's IMAP and SMTP settings (its help pages list them). With Gmail or Microsoft 365 "
             "and two-step sign-in, create an app password for cxinbox and use it as the password.")

    handle = forms.EmailField(label="Support address", max_length=200,
                              help_text="The address customers write to, e.g. support@acme.com.")
    username = _text("IMAP user", "Usually the address itself.", max_length=200)
    password = _secret("IMAP password", "The mailbox's password or app password.", spaces=True)
    imap_host = _text("IMAP server", "e.g. imap.gmail.com, outlook.office365.com.", max_length=253)
    imap_port = forms.IntegerField(label="IMAP port", min_value=1, max_value=65535, initial=993,
                                   help_text="993 with SSL, 143 without.")
    imap_ssl = forms.BooleanField(label="IMAP over SSL", required=False, initial=True)
    folder = _text("Folder", "The folder read for new mail (read only: nothing is marked seen).", initial="INBOX",
                   max_length=200)
    smtp_host = _text("SMTP server", "For replies, e.g. smtp.gmail.com. Empty: replies cannot be sent.",
                      required=False, max_length=253)
    smtp_port = forms.IntegerField(label="SMTP port", min_value=1, max_value=65535, initial=587, required=False,
                                   help_text="587 with STARTTLS, 465 with SSL/TLS.")
    smtp_security = forms.ChoiceField(label="SMTP security", choices=SECURITY, initial="starttls")
    smtp_username = _text("SMTP user", "Optional. Empty: the IMAP user.", required=False, max_length=200)
    smtp_password = _secret("SMTP password", "Optional. Empty: the IMAP password.", required=False, spaces=True)

    def clean_handle(self):
        return plain_text(self.cleaned_data.get("handle", ""), "The address").lower()

    def clean_username(self):
        return plain_text(self.cleaned_data.get("username", ""), "The IMAP user")

    def clean_smtp_username(self):
        return plain_text(self.cleaned_data.get("smtp_username", ""), "The SMTP user")

    def clean_folder(self):
        return plain_text(self.cleaned_data.get("folder", ""), "The folder")

    def clean_imap_host(self):
        return _host(self.cleaned_data.get("imap_host", ""), "The IMAP server")

    def clean_smtp_host(self):
        value = self.cleaned_data.get("smtp_host", "")
        return _host(value, "The SMTP server") if value.strip() else ""

    def clean(self):
        data = super().clean()
        host = urlsplit(f"//{data.get('smtp_host') or ''}").hostname or ""
        if data.get("smtp_security") == "none" and data.get("smtp_host") and host not in LOOPBACK:
            self.add_error("smtp_security", "Without encryption the password would cross the network in clear: "
                                            "choose STARTTLS or SSL/TLS (None is only for a server on this machine).")
        return data


class WebhookForm(ChannelForm):
    provider = Provider.WEBHOOK
    ACCOUNT_FIELDS = ("api_base_url",)
    where = ("Any system that can POST JSON (a chat widget, an app-store review feed, a CRM) sends messages to the "
             "webhook URL shown after saving, with its token; agent replies go back signed to the reply URL.")

    api_base_url = _text("Reply URL", "Optional: where agent replies are POSTed (signed, docs/connectors.md). Empty: "
                         "replies cannot be sent.", required=False, max_length=300)

    def clean_api_base_url(self):
        value = self.cleaned_data.get("api_base_url", "")
        return web_address(value, "The reply URL", path_allowed=True) if value.strip() else ""


class DemoForm(ChannelForm):
    provider = Provider.DEMO
    where = "The built-in simulated network of `make run`: no credentials, mentions arrive by themselves."

    handle = _text("Handle", "The simulated brand's handle, e.g. @acme.", max_length=50, placeholder="@acme")

    def clean_handle(self):
        handle = plain_text(self.cleaned_data.get("handle", ""), "The handle").lstrip("@")
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,49}", handle):
            raise ValidationError("A handle is letters, digits, ., - or _, e.g. @acme.")
        return f"@{handle}"


NETWORK_FORMS: dict[str, type[ChannelForm]] = {
    Provider.TWITTER: TwitterForm, Provider.MASTODON: MastodonForm, Provider.BLUESKY: BlueskyForm,
    Provider.REDDIT: RedditForm, Provider.EMAIL: EmailForm, Provider.WEBHOOK: WebhookForm, Provider.DEMO: DemoForm,
}


class ConfirmForm(forms.Form):
    """A destructive action's second step: the box must be ticked (the page says what happens)."""

    confirm = forms.BooleanField(label="Yes, I understand", required=True)


class SurveyPolicyForm(forms.Form):
    """The account's survey policy (docs/reports.md, "Surveys")."""

    survey_auto = forms.ChoiceField(
        label="Survey sent automatically on resolve", choices=SurveyKind.choices,
        help_text="Sent by private message when a conversation of this channel is resolved, unless the agent "
                  "picks another survey (or none) on the resolve form.")
    survey_cap_days = forms.IntegerField(
        label="At most one survey per customer every", min_value=0, max_value=SURVEY_CAP_DAYS_MAX,
        help_text="days, on any channel; 0: no limit. It holds for every survey, an agent's choice on the resolve "
                  "form too: a survey it holds back is not sent, and the thread says why.")
