"""The layers hold (.importlinter; docs/architecture.md, "Layers"): no app imports an app above
it outside the ledger, and no domain module imports a page, API or socket module. .ci/run runs
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


def test_the_ledger_of_upward_imports_only_shrinks():
    """Each line of the ledger is an upward import still to be turned into a signal; a new one
    is a decision for the docs, not a quiet addition."""
    text = (ROOT / ".importlinter").read_text()
    ledger = text.split("# --- The ledger", 1)[1].split("[importlinter:contract:interfaces]", 1)[0]
    lines = [line.strip() for line in ledger.splitlines() if "->" in line and not line.strip().startswith("#")]
    assert len(lines) <= 11, lines
