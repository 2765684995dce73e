#!/usr/bin/env bash
# `make demo`: start the lab's containers (named like production hosts: the site
# scenario's, under its machine-wide lock) and converge them with the same site
# playbook production uses, through inventory/lab. `make demo-down` removes them.
# `scripts/test/scenario.sh site` replaces the demo's containers with its own run.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH" ANSIBLE_COLLECTIONS_PATH="$PWD/.cache/pypath" ANSIBLE_ROLES_PATH="$PWD/roles"
export COMMONS_INFRA_LAB_KEY="$PWD/.cache/lab/admin_ed25519.pub"

case "${1:-up}" in
  down)
    scripts/test/scenario.sh site destroy >.cache/demo-destroy.log 2>&1 || { tail -n 40 .cache/demo-destroy.log; exit 1; }
    echo "demo: containers removed"
    exit 0 ;;
  up) ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac

echo "demo: starting containers"
scripts/test/scenario.sh site create >.cache/demo-create.log 2>&1 || { tail -n 40 .cache/demo-create.log; exit 1; }
echo "demo: converging with inventory/lab and playbooks/site.yml"
ansible-playbook -i inventory/lab playbooks/site.yml
echo "demo: second run (must change nothing)"
ansible-playbook -i inventory/lab playbooks/site.yml | tee .cache/demo-second.log | grep -E '^[a-z0-9-]+ +: ok='
if grep -qE '(changed|unreachable|failed)=[1-9]' .cache/demo-second.log; then
  echo "demo: the second run changed something" >&2; exit 1
fi

maxbytes=$(docker exec ol-mem0 sh -c "printf 'stats settings\r\nquit\r\n' | nc -N 127.0.0.1 11211" | awk '$2 == "maxbytes" {print $3}' | tr -d '\r')
mem_ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' ol-mem0)
reach() { docker exec "$1" timeout 3 bash -c "exec 3<>/dev/tcp/$mem_ip/11211" 2>/dev/null && echo reachable || echo blocked; }
cat <<TXT

The lab is up: ol-mem0 (memcached), ol-web1 (web), ol-home0 (home), each with the base layer.
  memcached on ol-mem0: $((maxbytes / 1048576)) MiB cache (1 GiB container limit - 300 MiB reserve, in 64 MiB steps)
  ol-mem0:11211 from ol-web1:  $(reach ol-web1)   (base firewall allows the web group)
  ol-mem0:11211 from ol-home0: $(reach ol-home0)
Look at it:
  docker ps --filter label=org.commons-infra.scenario=site
  docker exec -it ol-mem0 bash
  docker exec ol-mem0 nft list table inet commons_infra
  docker exec ol-mem0 cat /etc/memcached.conf
  ssh -i .cache/lab/admin_ed25519 admin@$mem_ip      (key login; passwords are refused)
Re-run:    ansible-playbook -i inventory/lab playbooks/site.yml   (with .venv/bin on PATH)
Tear down: make demo-down
TXT
