"""A small IMAP4rev1 server on 127.0.0.1 for the email connector's tests: one
mailbox, LOGIN, SELECT/EXAMINE with UIDVALIDITY and UIDNEXT, UID SEARCH (with
the RFC 3501 quirk that "n:*" always matches the highest UID), UID FETCH of
BODY.PEEK[] / RFC822 / INTERNALDATE / FLAGS as literals, NOOP, LOGOUT.

Faults a test can set: a refused login (a revoked app password) and a rebuilt
mailbox (new UIDVALIDITY, renumbered UIDs)."""
from __future__ import annotations

import datetime as dt
import re
import socketserver
import threading


class ImapStandIn:
    def __init__(self, username: str = "support@acme.example", password: str = "imap-pass"):
        self.username, self.password = username, password
        self.lock = threading.RLock()
        self.uidvalidity = 1700000001
        self.next_uid = 1
        self.messages: list[dict] = []  # {"uid", "raw", "internaldate", "flags"}
        self.commands: list[str] = []
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                outer._session(self.rfile, self.wfile)

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def start(self):
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # --- mailbox helpers for tests --------------------------------------------------
    def deliver(self, raw: bytes | str, *, flags=(), internaldate: dt.datetime | None = None) -> int:
        if isinstance(raw, str):
            raw = raw.replace("\r\n", "\n").replace("\n", "\r\n").encode()
        with self.lock:
            uid = self.next_uid
            self.next_uid += 1
            self.messages.append({"uid": uid, "raw": raw, "flags": list(flags),
                                  "internaldate": internaldate or dt.datetime.now(dt.timezone.utc)})
        return uid

    def rebuild_mailbox(self) -> None:
        """As after a server migration: new UIDVALIDITY, every UID renumbered."""
        with self.lock:
            self.uidvalidity += 1
            for i, msg in enumerate(self.messages, start=1):
                msg["uid"] = 1000 + i
            self.next_uid = 1001 + len(self.messages)

    # --- protocol ---------------------------------------------------------------------
    def _session(self, rfile, wfile):
        def send(line: str | bytes):
            wfile.write(line if isinstance(line, bytes) else line.encode() + b"\r\n")
            wfile.flush()

        send("* OK [CAPABILITY IMAP4rev1 LITERAL+ AUTH=PLAIN] cxinbox IMAP stand-in ready")
        selected = False
        while True:
            line = rfile.readline()
            if not line:
                return
            line = line.rstrip(b"\r\n").decode(errors="replace")
            # client literals ({n}) in LOGIN: read them inline
            while (m := re.search(r"\{(\d+)\+?\}$", line)):
                if not line.endswith("+}"):
                    send("+ go ahead")
                data = rfile.read(int(m.group(1))).decode()
                line = line[: m.start()] + '"' + data.replace('"', '\\"') + '"' + rfile.readline().rstrip(b"\r\n").decode()
            with self.lock:
                self.commands.append(line)
            tag, _, rest = line.partition(" ")
            cmd, _, args = rest.partition(" ")
            cmd = cmd.upper()
            if cmd == "UID":
                sub, _, args = args.partition(" ")
                cmd = "UID " + sub.upper()
            if cmd == "CAPABILITY":
                send("* CAPABILITY IMAP4rev1 LITERAL+ AUTH=PLAIN")
                send(f"{tag} OK CAPABILITY completed")
            elif cmd == "LOGIN":
                user, password = _parse_strings(args)
                if (user, password) == (self.username, self.password):
                    send(f"{tag} OK [CAPABILITY IMAP4rev1] Logged in")
                else:
                    send(f"{tag} NO [AUTHENTICATIONFAILED] Authentication failed.")
            elif cmd in ("SELECT", "EXAMINE"):
                with self.lock:
                    exists, validity, nxt = len(self.messages), self.uidvalidity, self.next_uid
                selected = True
                send("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)")
                send(f"* {exists} EXISTS")
                send("* 0 RECENT")
                send(f"* OK [UIDVALIDITY {validity}] UIDs valid")
                send(f"* OK [UIDNEXT {nxt}] Predicted next UID")
                mode = "READ-ONLY" if cmd == "EXAMINE" else "READ-WRITE"
                send(f"{tag} OK [{mode}] {cmd} completed")
            elif cmd == "UID SEARCH" and selected:
                send("* SEARCH " + " ".join(str(u) for u in self._search(args)))
                send(f"{tag} OK SEARCH completed")
            elif cmd == "UID FETCH" and selected:
                self._fetch(args, send)
                send(f"{tag} OK FETCH completed")
            elif cmd == "NOOP":
                send(f"{tag} OK NOOP completed")
            elif cmd == "LOGOUT":
                send("* BYE Logging out")
                send(f"{tag} OK LOGOUT completed")
                return
            else:
                send(f"{tag} BAD Unknown or unsupported command {cmd}")

    def _search(self, args: str) -> list[int]:
        with self.lock:
            uids = [m["uid"] for m in self.messages]
            since = re.search(r"SINCE (\d{1,2}-[A-Za-z]{3}-\d{4})", args, re.I)
            if since:  # by internal date, as servers do
                day = dt.datetime.strptime(since.group(1), "%d-%b-%Y").date()
                return [m["uid"] for m in self.messages if m["internaldate"].date() >= day]
        m = re.search(r"UID (\d+):(\*|\d+)", args, re.I)
        if not m:
            return uids
        lo = int(m.group(1))
        hi = max(uids, default=0) if m.group(2) == "*" else int(m.group(2))
        found = [u for u in uids if lo <= u <= hi]
        if m.group(2) == "*" and not found and uids:
            found = [max(uids)]  # "n:*" always includes the highest UID (RFC 3501 6.4.8)
        return found

    def _fetch(self, args: str, send) -> None:
        seq_set, _, items = args.partition(" ")
        wanted: set[int] = set()
        with self.lock:
            top = max((m["uid"] for m in self.messages), default=0)
            for part in seq_set.split(","):
                lo, _, hi = part.partition(":")
                lo_i = top if lo == "*" else int(lo)
                hi_i = lo_i if not hi else (top if hi == "*" else int(hi))
                wanted.update(range(min(lo_i, hi_i), max(lo_i, hi_i) + 1))
            rows = [(i, m) for i, m in enumerate(self.messages, start=1) if m["uid"] in wanted]
        items_u = items.upper()
        for seq, msg in rows:
            fields = [f"UID {msg['uid']}"]
            if "FLAGS" in items_u:
                fields.append("FLAGS (" + " ".join(msg["flags"]) + ")")
            if "INTERNALDATE" in items_u:
                fields.append('INTERNALDATE "' + msg["internaldate"].strftime("%d-%b-%Y %H:%M:%S +0000") + '"')
            head = f"* {seq} FETCH (" + " ".join(fields)
            if "BODY" in items_u or "RFC822" in items_u:
                name = "RFC822" if "RFC822" in items_u and "BODY" not in items_u else "BODY[]"
                send(head.encode() + f" {name} {{{len(msg['raw'])}}}\r\n".encode() + msg["raw"] + b")\r\n")
            else:
                send(head + ")")


def _parse_strings(args: str) -> list[str]:
    out = []
    for m in re.finditer(r'"((?:[^"\\]|\\.)*)"|(\S+)', args):
        out.append(m.group(1).replace('\\"', '"').replace("\\\\", "\\") if m.group(1) is not None else m.group(2))
    return out
