#!/usr/bin/env bash
# `make test`: every check as a step, run with bounded concurrency.
#   JOBS=N        steps at once (default: cores + 1; scenarios wait on the network and apt)
#   LAB_HOSTS=N   lab containers at once (default: one per 3 GiB of memory, MemTotal rounded up: 8 on 24 GiB)
#   SCENARIOS="a b"  only these molecule scenarios (the static steps always run)
# A step's full log is .cache/test-logs/<step>.log; one line is printed per step as
# it ends; a failed step does not stop the others. The run ends with a timing table
# (also written to .cache/test-logs/timings.tsv, the previous run's kept beside it)
# and "steps: N passed, N failed"; the exit code is non-zero when any step failed.
# Ctrl-C (or SIGTERM) stops every running step; a stopped scenario removes its own
# containers and networks (scripts/test/scenario.sh).
set -uo pipefail
cd "$(dirname "$0")/../.."
export NO_COLOR=1 PY_COLORS=0 ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0
export COMMONS_INFRA_LAB_KEY=$PWD/.cache/lab/admin_ed25519.pub
logs=.cache/test-logs

# --step NAME: run one step's command (the pool starts each step this way, in a
# session of its own so that it can be stopped as a whole).
if [ "${1:-}" = --step ]; then
  case $2 in
    lab)
      scripts/lab/docker-engine.sh || exit 1
      apt_volumes=$(docker volume ls -q --filter name=commons-infra-apt- | wc -l)
      image_log=$(scripts/lab/base-image.sh) || { echo "$image_log"; exit 1; }
      echo "$image_log"
      scripts/lab/admin-key.sh || exit 1
      image=reused
      [[ $image_log == *building* ]] && image=built
      echo "reuse: image $image, .venv $VENV_STATE, ansible-test venvs $ANSIBLE_TEST_VENVS," \
        "$apt_volumes apt cache volumes kept from earlier runs" ;;
    lint) exec scripts/test/lint.sh ;;
    sanity) exec scripts/test/sanity.sh ;;
    units) exec .venv/bin/pytest tests/unit -q -p no:cacheprovider ;;
    importer) exec scripts/test/importer.sh ;;
    docs-lint) exec scripts/test/docs-lint.sh ;;
    molecule-*) exec scripts/test/scenario.sh "${2#molecule-}" test ;;
    *) echo "unknown step $2" >&2; exit 2 ;;
  esac
  exit
fi

mkdir -p "$logs"
# make built .venv just before this script when its stamp is this fresh.
VENV_STATE=reused
[ -n "$(find .venv/.stamp -newermt '-90 seconds' 2>/dev/null)" ] && VENV_STATE="(re)installed by this run"
ANSIBLE_TEST_VENVS=reused
[ -d "$HOME/.ansible/test/venv" ] || ANSIBLE_TEST_VENVS="built by this run"
export VENV_STATE ANSIBLE_TEST_VENVS
[ -f "$logs/timings.tsv" ] && mv "$logs/timings.tsv" "$logs/timings.prev.tsv"
cores=$(nproc)
mem_gib=$(awk '/^MemTotal:/ {print int($2 / 1048576)}' /proc/meminfo)
JOBS=${JOBS:-$((cores + 1))}
LAB_HOSTS=${LAB_HOSTS:-$(((mem_gib + 1) / 3 > 2 ? (mem_gib + 1) / 3 : 2))}

# The steps: the lab first (scenarios need it), static checks, then every scenario.
declare -A needs hosts estimate previous
steps=(lab lint sanity units importer docs-lint)
for scenario_file in molecule/*/molecule.yml; do
  scenario=$(basename "$(dirname "$scenario_file")")
  if [ -n "${SCENARIOS:-}" ] && [[ " $SCENARIOS " != *" $scenario "* ]]; then
    continue
  fi
  steps+=("molecule-$scenario")
  needs[molecule-$scenario]=lab
  hosts[molecule-$scenario]=$(grep -c '^  - name:' "$scenario_file")
done
if [ -n "${SCENARIOS:-}" ]; then
  for scenario in $SCENARIOS; do
    [ -f "molecule/$scenario/molecule.yml" ] || { echo "no scenario named $scenario" >&2; exit 2; }
  done
fi

# Longest first (the last run's times, else a rough guess), so that the longest
# step does not start last and stretch the run.
# A fresh clone has no run of its own yet: it orders by the reference times committed
# with the suite (scripts/test/timings.reference.tsv, a full run's timings.tsv).
for times in scripts/test/timings.reference.tsv "$logs/timings.prev.tsv"; do
  [ -f "$times" ] || continue
  while IFS=$'\t' read -r name _ _ seconds _; do
    [ "$name" = step ] || previous[$name]=$seconds
  done <"$times"
done
for name in "${steps[@]}"; do
  case $name in
    lab) guess=1000000 ;;  # always first: everything with containers waits for it
    units) guess=150 ;;
    sanity) guess=60 ;;
    molecule-*) guess=$((60 + 50 * ${hosts[$name]})) ;;
    *) guess=30 ;;
  esac
  [ "$name" != lab ] && [ -n "${previous[$name]:-}" ] && guess=${previous[$name]}
  estimate[$name]=$guess
done
mapfile -t queue < <(for name in "${steps[@]}"; do printf '%s\t%s\n' "${estimate[$name]}" "$name"; done | sort -t$'\t' -k1,1nr | cut -f2)

printf 'make test: %d steps, JOBS=%d, LAB_HOSTS=%d (%d cores, %d GiB)\n' "${#steps[@]}" "$JOBS" "$LAB_HOSTS" "$cores" "$mem_gib"

declare -A state started ended pid_step step_pid
run_start=$(date +%s)
running=0 running_hosts=0 passed=0 failed=0
failed_steps=()

launch() {
  local name=$1
  started[$name]=$(date +%s)
  state[$name]=running
  setsid "$0" --step "$name" >"$logs/$name.log" 2>&1 </dev/null &
  pid_step[$!]=$name
  step_pid[$name]=$!
  running=$((running + 1))
  running_hosts=$((running_hosts + ${hosts[$name]:-0}))
}

slowest_task() {  # the slowest task ansible's profile_tasks reported in a step's log
  sed -nE 's/^(.*[^ -]) -{3,} ([0-9]+\.[0-9]+)s$/\2\t\1/p' "$1" | sort -t$'\t' -k1,1nr | head -n 1 |
    awk -F'\t' '{printf "%.0fs %s", $1, substr($2, 1, 48)}'
}

finish() {  # finish NAME RC
  local name=$1 rc=$2 seconds
  ended[$name]=$(date +%s)
  seconds=$((ended[$name] - started[$name]))
  running=$((running - 1))
  running_hosts=$((running_hosts - ${hosts[$name]:-0}))
  if [ "$rc" -eq 0 ]; then
    state[$name]=ok passed=$((passed + 1))
    printf '== %-28s ok      %4ds\n' "$name" "$seconds"
    grep -E '^=+ .*(passed|failed|skipped).* in [0-9.]+s|^reuse: ' "$logs/$name.log" | tail -n 1 | sed 's/^/   /'
  else
    state[$name]=FAILED failed=$((failed + 1))
    failed_steps+=("$name")
    printf '== %-28s FAILED  %4ds  (log: %s)\n' "$name" "$seconds" "$logs/$name.log"
    tail -n 40 "$logs/$name.log" | sed 's/^/   | /'
  fi
}

not_run() {  # not_run NAME REASON: counts as failed
  started[$1]=$(date +%s) ended[$1]=$(date +%s) state[$1]=FAILED
  failed=$((failed + 1))
  failed_steps+=("$1")
  echo "not run: $2" >"$logs/$1.log"
  printf '== %-28s FAILED     0s  (not run: %s)\n' "$1" "$2"
}

stop_all() {
  trap - INT TERM
  echo
  echo "make test: stopping the running steps"
  local pid
  for pid in "${!pid_step[@]}"; do kill -TERM -- "-$pid" 2>/dev/null; done
  # Each scenario removes its own hosts before it exits; wait for that.
  for pid in "${!pid_step[@]}"; do wait "$pid" 2>/dev/null; done
  echo "make test: stopped"
  exit 130
}
trap stop_all INT TERM

while :; do
  # Start what may start: in queue order, within JOBS and LAB_HOSTS (a scenario
  # larger than LAB_HOSTS still runs, alone), once what it needs has passed.
  remaining=()
  for name in "${queue[@]}"; do
    need=${needs[$name]:-}
    if [ -n "$need" ] && [ "${state[$need]:-}" = FAILED ]; then
      not_run "$name" "$need failed"
      continue
    fi
    weight=${hosts[$name]:-0}
    if [ "$running" -lt "$JOBS" ] && { [ -z "$need" ] || [ "${state[$need]:-}" = ok ]; } &&
      { [ "$weight" -eq 0 ] || [ $((running_hosts + weight)) -le "$LAB_HOSTS" ] || [ "$running_hosts" -eq 0 ]; }; then
      launch "$name"
    else
      remaining+=("$name")
    fi
  done
  queue=("${remaining[@]}")
  [ "$running" -eq 0 ] && [ "${#queue[@]}" -eq 0 ] && break
  done_pid=
  wait -n -p done_pid "${!pid_step[@]}"
  rc=$?
  [ -n "$done_pid" ] || continue
  name=${pid_step[$done_pid]}
  unset "pid_step[$done_pid]"
  finish "$name" "$rc"
done
trap - INT TERM
run_end=$(date +%s)
wall=$((run_end - run_start))

# The timing table, longest first; the critical path is the longest chain of steps
# that wait on each other (lab, then a scenario): no JOBS setting can beat it.
sum=0 critical=0 critical_name=
{
  printf 'step\tresult\tstart\tseconds\tprevious\tslowest task\n'
  for name in "${steps[@]}"; do
    seconds=$((ended[$name] - started[$name]))
    sum=$((sum + seconds))
    path=$seconds
    need=${needs[$name]:-}
    [ -n "$need" ] && path=$((path + ended[$need] - started[$need]))
    if [ "$path" -gt "$critical" ]; then critical=$path critical_name=$name; fi
    slowest=
    [[ $name == molecule-* ]] && slowest=$(slowest_task "$logs/$name.log")
    printf '%s\t%s\t%d\t%d\t%s\t%s\n' "$name" "${state[$name]}" $((started[$name] - run_start)) "$seconds" \
      "${previous[$name]:--}" "$slowest"
  done
} >"$logs/timings.tsv"

echo
echo "timings (.cache/test-logs/timings.tsv; 'previous' is the last run's, else scripts/test/timings.reference.tsv):"
{ head -n 1 "$logs/timings.tsv"; tail -n +2 "$logs/timings.tsv" | sort -t$'\t' -k4,4nr; } |
  awk -F'\t' '{printf "  %-28s %-7s %6s %8s %9s   %s\n", $1, $2, $3, $4, $5, $6}'
need=${needs[$critical_name]:-}
printf 'critical path: %s%s = %ds\n' "${need:+$need -> }" "$critical_name" "$critical"
printf 'wall time %ds, sum of steps %ds: wall is %d%% of the sum\n' "$wall" "$sum" $((sum > 0 ? 100 * wall / sum : 0))
echo
if [ "$failed" -gt 0 ]; then
  echo "failed steps: ${failed_steps[*]}"
fi
echo "steps: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
