"""Email: imapclient against the IMAP stand-in, smtplib against a real local
SMTP server (aiosmtpd), both on 127.0.0.1."""
import email
import email.policy
import socket

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from apps.connectors.providers.base import AuthError, OutboundReply, PermanentError
from apps.connectors.providers.email import EmailProvider, strip_quoted
from apps.connectors.standins.imap import ImapStandIn
from apps.inbox.models import Conversation, Message
from apps.ingest.polling import account_poll
from tests.factories import ChannelAccountFactory

pytestmark = pytest.mark.django_db


class Mailbox:
    """aiosmtpd handler: keeps what it accepts."""

    def __init__(self):
        self.messages = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.endswith("@bounce.example"):
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append({"from": envelope.mail_from, "to": envelope.rcpt_tos,
                              "msg": email.message_from_bytes(envelope.content, policy=email.policy.default),
                              "login": session.authenticated})
        return "250 Message accepted for delivery"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp():
    box = Mailbox()

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            b"support@acme.example", b"imap-pass")
        return AuthResult(success=ok, handled=False)

    controller = Controller(box, hostname="127.0.0.1", port=_free_port(), authenticator=authenticator,
                            auth_require_tls=False)
    controller.start()
    box.port = controller.port
    yield box
    controller.stop()


@pytest.fixture
def imap(settings):
    settings.PROVIDER_TIMEOUT_SECONDS = 3.0
    with ImapStandIn() as server:
        yield server


@pytest.fixture
def account(imap, smtp):
    return ChannelAccountFactory(
        provider="email", name="Acme Support", handle="support@acme.example", external_user_id="",
        credentials={"username": "support@acme.example", "password": "imap-pass", "imap_host": "127.0.0.1",
                     "imap_port": imap.port, "imap_ssl": False, "smtp_host": "127.0.0.1", "smtp_port": smtp.port,
                     "smtp_security": "none"},
    )


FIRST = """From: Maria Garcia <maria@example.org>
To: Acme Support <support@acme.example>
Subject: Invoice 1042 charged twice
Date: Mon, 23 Nov 2026 08:00:00 +0000
Message-ID: <CAF1-first@mail.example.org>
Content-Type: text/plain; charset=utf-8

Hello, my card was charged twice for invoice 1042.
Maria
"""

FOLLOW_UP = """From: Maria Garcia <maria@example.org>
To: support@acme.example
Subject: Re: Invoice 1042 charged twice
Date: Mon, 23 Nov 2026 09:30:00 +0000
Message-ID: <CAF1-third@mail.example.org>
In-Reply-To: {parent}
References: <CAF1-first@mail.example.org> {parent}
Content-Type: text/plain; charset=utf-8

Thanks, it shows up now.

On Mon, 23 Nov 2026 at 09:00, Acme Support <support@acme.example> wrote:
> We refunded the second charge.
"""


def test_poll_reads_new_mail_by_uid_without_marking_it_seen(imap, account):
    uid = imap.deliver(FIRST)
    result = EmailProvider(account).fetch_mentions({})
    [m] = result.mentions
    assert m.external_id == "<CAF1-first@mail.example.org>" and m.thread_id == m.external_id
    assert m.author_handle == "maria@example.org" and m.author_name == "Maria Garcia"
    assert m.text.startswith("Invoice 1042 charged twice\n\nHello, my card") and m.is_private
    assert result.cursor["last_uid"] == uid and result.cursor["uidvalidity"] == imap.uidvalidity
    assert any("EXAMINE" in c for c in imap.commands)  # read-only
    assert any("BODY.PEEK[]" in c for c in imap.commands)  # never sets \\Seen
    # nothing new: the "n:*" quirk returns the last UID again, and it is not re-read
    assert EmailProvider(account).fetch_mentions(result.cursor).mentions == []


def test_first_poll_of_a_mailbox_reads_only_recent_mail(imap, account):
    import datetime as dt

    imap.deliver(FIRST.replace("CAF1-first", "old-one"), internaldate=dt.datetime(2024, 1, 5, tzinfo=dt.timezone.utc))
    recent = imap.deliver(FIRST)
    result = EmailProvider(account).fetch_mentions({})
    assert [m.external_id for m in result.mentions] == ["<CAF1-first@mail.example.org>"]
    assert result.cursor["last_uid"] == recent


def test_new_uidvalidity_rereads_the_folder(imap, account):
    imap.deliver(FIRST)
    cursor = EmailProvider(account).fetch_mentions({}).cursor
    imap.rebuild_mailbox()
    again = EmailProvider(account).fetch_mentions(cursor)
    assert [m.external_id for m in again.mentions] == ["<CAF1-first@mail.example.org>"]
    assert again.cursor["uidvalidity"] == imap.uidvalidity and again.cursor["last_uid"] == 1001


def test_own_mail_and_autoreplies_are_skipped(imap, account):
    imap.deliver("From: support@acme.example\nTo: x@example.org\nSubject: copy\nMessage-ID: <own@acme>\n\nhi\n")
    imap.deliver("From: bob@example.org\nTo: support@acme.example\nSubject: Out of office\n"
                 "Auto-Submitted: auto-replied\nMessage-ID: <ooo@example.org>\n\naway\n")
    assert EmailProvider(account).fetch_mentions({}).mentions == []


def test_refused_imap_login_is_an_auth_error(imap, account):
    imap.password = "rotated"
    with pytest.raises(AuthError, match="AUTHENTICATIONFAILED|Authentication failed"):
        EmailProvider(account).fetch_mentions({})


def test_reply_threads_by_headers_and_customer_answer_joins_the_conversation(imap, smtp, account):
    imap.deliver(FIRST)
    account_poll(account=account)
    conv = Conversation.objects.get(channel_account=account)
    first = conv.messages.get()
    reply = OutboundReply(text="We refunded the second charge.", in_reply_to_external_id=first.external_id,
                          is_private=True, recipient_external_id="maria@example.org", client_reference="77",
                          parent_raw=first.raw)  # as the inbox hands it in (inbox.services._outbound_reply)
    sent = EmailProvider(account).send_reply(reply)

    [delivered] = smtp.messages
    msg = delivered["msg"]
    assert delivered["to"] == ["maria@example.org"] and delivered["login"]
    assert msg["Subject"] == "Re: Invoice 1042 charged twice"
    assert msg["In-Reply-To"] == "<CAF1-first@mail.example.org>"
    assert msg["References"] == "<CAF1-first@mail.example.org>"
    assert msg["From"] == "Acme Support <support@acme.example>"
    assert msg["Message-ID"] == sent.external_id == f"<cxinbox.{account.pk}.77@acme.example>"
    assert msg.get_content().strip() == "We refunded the second charge."

    Message.objects.create(conversation=conv, channel_account=account, direction="out", text=reply.text,
                           external_id=sent.external_id, sent_at=first.sent_at, send_status="sent")
    imap.deliver(FOLLOW_UP.format(parent=sent.external_id))
    account_poll(account=account)
    latest = conv.messages.filter(direction="in").order_by("-sent_at").first()
    assert Conversation.objects.filter(channel_account=account).count() == 1
    assert latest.text == "Thanks, it shows up now."  # quoted history stripped
    assert latest.in_reply_to_external_id == sent.external_id


def test_refused_recipient_and_wrong_smtp_password_are_reported(smtp, account):
    bounce = OutboundReply(text="hi", in_reply_to_external_id="", is_private=True,
                           recipient_external_id="nobody@bounce.example", client_reference="1")
    with pytest.raises(PermanentError, match="refused"):
        EmailProvider(account).send_reply(bounce)
    account.credentials = {**account.credentials, "smtp_password": "wrong"}
    ok = OutboundReply(text="hi", in_reply_to_external_id="", is_private=True,
                       recipient_external_id="maria@example.org", client_reference="2")
    with pytest.raises(AuthError):
        EmailProvider(account).send_reply(ok)
    assert smtp.messages == []


def test_quoted_history_is_stripped():
    text = "Still broken.\n\n-----Original Message-----\nFrom: Acme\n> old"
    assert strip_quoted(text) == "Still broken."
    assert strip_quoted("ok\n> quoted\n> more\n") == "ok"
