#!/usr/bin/env python3
"""Audit requirements.txt for known vulnerabilities with pip-audit, and say so clearly when it could not.

pip-audit exits 0 ("No known vulnerabilities found") when its vulnerability service answers "not found" for every
package, which is what a registry mirror without PyPI's JSON API does: a silent pass. This script reads pip-audit's
JSON report and tells the three outcomes apart:

  exit 0  every package was audited and none has a known vulnerability
  exit 1  known vulnerabilities (listed)
  exit 2  vulnerability database unreachable: some or all packages could not be audited (listed)

It asks PyPI's service first, then OSV. Usage: scripts/dependency_audit.py [requirements.txt]
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SERVICES = ("pypi", "osv")
TIMEOUT_S = 600


def audit(requirements: Path, service: str) -> tuple[dict | None, str]:
    """pip-audit's JSON report from one service, or None and why it failed."""
    exe = Path(sys.executable).with_name("pip-audit")
    cmd = [str(exe), "-r", str(requirements), "--no-deps", "--disable-pip", "--progress-spinner", "off",
           "-f", "json", "-s", service]  # fmt: skip
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"{service}: {type(exc).__name__}: {exc}"
    try:
        return json.loads(done.stdout), ""
    except json.JSONDecodeError:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return None, f"{service}: {last[:300]}"


def main(argv: list[str]) -> int:
    requirements = Path(argv[1] if len(argv) > 1 else Path(__file__).resolve().parent.parent / "requirements.txt")
    problems: list[str] = []
    for service in SERVICES:
        report, error = audit(requirements, service)
        if report is None:
            problems.append(error)
            continue
        deps = report.get("dependencies", [])
        skipped = [d for d in deps if d.get("skip_reason")]
        vulnerable = [d for d in deps if d.get("vulns")]
        if vulnerable:
            print(f"dependency audit ({service}): {len(vulnerable)} package(s) with known vulnerabilities")
            for d in vulnerable:
                ids = ", ".join(v["id"] for v in d["vulns"])
                fixes = ", ".join(sorted({f for v in d["vulns"] for f in v.get("fix_versions", [])})) or "none yet"
                print(f"  {d['name']} {d.get('version', '')}: {ids} (fixed in: {fixes})")
            return 1
        if deps and not skipped:
            print(f"dependency audit ({service}): {len(deps)} packages audited, no known vulnerabilities")
            return 0
        problems.append(f"{service}: {len(skipped)} of {len(deps)} packages could not be audited"
                        + (f" (e.g. {skipped[0]['skip_reason']})" if skipped else ""))  # fmt: skip
    print("dependency audit: vulnerability database unreachable -- NOT audited, this is not a pass:")
    for problem in problems:
        print(f"  {problem}")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
