#!/usr/bin/env bash
# `make bench`: each bench/*_bench.py measures ours and the alternative side by
# side in one run and prints the ratio. Timings never gate `make test`.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH" ANSIBLE_COLLECTIONS_PATH="$PWD/.cache/pypath" ANSIBLE_ROLES_PATH="$PWD/roles"
status=0
for bench in bench/*_bench.py; do
  [ -e "$bench" ] || continue
  echo "== $bench"
  .venv/bin/python "$bench" "$@" || status=1
done
exit $status
