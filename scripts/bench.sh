#!/usr/bin/env bash
# `make bench`: each benchmark measures ours and the alternative side by side in
# one run and prints the ratio. Timings never gate `make test`.
# Module-vs-tasks comparisons run against one lab container (over the Docker
# connection, as a user's playbook would reach a host); tool-vs-tool
# comparisons (deploy vs git clone) run both sides on this machine.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH" ANSIBLE_COLLECTIONS_PATH="$PWD/.cache/pypath" ANSIBLE_ROLES_PATH="$PWD/roles"
target=commons-infra-bench
inventory=.cache/bench-inventory.yml

docker rm -f "$target" >/dev/null 2>&1
docker run -d --name "$target" --label owner=commons-infra-bench commons-infra/debian:bookworm sleep infinity >/dev/null
trap 'docker rm -f "$target" >/dev/null 2>&1' EXIT
cat >"$inventory" <<INV
all:
  hosts:
    $target:
      ansible_connection: community.docker.docker
      ansible_python_interpreter: /usr/bin/python3
INV

# `make bench BENCH=site` runs only the benchmarks whose file name starts with it.
only=${BENCH:-}
status=0
if [ -e bench/etc_symlinks_bench.py ] && [[ etc_symlinks == "$only"* ]]; then
  echo "== etc_symlinks vs ansible.builtin.file loop (target: container $target)"
  .venv/bin/python bench/etc_symlinks_bench.py --inventory "$inventory" --host "$target" || status=1
fi
for bench in bench/*_bench.py; do
  [ "$bench" = bench/etc_symlinks_bench.py ] && continue
  [[ $(basename "$bench") == "$only"* ]] || continue
  echo "== $bench"
  .venv/bin/python "$bench" || status=1
done
exit $status
