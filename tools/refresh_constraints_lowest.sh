#!/usr/bin/env bash
# Rewrite constraints-lowest.txt: the test environment with every direct dependency of
# pyproject (the library's, its extras' and the test tools') at the LOWEST version that resolves
# with the rest, by uv's `--resolution lowest-direct`, pinned with ==. pip's own resolver,
# given only the library's lower bounds, backtracks for half an hour through the test tools'
# releases; a lock resolved once is installed in a minute. tests/test_constraints.py checks
# that each of the library's own dependencies is pinned at the bound pyproject declares: where
# a lower one cannot be installed beside the test tools, raise the bound (it was never tested).
# Run it, run the suite with the new file (the README's command), commit both together.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="$(mktemp -d)"
trap 'rm -rf "$venv"' EXIT
python3 -m venv "$venv"
"$venv/bin/pip" install -q uv
python="$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
{
    echo "# Written by tools/refresh_constraints_lowest.sh for Python $python: the test environment"
    echo "# at the lowest versions of pyproject's ranges; regenerate it with that script, not by hand."
    "$venv/bin/uv" pip compile pyproject.toml --extra test --resolution lowest-direct \
        --python-version "$python" --no-header --no-annotate -q
} > constraints-lowest.txt.new
mv constraints-lowest.txt.new constraints-lowest.txt
echo "constraints-lowest.txt: $(grep -c '==' constraints-lowest.txt) packages pinned"
