#!/usr/bin/env bash
# One molecule scenario: scripts/test/scenario.sh NAME [MOLECULE_COMMAND] (default: test).
# Container, network and apt-volume names come from the scenario, and every
# checkout on this machine shares one Docker engine, so a scenario runs under a
# machine-wide lock of its own name: a second run of the same scenario (another
# checkout, another `make test`) waits instead of destroying the first one's hosts.
set -euo pipefail
cd "$(dirname "$0")/../.."
name=${1:?usage: scenario.sh NAME [MOLECULE_COMMAND]}
command=${2:-test}
export COMMONS_INFRA_LAB_KEY=${COMMONS_INFRA_LAB_KEY:-$PWD/.cache/lab/admin_ed25519.pub}
export ANSIBLE_COLLECTIONS_PATH=$PWD/.cache/pypath ANSIBLE_ROLES_PATH=$PWD/roles
lock_dir=/run/lock/commons-infra
mkdir -p "$lock_dir"
exec flock "$lock_dir/scenario-$name.lock" .venv/bin/molecule "$command" -s "$name"
