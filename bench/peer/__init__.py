"""The peer: django-helpdesk (pip-installed into a venv of its own by
bench/peer/setup.sh, never into requirements.txt) on the same number of
tickets as our conversations, in its own database (cx_bench_helpdesk)."""
from __future__ import annotations

import json
import os
import subprocess

from ..common import ROOT, db_exists, db_recreate, log

VENV = os.environ.get("BENCH_HELPDESK_VENV", "/tmp/helpdesk-venv")
DB = "cx_bench_helpdesk"


def peer_bench(*, tickets: int, requests: int) -> dict:
    if not os.path.exists(f"{VENV}/bin/python") or subprocess.run(
            [f"{VENV}/bin/python", "-c", "import helpdesk"], capture_output=True).returncode != 0:
        log("installing the peer into", VENV)
        subprocess.run([str(ROOT / "bench" / "peer" / "setup.sh")], check=True)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.peer.settings", "PYTHONPATH": str(ROOT), "PEER_DB": DB}
    fresh = os.environ.get("BENCH_REGENERATE") == "1" or not db_exists(DB)
    if fresh:
        db_recreate(DB)
        subprocess.run([f"{VENV}/bin/python", "-m", "django", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    version = subprocess.run([f"{VENV}/bin/python", "-c", "import importlib.metadata as m; "
                              "print(m.version('django-helpdesk'))"], capture_output=True, text=True).stdout.strip()
    log(f"peer: django-helpdesk {version}, {tickets:,} tickets")
    proc = subprocess.run([f"{VENV}/bin/python", str(ROOT / "bench" / "peer" / "run_peer.py"), str(tickets),
                           str(min(requests, 10))], cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    load = f", loaded with COPY in {out['load_seconds']:.0f} s" if "load_seconds" in out else ""
    out["note"] = (f"django-helpdesk {version} (Django {_django(env)}), {out['tickets']:,} tickets with 4 follow-ups "
                   f"each{load}, ~3% open, the rest resolved/closed; same PostgreSQL, same in-process test client, "
                   "logged in as a superuser. Its list page is a shell; the rows come from the DataTables JSON "
                   "endpoint, which counts the whole filtered set and annotates the last follow-up per ticket.")
    for r in out["rows"]:
        log(f"  peer {r['what']}: p50 {r['p50']:.0f} p95 {r['p95']:.0f} ms")
    return out


def _django(env) -> str:
    return subprocess.run([f"{VENV}/bin/python", "-c", "import django; print(django.get_version())"],
                          capture_output=True, text=True, env=env).stdout.strip()
