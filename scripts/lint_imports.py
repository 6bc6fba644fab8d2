"""Check the import-linter contracts of pyproject.toml on the package as a wheel lays it out.

The repository keeps agents/ (and the templates and samples) at the top level, and the
wheel installs them inside the relay package (``[tool.setuptools.package-dir]``). The
import graph is only whole in that layout, so this assembles it in a temporary folder and
runs ``lint-imports`` there. Usage: ``python scripts/lint_imports.py``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def assemble(dest: Path, root: Path = ROOT) -> Path:
    """Copy the Python sources of ``root`` into ``dest`` as the wheel lays them out."""
    config = tomllib.loads((root / "pyproject.toml").read_text())
    mapping: dict[str, str] = config["tool"]["setuptools"].get("package-dir", {})
    only_python = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(root / "relay", dest / "relay", ignore=only_python)
    for package, folder in mapping.items():
        target = dest / Path(*package.split("."))
        if package != "relay" and (root / folder / "__init__.py").exists():
            shutil.copytree(root / folder, target, ignore=only_python, dirs_exist_ok=True)
    return dest


def lint(tree: Path, root: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run lint-imports with ``root``'s contracts against the package in ``tree``."""
    lint_imports = Path(sys.executable).with_name("lint-imports")
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(lint_imports), "--no-cache", str(root / "pyproject.toml")],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
    )


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        done = lint(assemble(Path(tmp)))
    sys.stdout.write(done.stdout)
    sys.stderr.write(done.stderr)
    return done.returncode


if __name__ == "__main__":
    raise SystemExit(main())
