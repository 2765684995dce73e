#!/usr/bin/env bash
# `make demo`: start the lab's containers (named like the production hosts: the site
# scenario's, under its machine-wide lock) and converge them with the same site
# playbook production uses, through inventory/lab (production's group_vars plus the lab
# overlay and its example vault). A run on a running lab is a no-op converge and says
# so. `make demo-down` removes the containers. `scripts/test/scenario.sh site`
# replaces the demo's containers with its own run.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH" ANSIBLE_COLLECTIONS_PATH="$PWD/.cache/pypath" ANSIBLE_ROLES_PATH="$PWD/roles"
export COMMONS_INFRA_LAB_KEY="$PWD/.cache/lab/admin_ed25519.pub"
# The lab's example vault; its password is a lab password, committed on purpose.
export ANSIBLE_VAULT_PASSWORD_FILE="$PWD/inventory/lab/vault-password.txt"
export ANSIBLE_FORCE_COLOR=0
# Every lab host in one wave (Ansible's default of 5 forks runs a 7-host task in two).
export ANSIBLE_FORKS=10
url=http://localhost:8080/status
# The lab's containers are the site scenario's: hold its machine-wide lock for the whole demo
# (scripts/test/scenario.sh then does not take it again), so no scenario or bench replaces
# them halfway through a converge.
if [ "${COMMONS_INFRA_SCENARIO_LOCKED:-}" != site ]; then
  mkdir -p /run/lock/commons-infra
  exec 9>/run/lock/commons-infra/scenario-site.lock
  flock 9
  export COMMONS_INFRA_SCENARIO_LOCKED=site
fi

case "${1:-up}" in
  down)
    scripts/test/scenario.sh site destroy >.cache/demo-destroy.log 2>&1 || { tail -n 40 .cache/demo-destroy.log; exit 1; }
    echo "demo: containers removed"
    exit 0 ;;
  up) ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac

converge() {  # $1: log file; prints the recap, fails when a host failed
  local start=$SECONDS
  ansible-playbook -i inventory/lab playbooks/site.yml >"$1" 2>&1 || { tail -n 60 "$1"; echo "demo: converge failed (log: $1)" >&2; exit 1; }
  sed -n '/^PLAY RECAP/,/^$/p' "$1" | grep -E '^[a-z0-9-]+ +: ok='
  echo "demo: converge took $((SECONDS - start)) s (log: $1)"
}
changed() { grep -qE '(changed|unreachable|failed)=[1-9]' "$1"; }

echo "demo: starting containers (ol-www0 ol-web1 ol-web2 ol-home0 ol-db1 ol-db2 ol-mem0)"
scripts/test/scenario.sh site create >.cache/demo-create.log 2>&1 || { tail -n 40 .cache/demo-create.log; exit 1; }
scripts/test/scenario.sh site prepare >.cache/demo-prepare.log 2>&1 || { tail -n 40 .cache/demo-prepare.log; exit 1; }
echo "demo: converging with inventory/lab and playbooks/site.yml"
converge .cache/demo-converge.log
if changed .cache/demo-converge.log; then
  echo "demo: second run (must change nothing)"
  converge .cache/demo-second.log
  if changed .cache/demo-second.log; then echo "demo: the second run changed something" >&2; exit 1; fi
else
  echo "demo: no-op converge: the lab was already converged (changed=0 on every host)"
fi

echo
echo "The site answers through its edge (ol-www0's nginx, published on 127.0.0.1:8080):"
for _ in 1 2 3 4; do
  curl -fsS --max-time 5 "$url" | python3 -c 'import json,sys; s=json.load(sys.stdin); print("  %(host)s  release %(release)s  postgres %(database)s  memcached %(cache)s" % s)'
done
echo
.venv/bin/python scripts/lab/site_table.py inventory/lab
cat <<TXT

Open it:   curl $url      (each request goes to the next web head)
Look:      docker ps --filter label=org.commons-infra.scenario=site
           ssh -i .cache/lab/admin_ed25519 admin@172.16.77.5      (key login as the admin; passwords are refused)
Re-run:    make demo       (a no-op converge on a running lab)
Tear down: make demo-down
TXT
