#!/usr/bin/env bash
# One molecule scenario: scripts/test/scenario.sh NAME [MOLECULE_COMMAND] (default: test).
# Container, network and apt-volume names come from the scenario, and every
# checkout on this machine shares one Docker engine, so a scenario runs under a
# machine-wide lock of its own name: a second run of the same scenario (another
# checkout, another `make test`) waits instead of destroying the first one's hosts.
# A `test` that is stopped (Ctrl-C, SIGTERM from make test) removes its containers
# and networks while it still holds the lock, so nothing is left behind and
# nobody else's hosts are touched.
set -euo pipefail
cd "$(dirname "$0")/../.."
name=${1:?usage: scenario.sh NAME [MOLECULE_COMMAND]}
command=${2:-test}
export COMMONS_INFRA_LAB_KEY=${COMMONS_INFRA_LAB_KEY:-$PWD/.cache/lab/admin_ed25519.pub}
export PATH=$PWD/.venv/bin:$PATH ANSIBLE_COLLECTIONS_PATH=$PWD/.cache/pypath ANSIBLE_ROLES_PATH=$PWD/roles
lock_dir=/run/lock/commons-infra
mkdir -p "$lock_dir"
# A caller that holds this scenario's lock for several steps (bench/site_bench.py) says so.
if [ "${COMMONS_INFRA_SCENARIO_LOCKED:-}" != "$name" ]; then
  exec 9>"$lock_dir/scenario-$name.lock"
  flock 9
fi

remove_hosts() {  # every container and network create.yml labelled with this scenario
  docker ps -aq --filter "label=org.commons-infra.scenario=$name" | xargs -r docker rm -f -v >/dev/null
  docker network ls -q --filter "label=org.commons-infra.scenario=$name" | xargs -r docker network rm >/dev/null
}

.venv/bin/molecule "$command" -s "$name" &
molecule_pid=$!
stop() {
  trap - INT TERM
  kill -TERM "$molecule_pid" 2>/dev/null || true
  wait "$molecule_pid" 2>/dev/null || true
  if [ "$command" = test ]; then
    remove_hosts
    echo "scenario $name: stopped; its containers and networks are removed" >&2
  fi
  exit 130
}
trap stop INT TERM
wait "$molecule_pid"
