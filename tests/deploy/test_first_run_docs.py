"""The first five minutes (issue 21): the README says how to stop (Ctrl-C), how to start over
(`make reset`, which really deletes the embedded data and keeps .venv) and where each demo user
of demo_setup starts, with its password."""
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from apps.accounts.models import Role
from apps.ops.management.commands.demo_setup import USERS

ROOT = Path(__file__).resolve().parents[2]
LANDING = {Role.AGENT: "/inbox/", Role.SUPERVISOR: "/supervisor/", Role.MARKETING: "/reports/",
           Role.ADMIN: "/inbox/"}


def _readme() -> str:
    return (ROOT / "README.md").read_text()


def test_the_readme_says_how_to_stop_and_reset_right_after_the_commands():
    text = _readme()
    after_commands = text[text.index("```sh"):]
    after_commands = after_commands[after_commands.index("```", 5) + 3:][:1500]
    assert "Ctrl-C" in after_commands and "make reset" in after_commands
    assert "db.sqlite3" in after_commands and ".broker" in after_commands


def test_the_readme_says_where_each_demo_user_starts():
    text = _readme()
    for username, role, *_ in USERS:
        row = next((line for line in text.splitlines() if line.startswith("|") and f"`{username}`" in line), None)
        assert row, f"{username} is not in the README's table"
        assert LANDING[role] in row, f"{username} ({role}) should land on {LANDING[role]}: {row}"
    assert re.search(r"password is the\s+user name", text)


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_reset_deletes_the_embedded_data_and_keeps_the_venv(tmp_path):
    for name in ("Makefile", "requirements.txt"):
        shutil.copy(ROOT / name, tmp_path / name)
    for path in ("db.sqlite3", "db.sqlite3-wal", ".broker/queue/x.msg", "media/photo.jpg", ".venv/marker",
                 "staticfiles/app.css", ".env"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("x")
    result = subprocess.run(["make", "reset"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "make run" in result.stdout
    for gone in ("db.sqlite3", "db.sqlite3-wal", ".broker", "media"):
        assert not (tmp_path / gone).exists(), gone
    for kept in (".venv/marker", "staticfiles/app.css", ".env"):
        assert (tmp_path / kept).exists(), kept
