#!/usr/bin/env bash
# `make test`: every check in order, each one a step; a failed step does not
# stop the rest, and the run ends with "N passed, N failed" and a non-zero exit
# when any step failed. Full logs go to .cache/test-logs/.
set -uo pipefail
cd "$(dirname "$0")/../.."
export NO_COLOR=1 PY_COLORS=0 ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0
logs=.cache/test-logs
mkdir -p "$logs"
passed=0 failed=0 failed_steps=()

step() {  # step NAME COMMAND...
  local name=$1; shift
  local log="$logs/$name.log" start=$SECONDS
  printf '== %-28s ' "$name"
  if "$@" >"$log" 2>&1; then
    passed=$((passed + 1)); printf 'ok      %4ds\n' $((SECONDS - start))
    # pytest-based steps: show their own closing line
    grep -E '^=+ .*(passed|failed|skipped).* in [0-9.]+s' "$log" | tail -n 1 | sed 's/^/   /'
  else
    failed=$((failed + 1)); failed_steps+=("$name"); printf 'FAILED  %4ds  (log: %s)\n' $((SECONDS - start)) "$log"
    tail -n 40 "$log" | sed 's/^/   | /'
  fi
}

step lab scripts/lab/docker-engine.sh
step base-image scripts/lab/base-image.sh
step lab-key scripts/lab/admin-key.sh
export COMMONS_INFRA_LAB_KEY=$PWD/.cache/lab/admin_ed25519.pub
step lint scripts/test/lint.sh
step sanity scripts/test/sanity.sh
step units .venv/bin/pytest tests/unit -q -p no:cacheprovider
step importer scripts/test/importer.sh
for scenario_file in molecule/*/molecule.yml; do
  scenario=$(basename "$(dirname "$scenario_file")")
  # demo is `make demo`'s own set of containers; site covers the same playbook.
  [ "$scenario" = demo ] && continue
  step "molecule-$scenario" scripts/test/scenario.sh "$scenario"
done

echo
if [ "$failed" -gt 0 ]; then
  echo "failed steps: ${failed_steps[*]}"
fi
echo "steps: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
