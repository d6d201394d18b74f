"""The README's roles table is generated from accounts/roles.py: they cannot drift apart."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

from django.conf import settings
from django.core.management import call_command

from accounts.management.commands.roles_table import readme_with_table
from accounts.roles import ROLE_DESCRIPTIONS, ROLE_PERMISSIONS, roles_table_markdown


def test_readme_roles_table_is_what_roles_py_generates():
    readme = (Path(settings.BASE_DIR) / "README.md").read_text()
    assert readme_with_table(readme) == readme, "run: manage.py roles_table --write"
    assert roles_table_markdown() in readme


def test_every_role_is_described_and_the_table_names_its_permissions():
    assert set(ROLE_DESCRIPTIONS) == set(ROLE_PERMISSIONS)
    table = roles_table_markdown()
    for role in ROLE_PERMISSIONS:
        assert f"| {role} | {ROLE_DESCRIPTIONS[role]} |" in table
    assert "`sales.run_salesquery`" in table and "`audit.view_*`" in table


def test_roles_table_command_prints_the_table():
    out = StringIO()
    call_command("roles_table", stdout=out)
    assert out.getvalue().strip() == roles_table_markdown().strip()
