#!/usr/bin/env bash
# Rewrite constraints.txt: every package of the test environment (`pip install -e ".[test]"`),
# resolved today without constraints and pinned with ==, resultloader itself left out. The
# README's test command and .ci/run install with `-c constraints.txt`, so a fresh machine gets
# the versions the suite last passed with; this is also the upper end of pyproject's ranges.
# Run it, run the suite with the new file, and commit both together.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="$(mktemp -d)"
trap 'rm -rf "$venv"' EXIT
python3 -m venv "$venv"
"$venv/bin/pip" install -q -e ".[test]"
{
    echo "# Written by tools/refresh_constraints.sh on Python $("$venv/bin/python" -c \
        'import platform; print(platform.python_version(), platform.system(), platform.machine())'):"
    echo "# the test environment pinned; regenerate it with that script, not by hand."
    "$venv/bin/pip" freeze --exclude-editable
} > constraints.txt.new
mv constraints.txt.new constraints.txt
echo "constraints.txt: $(grep -c '==' constraints.txt) packages pinned"
