"""`make test` step: pip-audit over requirements.txt, honest about what it could not check.

pip-audit asks PyPI's JSON API for each pinned package's advisories. Where that API cannot be
reached (offline, or a registry mirror without it), pip-audit reports every package as "skipped"
and still exits 0, which would read as "no known vulnerabilities". This wrapper says plainly how
many packages were NOT audited; a vulnerability found always fails. An unreachable advisory
service is outside the project's reach (the machines here, CI included, reach the package index
but not its advisory API), so it is reported, not failed on; BUZON_AUDIT_REQUIRED=1 makes it a
failure where the advisory API is reachable.
"""

from __future__ import annotations

import json
import os
import subprocess  # nosec B404 - runs pip-audit from our own virtualenv with fixed arguments
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main() -> int:
    command = [str(Path(sys.executable).with_name("pip-audit")), "-r", str(ROOT / "requirements.txt"),
               "--no-deps", "--disable-pip", "--progress-spinner", "off", "-f", "json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)  # nosec B603
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        print(f"pip-audit did not run: {done.stderr.strip()[-500:]}")
        return 1
    packages = report.get("dependencies", [])
    vulnerable = [p for p in packages if p.get("vulns")]
    skipped = [p for p in packages if p.get("skip_reason")]
    for package in vulnerable:
        ids = ", ".join(v["id"] for v in package["vulns"])
        print(f"VULNERABLE {package['name']} {package['version']}: {ids}")
    if vulnerable:
        return 1
    if skipped:
        print(f"pip-audit: {len(skipped)} of {len(packages)} packages could NOT be audited "
              f"(PyPI's advisory API unreachable: {skipped[0]['skip_reason']}).")
        if os.environ.get("BUZON_AUDIT_REQUIRED") == "1":
            return 1
        print("pip-audit: not failing on that; BUZON_AUDIT_REQUIRED=1 makes it fail.")
        return 0
    print(f"pip-audit: {len(packages)} packages audited, no known vulnerabilities.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
