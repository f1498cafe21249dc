"""The layers hold (.importlinter; docs/architecture.md, "Layers"): no app imports an app above
it (only the interfaces reach up), and no domain module imports a page, API or socket module. .ci/run runs
`make lint` too; here so a local `make test` says it first."""
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


def test_no_function_level_import_of_an_app_above():
    """Imports inside functions used to dodge cycles (issue 20). One of an app above the
    importing one is an upward import lint-imports also sees; this names the line."""
    order = ["core", "accounts", "contacts", "insights", "connectors", "inbox", "routing", "ingest", "reports", "ops"]
    rank = {app: i for i, app in enumerate(order)}
    rank["contacts"] = rank["insights"] = rank["accounts"]  # one layer, independent of each other
    interfaces = ("views.py", "api.py", "serializers.py", "consumers.py", "admin.py", "urls.py", "forms.py")
    found = []
    for path in sorted((ROOT / "apps").rglob("*.py")):
        parts = path.relative_to(ROOT / "apps").parts
        if "migrations" in parts or parts[-1] in interfaces or "management" in parts:
            continue
        here = parts[0]
        for number, line in enumerate(path.read_text().splitlines(), 1):
            stripped = line.strip()
            if line.startswith((" ", "\t")) and stripped.startswith(("from apps.", "import apps.")):
                there = stripped.split()[1].split(".")[1]
                if there in rank and here in rank and rank[there] > rank[here]:
                    found.append(f"{path.relative_to(ROOT)}:{number}: {stripped}")
    assert found == []
