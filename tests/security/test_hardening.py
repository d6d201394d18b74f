"""Hardening: check --deploy is clean under production environment variables, a CSP without inline scripts, sessions
that expire, the dependency audit that says when it could not audit."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]

PRODUCTION = {
    "DJANGO_SECRET_KEY": "x7-" + "k" * 20 + "Qz9-production-like-secret-key-of-enough-length",
    "DJANGO_ALLOWED_HOSTS": "dataops.example.com",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "true",
    "SECURE_SSL_REDIRECT": "true",
    "SESSION_COOKIE_SECURE": "true",
    "CSRF_COOKIE_SECURE": "true",
    "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
}


def check_deploy(tmp_path, **extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SECURE_", "DATA_ENCRYPTION"))}
    env.update(PRODUCTION)
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'deploy.sqlite3'}",  # not the embedded default: production rules
        DATAOPS_VAR_DIR=str(tmp_path),
        DATA_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prom"),
    )
    env.update(extra)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_check_deploy_is_clean_under_production_env(tmp_path):
    done = check_deploy(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout, done.stdout + done.stderr


def test_check_deploy_refuses_missing_encryption_keys(tmp_path):
    done = check_deploy(tmp_path, DATA_ENCRYPTION_KEYS="")
    assert done.returncode != 0 and "security.E001" in done.stdout + done.stderr


def test_secret_key_required_outside_the_embedded_default(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SECRET_KEY"}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'x.sqlite3'}", DATAOPS_VAR_DIR=str(tmp_path))
    done = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300, check=False)  # fmt: skip
    assert done.returncode != 0 and "DJANGO_SECRET_KEY" in done.stderr


@pytest.mark.django_db
def test_csp_header_and_session_expiry(client, settings, role_user):
    assert settings.SESSION_COOKIE_AGE == 8 * 3600
    client.force_login(role_user("Viewer"))
    response = client.get("/admin/")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert 0 < client.session.get_expiry_age() <= 8 * 3600
    docs = client.get("/api/docs/")
    assert docs.status_code == 200 and "cdn.jsdelivr" not in docs.content.decode()


def test_no_inline_scripts_or_handlers_in_templates():
    inline_script = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
    handler = re.compile(r"\son[a-z]+\s*=", re.I)
    found = []
    for path in [*ROOT.glob("templates/**/*.html"), *ROOT.glob("*/templates/**/*.html")]:
        if ".venv" in path.parts:
            continue
        text = path.read_text()
        found += [f"{path.relative_to(ROOT)}: inline <script>" for _ in inline_script.finditer(text)]
        found += [f"{path.relative_to(ROOT)}: inline handler {m.group().strip()}" for m in handler.finditer(text)]
    assert not found, found


def _audit_module():
    spec = importlib.util.spec_from_file_location("dependency_audit", ROOT / "scripts" / "dependency_audit.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("reports", "code", "says"),
    [
        ({"pypi": {"dependencies": [{"name": "a", "skip_reason": "Dependency not found on PyPI"}]}, "osv": None},
         2, "vulnerability database unreachable"),
        ({"pypi": {"dependencies": [{"name": "a", "version": "1", "vulns": []}]}}, 0, "no known vulnerabilities"),
        ({"pypi": {"dependencies": [{"name": "a", "version": "1", "vulns": [{"id": "PYSEC-1", "fix_versions": []}]}]}},
         1, "PYSEC-1"),
    ],
)  # fmt: skip
def test_dependency_audit_outcomes(monkeypatch, capsys, reports, code, says):
    module = _audit_module()
    monkeypatch.setattr(module, "audit", lambda req, service: (reports.get(service), f"{service}: unreachable"))
    assert module.main(["x", "requirements.txt"]) == code
    assert says in capsys.readouterr().out
