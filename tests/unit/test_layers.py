"""The layer contracts of DESIGN §2 hold, and they would catch a core module importing up."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("lint_imports", ROOT / "scripts" / "lint_imports.py")
assert spec is not None and spec.loader is not None
lint_imports = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lint_imports)


def test_the_layers_and_the_pure_core_hold(tmp_path: Path) -> None:
    done = lint_imports.lint(lint_imports.assemble(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 kept, 0 broken" in done.stdout


def test_a_core_module_importing_the_runtime_breaks_the_contract(tmp_path: Path) -> None:
    tree = lint_imports.assemble(tmp_path)
    ids = tree / "relay" / "core" / "ids.py"
    ids.write_text(ids.read_text() + "\nfrom relay.runtime.app import Runtime  # noqa\n")
    done = lint_imports.lint(tree)
    assert done.returncode != 0
    assert "relay.core.ids -> relay.runtime.app" in done.stdout
    assert "0 kept, 2 broken" in done.stdout  # the layers, and so the pure core too


def test_a_core_module_doing_io_breaks_the_contract(tmp_path: Path) -> None:
    tree = lint_imports.assemble(tmp_path)
    ids = tree / "relay" / "core" / "ids.py"
    ids.write_text(ids.read_text() + "\nimport asyncio  # noqa\n")
    done = lint_imports.lint(tree)
    assert done.returncode != 0
    assert "relay.core.ids -> asyncio" in done.stdout
