"""A worker's CPU priority where Linux's autogroups would void its `nice`.

Procfile.production starts the Celery workers under `nice -n` (WORKER_NICE, REPORTS_NICE) so
that a page or a webhook gets the CPU before work that can wait. With autogroup scheduling
(`/proc/sys/kernel/sched_autogroup_enabled` = 1, the default of most distributions' kernels)
the CPU is shared between *sessions* first, and a process's nice ranks it only against the
processes of its own session. honcho starts each Procfile line in a session of its own (as
systemd starts a service), so the niceness weighed nothing against the web tier or the other
workers: on the edge bench at 500 deliveries/s the reports worker "at nice 19" took 0.34
cores and the ingest worker 0.29 (docs/performance-history.md, 2026-12-07 third session).

A worker that leads its own session gives that session's autogroup its own niceness, which
the kernel weighs against the other sessions. Only then: a worker started from a shell with
other programs shares the shell's session, where plain nice already works and the group's
niceness would lower them too."""
from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

AUTOGROUP = "/proc/self/autogroup"  # "/autogroup-42 nice 0"


def autogroup_nice_read(path: str = AUTOGROUP) -> int | None:
    try:
        with open(path) as f:
            return int(f.read().split()[-1])
    except (OSError, ValueError, IndexError):
        return None


def autogroup_nice_follow() -> int | None:
    """Sets this process's session's autogroup to the process's niceness, when it is positive
    and this process leads the session. Returns the niceness set, else None."""
    nice = os.getpriority(os.PRIO_PROCESS, 0)
    if nice <= 0 or os.getsid(0) != os.getpid():
        return None
    current = autogroup_nice_read()
    if current is None:  # no autogroups here (kernel, container): plain nice already holds
        return None
    if current != nice:
        try:
            with open(AUTOGROUP, "w") as f:
                f.write(str(nice))
        except OSError as exc:  # a kernel or container that refuses it: plain nice is what remains
            log.warning("the session's CPU priority not set to nice %s: %s", nice, exc)
            return None
    return nice
