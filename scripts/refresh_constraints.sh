#!/usr/bin/env bash
# Pin every dependency of the relay and of its dev tools in constraints.txt, which CI and the
# Dockerfile install from. Run it after changing pyproject.toml's dependencies, then commit.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install --quiet --upgrade pip
"$tmp/venv/bin/pip" install --quiet -e '.[dev]'
{
    echo "# Every dependency pinned, for CI and the Dockerfile (pip install -c constraints.txt)."
    echo "# Refresh with scripts/refresh_constraints.sh after changing pyproject.toml."
    "$tmp/venv/bin/pip" freeze --exclude-editable
} > constraints.txt
echo "constraints.txt: $(grep -vc '^#' constraints.txt) packages pinned"
