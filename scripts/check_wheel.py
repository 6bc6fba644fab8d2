"""The wheel works on its own: build it, check what it holds, install it (not editable) in a
fresh virtual environment, and run ``relay demo`` there from a directory far from the
repository. Usage: ``python scripts/check_wheel.py`` (CI runs it; it needs the package
index, for the dependencies of the fresh environment).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Files a working install needs, by their place in the wheel.
MUST_HOLD = (
    "relay/agents/delivery.py",
    "relay/templates/email/notice.txt.j2",
    "relay/templates/web/static/dashboard.js",
    "relay/templates/web/static/document.js",
    "relay/templates/web/publish_form.html.j2",
    "relay/templates/web/static/docs.js",
    "relay/templates/web/static/partner.js",
    "relay/templates/web/static/partner.css",
    "relay/templates/web/static/swagger-ui/swagger-ui-bundle.js",
    "relay/templates/web/static/swagger-ui/LICENSE",
    "relay/config/partners.yaml",
    "relay/config/partners-joining.yaml",
    "relay/examples/documents/07-park-rent-subsidy-expiring-soon.json",
    "relay/examples/documents/01-seed-government-openness.json",
    "relay/core/matching/catalogues/gbt4754_2017.json",
    "relay/core/matching/catalogues/parks.json",
)


def run(*cmd: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def check_contents(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    missing = [n for n in MUST_HOLD if n not in names]
    if missing:
        raise SystemExit(f"{wheel.name} lacks {missing}")
    tops = {n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith(".dist-info")}
    if tops != {"relay"}:
        raise SystemExit(f"{wheel.name} installs top-level names other than relay: {tops}")


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", tmp / "dist", ROOT)
        [wheel] = (tmp / "dist").glob("policy_relay-*.whl")
        check_contents(wheel)
        print(f"{wheel.name}: holds its templates, samples and agents; installs only relay")
        venv = tmp / "venv"
        run(sys.executable, "-m", "venv", venv)
        pip = venv / "bin" / "pip"
        run(pip, "install", "--quiet", "-c", ROOT / "constraints.txt", wheel)
        elsewhere = tmp / "elsewhere"
        elsewhere.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
        out = run(venv / "bin" / "relay", "demo", cwd=elsewhere, env=env)
        last = [line for line in out.splitlines() if line.startswith("Deliveries:")]
        print(f"relay demo from {elsewhere}: {last[0] if last else out[-300:]}")
        if not last or "(0 still pending)" not in last[0]:
            raise SystemExit("the demo from the installed wheel did not settle every delivery")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
