"""Before/after of the ingest service alone (routing and live pushes stubbed
out), same mentions, same database: the foundation's per-mention path (git
21e5888, loaded from history) against the batch path of this checkout. Since
item 20 of docs/performance-history.md the batch path also scores language and
sentiment (the per-mention path does not: routing did it then)."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
import time

from .common import ROOT, load

BEFORE_COMMIT = "21e5888"


def _old_module():
    src = subprocess.run(["git", "show", f"{BEFORE_COMMIT}:apps/connectors/services.py"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    path = ROOT / "bench" / ".services_before.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("apps.connectors._services_before", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def ingest_ab(*, account, n: int) -> list[dict]:
    from django.db import connection

    import apps.ingest.services as after
    from apps.connectors.providers.base import mention_from_dict

    from . import ingest
    from .mentions import make_mentions

    before = _old_module()
    # ingest scores language + sentiment (docs/performance-history.md item 20): its models loaded first, as
    # the worker loads them before it takes a task (cxinbox/celery.py), not timed on the first batch
    from cxinbox.celery import _warm_text_models

    _warm_text_models()
    saved = after._after_ingest
    after._after_ingest = before._after_ingest = lambda result, **kwargs: None
    out = []
    try:
        for name, mod in (("before: per mention (21e5888)", before), ("after: batch", after)):
            ingest.reset_inbox()
            mentions = [mention_from_dict(m) for m in make_mentions(n, f"ab{time.time():.0f}")]
            count = [0]

            def counter(execute, sql, params, many, context):
                count[0] += 1
                return execute(sql, params, many, context)

            c0, w0 = time.process_time(), time.perf_counter()
            with connection.execute_wrapper(counter):
                for i in range(0, n, 100):
                    mod.mentions_ingest(account=account, mentions=mentions[i:i + 100])
            wall, cpu = time.perf_counter() - w0, time.process_time() - c0
            out.append({"what": name, "mentions": n, "rate": n / wall, "cpu_ms": 1e3 * cpu / n,
                        "wall_ms": 1e3 * wall / n, "queries": count[0] / n, "load": load()})
    finally:
        after._after_ingest = saved
    return out
