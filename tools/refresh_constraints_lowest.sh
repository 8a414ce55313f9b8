#!/usr/bin/env bash
# Rewrite constraints-lowest.txt: the test environment with the library's own dependencies (and
# those of its postgres, delta, iceberg and dask extras) at the LOWEST version that resolves with
# the rest, by uv's `--resolution lowest-direct`, pinned with ==. The test tools (the test,
# airflow, dagster and docs extras) stay at their constraints.txt pins: the lower end tested is
# the library's, not pytest's or moto's. pip's own resolver,
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
tools="$venv/tools.txt"  # the test tools' pins, from constraints.txt
python3 - "$tools" <<'PY'
import re, sys, tomllib
extras = tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]
names = {re.match(r"[A-Za-z0-9_.-]+", d)[0].lower().replace("_", "-")
         for extra in ("test", "airflow", "dagster", "docs") for d in extras[extra]}
pins = [line for line in open("constraints.txt")
        if line.split("==")[0].lower().replace("_", "-") in names]
open(sys.argv[1], "w").writelines(pins)
PY
{
    echo "# Written by tools/refresh_constraints_lowest.sh for Python $python: the test environment"
    echo "# at the lowest versions of pyproject's ranges; regenerate it with that script, not by hand."
    "$venv/bin/uv" pip compile pyproject.toml --extra test --resolution lowest-direct -c "$tools" \
        --python-version "$python" --no-header --no-annotate -q
} > constraints-lowest.txt.new
mv constraints-lowest.txt.new constraints-lowest.txt
echo "constraints-lowest.txt: $(grep -c '==' constraints-lowest.txt) packages pinned"
