"""The layers hold (.importlinter; docs/architecture.md, "Layers"): no app imports an app above
it (only the interfaces reach up), and no domain module imports a page, API or socket module. .ci/run runs
`make lint` too; here so a local `make test` says it first."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_layer_contracts_are_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(lint), "--config", str(ROOT / ".importlinter")], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "2 kept, 0 broken" in out.stdout


def test_no_upward_import_is_excepted_beyond_the_interfaces():
    """The layer contract's only exceptions are the interfaces (views, API, serializers) over
    every app's domain code. The ledger of upward domain imports (11 lines) is empty: a new one
    is a decision for docs/architecture.md, not a quiet addition."""
    text = (ROOT / ".importlinter").read_text()
    layers = text.split("[importlinter:contract:layers]", 1)[1].split("[importlinter:contract:interfaces]", 1)[0]
    ignored = [line.strip() for line in layers.split("ignore_imports", 1)[1].splitlines()
               if "->" in line and not line.strip().startswith("#")]
    assert ignored == ["apps.*.views -> apps.**", "apps.*.api -> apps.**", "apps.*.serializers -> apps.**"]


def test_no_function_level_import_of_another_app():
    """Imports inside functions used to dodge cycles between apps (issue 20): every import of
    another app is at the top of its module, where lint-imports sees it, except in an
    AppConfig.ready() (apps.py: models are not importable before it). Within an app, services
    still import their own tasks where they queue them (tasks import the services)."""
    found = []
    for path in sorted((ROOT / "apps").rglob("*.py")):
        parts = path.relative_to(ROOT / "apps").parts
        if "migrations" in parts or parts[-1] == "apps.py":
            continue
        here = parts[0]
        for number, line in enumerate(path.read_text().splitlines(), 1):
            stripped = line.strip()
            if line[:1] in (" ", "\t") and stripped.startswith(("from apps.", "import apps.")):
                if stripped.split()[1].split(".")[1] != here:
                    found.append(f"{path.relative_to(ROOT)}:{number}: {stripped}")
    assert found == []


def test_a_web_process_knows_the_ingest_task_the_webhook_queues_by_name():
    """The webhook (connectors) queues ingest.push_delivery by name: a process that never
    imported apps.ingest (a web worker) must still find it, or every push waits for the sweep."""
    code = ("import django; django.setup(); from cxinbox.celery import app; "
            "from apps.connectors.push import PUSH_INGEST_TASK; print(PUSH_INGEST_TASK in app.tasks)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "DJANGO_SETTINGS_MODULE": "cxinbox.settings.test"})
    assert out.stdout.strip().splitlines()[-1:] == ["True"], out.stderr[-2000:]
