"""The README's "Use the API" curl lines, run as written against a live server with a real token."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import require
from tests.tokens import api_token_for

README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_commands() -> list[str]:
    section = README.read_text().split("## Use the API", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    return [c.strip() for c in block.replace("\\\n", " ").splitlines() if c.strip()]


def test_the_readme_has_curl_examples():
    commands = _readme_commands()
    assert len(commands) >= 5 and all(c.startswith("curl ") for c in commands)


@pytest.mark.django_db(transaction=True)
def test_readme_curl_examples_run_against_a_live_server(live_server, role_user, tmp_path):
    require(shutil.which("curl") is not None, "needs curl")
    token = api_token_for(role_user("Platform Admin"), scope="write")
    env = {"DATAOPS_URL": live_server.url, "TOKEN": token, "PATH": "/usr/bin:/bin"}
    for command in _readme_commands():
        done = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=60)  # fmt: skip
        assert done.returncode == 0, f"{command}\n{done.stderr}"
    assert (tmp_path / "audit.jsonl").read_text().count("\n") >= 1
