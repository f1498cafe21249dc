"""Email: IMAP polling with imapclient, replies over SMTP with smtplib.

Polling reads the folder read-only with BODY.PEEK[] (nothing is marked seen)
from the last UID stored. UIDs only mean something within one UIDVALIDITY: when
the server reports a new one (mailbox rebuilt), the folder is re-read from the
last successful day and the Message-ID unique key drops what is stored already.

Threading follows RFC 5322: a message's In-Reply-To is its parent, the first
id in References is the thread. A reply carries In-Reply-To = the customer's
Message-ID, References = their References + that id, "Re: " + their subject,
and a Message-ID made from our reply's id, so a resent reply is recognisable.

Credentials: username, password, imap_host, imap_port, imap_ssl (default true),
folder (INBOX), initial_days (7: how far back the first poll reads), smtp_host, smtp_port, smtp_security ("ssl", "starttls" or
"none"), smtp_username/smtp_password (default: the IMAP ones). The account's
handle is the address customers write to."""
from __future__ import annotations

import contextlib
import datetime as dt
import email
import email.policy
import email.utils
import re
import smtplib
import socket
import ssl
from email.message import EmailMessage

import imapclient
from django.conf import settings
from django.utils import timezone
from imapclient.exceptions import IMAPClientError, LoginError

from .base import (AuthError, BaseProvider, ConnectionCheck, InboundMention, OutboundReply, PermanentError, PollResult,
                   SentReply, TransientError, UnknownOutcome, network_time, normalize_or_skip, rfc2822_time)
from .mastodon import html_to_text

NETWORK = "Email"
FETCH_CHUNK = 50
INITIAL_DAYS = 7  # how far back the first poll of a mailbox reads
MSGID_RE = re.compile(r"<[^<>\s]+>")
# "On Tue, 3 Jun 2025 at 10:00, Acme <support@acme.example> wrote:" and what follows is quoted history.
QUOTE_HEADER_RE = re.compile(r"^\s*(On .{4,200}wrote:|-----Original Message-----)\s*$", re.M | re.S)


def message_ids(value) -> list[str]:
    return MSGID_RE.findall(str(value or ""))


def strip_quoted(text: str) -> str:
    """The new part of a reply: drop the quoted history mail clients append."""
    m = QUOTE_HEADER_RE.search(text)
    if m:
        text = text[: m.start()]
    lines = text.rstrip().splitlines()
    while lines and (lines[-1].startswith(">") or not lines[-1].strip()):
        lines.pop()
    return "\n".join(lines).strip() or text.strip()


class EmailProvider(BaseProvider):
    name = "email"
    max_reply_length = 20000
    supports_private_replies = True  # every email is private

    def __init__(self, account):
        super().__init__(account)
        self.creds = account.credentials or {}
        self.address = account.handle.strip().lower()

    # --- IMAP -------------------------------------------------------------------------
    def _imap(self) -> imapclient.IMAPClient:
        c = self.creds
        use_ssl = bool(c.get("imap_ssl", True))
        try:
            client = imapclient.IMAPClient(c.get("imap_host", ""), port=int(c.get("imap_port") or (993 if use_ssl else 143)),
                                           ssl=use_ssl, timeout=settings.PROVIDER_TIMEOUT_SECONDS)
        except (OSError, IMAPClientError) as exc:
            raise TransientError(f"{NETWORK}: cannot reach the IMAP server ({exc.__class__.__name__})") from exc
        try:
            client.login(c.get("username", self.address), c.get("password", ""))
        except LoginError as exc:
            _close(client)
            raise AuthError(f"{NETWORK}: the IMAP server refused the login ({_text(exc)})") from exc
        return client

    def connection_check(self) -> ConnectionCheck:
        """Signs in to IMAP and opens the folder read-only, then (when an SMTP host is set)
        connects to SMTP and signs in there: nothing is read, marked or sent."""
        folder = self.creds.get("folder", "INBOX")
        client = self._imap()
        try:
            info = client.select_folder(folder, readonly=True)
            count = int(info.get(b"EXISTS", 0))
        except (IMAPClientError, OSError, socket.timeout) as exc:
            raise PermanentError(f"{NETWORK}: the folder {folder!r} cannot be opened ({_text(exc)})") from exc
        finally:
            _close(client)
        detail = f"IMAP: signed in, {folder} holds {count} message{'' if count == 1 else 's'}"
        if self.creds.get("smtp_host"):
            self._smtp_check()
            detail += "; SMTP: signed in"
        else:
            detail += "; no SMTP server set: replies cannot be sent"
        return ConnectionCheck(detail=detail, handle=self.address)

    def _smtp_check(self) -> None:
        with self._smtp():
            pass

    @contextlib.contextmanager
    def _smtp(self):
        """A signed-in connection to the account's SMTP server (Test connection and sending share
        it), closed afterwards. Nothing is sent yet, so any failure here is safe to retry."""
        c = self.creds
        host, security = c.get("smtp_host", ""), c.get("smtp_security", "starttls")
        port = int(c.get("smtp_port") or {"ssl": 465, "starttls": 587}.get(security, 25))
        timeout = settings.PROVIDER_TIMEOUT_SECONDS
        try:
            smtp = (smtplib.SMTP_SSL(host, port, timeout=timeout, context=ssl.create_default_context())
                    if security == "ssl" else smtplib.SMTP(host, port, timeout=timeout))
        except (OSError, smtplib.SMTPException) as exc:
            raise TransientError(f"{NETWORK}: cannot reach the SMTP server ({exc.__class__.__name__})") from exc
        try:
            try:
                if security == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
                user = c.get("smtp_username", c.get("username"))
                if user:
                    smtp.login(user, c.get("smtp_password", c.get("password", "")))
            except smtplib.SMTPAuthenticationError as exc:
                raise AuthError(f"{NETWORK}: the SMTP server refused the login ({exc.smtp_code})") from exc
            except (smtplib.SMTPException, OSError) as exc:
                raise TransientError(f"{NETWORK}: SMTP error ({_text(exc)})") from exc
            yield smtp
        finally:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()

    def fetch_mentions(self, cursor: dict) -> PollResult:
        folder = self.creds.get("folder", "INBOX")
        client = self._imap()
        try:
            info = client.select_folder(folder, readonly=True)
            validity = int(info.get(b"UIDVALIDITY", 0))
            last_uid = int(cursor.get("last_uid", 0))
            if not cursor:
                # a newly connected mailbox: recent mail only, not years of history
                days = int(self.creds.get("initial_days", INITIAL_DAYS))
                uids = client.search(["SINCE", timezone.now().date() - dt.timedelta(days=days)])
            elif cursor.get("uidvalidity") and int(cursor["uidvalidity"]) != validity:
                # UIDs were renumbered: re-read from the last good day, ingest drops what is stored.
                since = dt.date.fromisoformat(cursor["since_date"]) if cursor.get("since_date") else None
                uids = client.search(["SINCE", since]) if since else client.search("ALL")
                last_uid = 0
            else:
                uids = client.search(["UID", f"{last_uid + 1}:*"])
            # "n:*" always matches the highest UID, even one we have: keep only new ones
            uids = sorted(u for u in uids if u > last_uid)
            limit = settings.POLL_MAX_PAGES * FETCH_CHUNK
            batch, rest = uids[:limit], uids[limit:]
            mentions: list[InboundMention] = []
            for i in range(0, len(batch), FETCH_CHUNK):
                chunk = batch[i:i + FETCH_CHUNK]
                for uid, data in sorted(client.fetch(chunk, ["BODY.PEEK[]", "INTERNALDATE"]).items()):
                    raw = data.get(b"BODY[]") or data.get(b"RFC822")
                    if raw is None:
                        continue
                    mention = normalize_or_skip(
                        lambda r: self.normalize(r, uid=uid, uidvalidity=validity,
                                                 received=data.get(b"INTERNALDATE")), raw, network=NETWORK)
                    if mention:
                        mentions.append(mention)
        except (IMAPClientError, OSError, socket.timeout) as exc:
            raise TransientError(f"{NETWORK}: IMAP error ({_text(exc)})") from exc
        finally:
            _close(client)
        new_last = batch[-1] if batch else last_uid
        today = timezone.now().date() - dt.timedelta(days=1)
        new_cursor = {"uidvalidity": validity, "last_uid": new_last, "since_date": today.isoformat()}
        return PollResult(mentions, new_cursor, complete=not rest)

    def normalize(self, raw: bytes, *, uid: int = 0, uidvalidity: int = 0, received=None) -> InboundMention | None:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        sender_name, sender = email.utils.parseaddr(str(msg.get("From", "")))
        sender = sender.lower()
        if not sender or sender == self.address:
            return None  # our own copies (Sent folders, Bcc) are not customer mail
        if str(msg.get("Auto-Submitted", "no")).lower() != "no" or msg.get("X-Autoreply"):
            return None  # vacation replies and bounces would loop
        ids = message_ids(msg.get("Message-ID"))
        message_id = ids[0] if ids else f"<imap.{uidvalidity}.{uid}@{self.address.split('@')[-1]}>"
        parents = message_ids(msg.get("In-Reply-To"))
        references = message_ids(msg.get("References"))
        subject = str(msg.get("Subject", "")).strip()
        body = msg.get_body(preferencelist=("plain", "html"))
        text = ""
        if body is not None:
            try:
                content = body.get_content()
            except (LookupError, ValueError, AssertionError):  # an unknown charset would fail every poll
                content = (body.get_payload(decode=True) or b"").decode("utf-8", errors="replace")
            text = html_to_text(content) if body.get_content_type() == "text/html" else content
        text = strip_quoted(text)
        if not parents and subject:
            text = f"{subject}\n\n{text}".strip()  # a new thread: the subject is half the message
        # The sender writes Date: (year 9999, year 1...): believed when sane, else the
        # server's INTERNALDATE (when sane), else now.
        arrival = network_time(received if isinstance(received, dt.datetime) else None)
        created = network_time(str(msg.get("Date") or ""), rfc2822_time, arrival=arrival)
        reply_to = email.utils.parseaddr(str(msg.get("Reply-To", "")))[1].lower()
        return InboundMention(
            external_id=message_id,
            text=text,
            created_at=created,
            author_external_id=sender,
            author_handle=sender,
            author_name=sender_name,
            thread_id=references[0] if references else (parents[0] if parents else message_id),
            in_reply_to_external_id=parents[0] if parents else "",
            is_private=True,
            raw={"subject": subject, "from": str(msg.get("From", "")), "to": str(msg.get("To", "")),
                 "cc": str(msg.get("Cc", "")), "reply_to": reply_to, "message_id": message_id,
                 "in_reply_to": parents[0] if parents else "", "references": references, "uid": uid,
                 "uidvalidity": uidvalidity},
        )

    # --- SMTP ---------------------------------------------------------------------
    def build_reply(self, reply: OutboundReply) -> EmailMessage:
        # the headers we stored with the customer's email (the inbox hands them in)
        parent = reply.parent_raw if reply.in_reply_to_external_id and isinstance(reply.parent_raw, dict) else {}
        to = parent.get("reply_to") or email.utils.parseaddr(parent.get("from", ""))[1] or reply.recipient_external_id
        if not to or "@" not in to:
            raise PermanentError(f"{NETWORK}: no address to reply to")
        subject = parent.get("subject") or "Your message"
        if not re.match(r"^\s*re\s*:", subject, re.I):
            subject = f"Re: {subject}"
        domain = self.address.split("@")[-1] or "cxinbox.invalid"
        msg = EmailMessage()
        msg["From"] = email.utils.formataddr((self.account.name, self.address))
        msg["To"] = to
        msg["Subject"] = subject
        msg["Date"] = email.utils.formatdate(usegmt=True)
        # Derived from our reply's id: a resend carries the same id, and mail clients dedupe it.
        msg["Message-ID"] = f"<cxinbox.{self.account.pk}.{reply.client_reference}@{domain}>"
        if reply.in_reply_to_external_id:
            msg["In-Reply-To"] = reply.in_reply_to_external_id
            refs = list(parent.get("references") or [])
            msg["References"] = " ".join([*refs, reply.in_reply_to_external_id][-20:])
        msg.set_content(reply.text)
        return msg

    def send_reply(self, reply: OutboundReply) -> SentReply:
        msg = self.build_reply(reply)
        with self._smtp() as smtp:
            try:
                refused = smtp.send_message(msg, from_addr=self.address, to_addrs=[msg["To"]])
            except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused) as exc:
                raise PermanentError(f"{NETWORK}: the SMTP server refused the address ({_text(exc)})") from exc
            except smtplib.SMTPDataError as exc:
                if 400 <= exc.smtp_code < 500:
                    raise TransientError(f"{NETWORK}: the SMTP server deferred the message ({exc.smtp_code})") from exc
                raise PermanentError(f"{NETWORK}: the SMTP server rejected the message ({exc.smtp_code})") from exc
            except (smtplib.SMTPServerDisconnected, socket.timeout, TimeoutError) as exc:
                # The message may have been accepted before the line dropped.
                raise UnknownOutcome(f"{NETWORK}: the SMTP connection dropped while sending") from exc
            except (smtplib.SMTPException, OSError) as exc:
                raise TransientError(f"{NETWORK}: SMTP error ({exc.__class__.__name__})") from exc
        if refused:
            raise PermanentError(f"{NETWORK}: the SMTP server refused {', '.join(refused)}")
        return SentReply(external_id=msg["Message-ID"], raw={"to": msg["To"], "subject": msg["Subject"]})


def _close(client) -> None:
    try:
        client.logout()
    except Exception:  # the connection may already be gone
        pass


def _text(exc: Exception) -> str:
    value = exc.args[0] if exc.args else exc
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    return str(value)[:200]
