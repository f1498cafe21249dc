"""The layers hold (.importlinter; docs/architecture.md, "Layers"): no app imports an app above
it (only the interfaces reach up), and no domain module imports a page, API or socket module. .ci/run runs
`make lint` too; here so a local `make test` says it first."""
import os
import re
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


def test_no_function_level_import_of_project_code():
    """Imports inside functions used to dodge cycles (issue 20): between apps, and between a
    service and its app's tasks (the tasks import the services). Every import of project code
    is at the top of its module, where lint-imports sees it; services queue tasks by name
    (apps/core/task_queue.py). Only an AppConfig.ready() (apps.py: models are not importable
    before it) and management commands may import late."""
    found = []
    for path in sorted((ROOT / "apps").rglob("*.py")):
        parts = path.relative_to(ROOT / "apps").parts
        if "migrations" in parts or "management" in parts or parts[-1] == "apps.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            stripped = line.strip()
            if line[:1] in (" ", "\t") and stripped.startswith(("from apps.", "import apps.", "from .")):
                found.append(f"{path.relative_to(ROOT)}:{number}: {stripped}")
    assert found == []


def test_a_web_process_finds_every_task_a_service_queues_by_name():
    """Services queue tasks by name (the webhook, in connectors, queues ingest.push_delivery): a
    process that never imported the tasks modules (a web worker) must still find each, or a push
    waits for the sweep and a reply for the send sweep."""
    names = sorted(set(re.findall(r'task_named\("([\w.]+)"\)', "".join(
        p.read_text() for p in (ROOT / "apps").rglob("*.py"))))) + ["ingest.push_delivery"]
    assert len(names) >= 8
    code = ("import django; django.setup(); from apps.core.task_queue import task_named; "
            f"print(all(task_named(n).name == n for n in {names!r}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "DJANGO_SETTINGS_MODULE": "cxinbox.settings.test"})
    assert out.stdout.strip().splitlines()[-1:] == ["True"], out.stderr[-2000:]
