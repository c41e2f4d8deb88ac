#!/usr/bin/env python3
"""Dependency audit for scripts/check: pip-audit over the installed packages.

* A known vulnerability fails (exit 1), unless its id is listed in
  ``scripts/pip-audit-ignore.txt`` (one id per line, then ``#`` and the reason and a
  review date; see docs/security.md, "Dependency audit").
* Offline (the vulnerability service cannot be reached, or answers for no package)
  prints ``dependency audit skipped: offline`` and succeeds.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

IGNORE_FILE = Path(__file__).with_name("pip-audit-ignore.txt")
OFFLINE_MARKERS = ("ConnectionError", "NameResolutionError", "Max retries exceeded", "timed out")


def ignored_ids() -> list[str]:
    """The vulnerability ids accepted for now (first word of each non-comment line)."""
    if not IGNORE_FILE.exists():
        return []
    ids = []
    for line in IGNORE_FILE.read_text(encoding="utf-8").splitlines():
        word = line.split("#", 1)[0].strip()
        if word:
            ids.append(word)
    return ids


def main() -> int:
    """Run pip-audit and report; returns the exit code."""
    command = [sys.executable, "-m", "pip_audit", "--skip-editable", "--progress-spinner", "off"]
    command += ["--format", "json"]
    for vuln in ignored_ids():
        command += ["--ignore-vuln", vuln]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    except subprocess.TimeoutExpired:
        print("dependency audit skipped: offline (pip-audit timed out)")
        return 0
    try:
        report = json.loads(done.stdout)
    except ValueError:
        if any(marker in done.stderr for marker in OFFLINE_MARKERS):
            print("dependency audit skipped: offline")
            return 0
        print(done.stderr.strip()[-2000:], file=sys.stderr)
        print("dependency audit failed: pip-audit did not run", file=sys.stderr)
        return 1
    deps = report.get("dependencies", [])
    audited = [d for d in deps if "skip_reason" not in d]
    vulnerable = [(d, v) for d in audited for v in d.get("vulns", [])]
    if vulnerable:
        for dep, vuln in vulnerable:
            fixes = ", ".join(vuln.get("fix_versions") or []) or "no fix yet"
            print(f"{dep['name']} {dep['version']}: {vuln['id']} (fixed in: {fixes})")
        print(f"dependency audit failed: {len(vulnerable)} known vulnerabilities", file=sys.stderr)
        return 1
    if not audited:
        print("dependency audit skipped: offline (the vulnerability service knew no package)")
        return 0
    print(f"dependency audit: {len(audited)} packages, no known vulnerabilities")
    return 0


if __name__ == "__main__":
    sys.exit(main())
