"""Print which lab host runs what: each host's groups and the roles site.yml's layer
playbooks run on them (scripts/demo.sh). Usage: site_table.py INVENTORY_DIR"""
import json
import os
import subprocess
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load(path):
    with open(path, encoding='utf-8') as handle:
        return yaml.safe_load(handle) or []


def members(inventory, group):
    entry = inventory.get(group, {})
    found = list(entry.get('hosts', []))
    for child in entry.get('children', []):
        found += [host for host in members(inventory, child) if host not in found]
    return found


def site_plays():
    """(hosts pattern, [role short names]) of every play site.yml imports, in order."""
    plays = []
    for entry in load(os.path.join(ROOT, 'playbooks', 'site.yml')):
        for play in load(os.path.join(ROOT, 'playbooks', entry['ansible.builtin.import_playbook'])):
            roles = [(r['role'] if isinstance(r, dict) else r).split('.')[-1] for r in play.get('roles', [])]
            plays.append((str(play['hosts']), roles))
    return plays


# The groups playbooks/patroni.yml makes with group_by, and the inventory groups they come from.
RUNTIME_GROUPS = {'etcd_members': 'etcd', 'patroni_members': 'patroni'}


def pattern_hosts(inventory, pattern):
    """Hosts of a play's pattern ("a:b", "db:!patroni", "pgbouncer:&patroni_members"; the other
    runtime groups of group_by, e.g. postgres_primary, only narrow a group, so its hosts may all
    run the play)."""
    hosts, excluded, within = [], set(), None
    for part in pattern.split(':'):
        if '{{' in part:
            continue
        name = RUNTIME_GROUPS.get(part.lstrip('&!'), part.lstrip('&!'))
        if part.startswith('!'):
            excluded |= set(members(inventory, name))
        elif part.startswith('&'):
            if name in inventory:
                within = set(members(inventory, name)) if within is None else within & set(members(inventory, name))
        else:
            hosts += [host for host in members(inventory, name) if host not in hosts]
    return [host for host in hosts if host not in excluded and (within is None or host in within)]


def main(inventory_dir):
    listing = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'ansible-inventory'), '-i', inventory_dir,
                              '--list'], capture_output=True, text=True, check=True).stdout
    inventory = json.loads(listing)
    hosts = members(inventory, 'all')
    roles = {host: [] for host in hosts}
    for pattern, play_roles in site_plays():
        for host in pattern_hosts(inventory, pattern):
            roles[host] += [name for name in play_roles if name not in roles[host]]
    groups = {host: [g for g in inventory if g not in ('all', '_meta') and host in inventory[g].get('hosts', [])]
              for host in hosts}
    address = {host: inventory['_meta']['hostvars'].get(host, {}).get('ansible_host', '') for host in hosts}
    print('%-10s %-14s %-12s %s' % ('host', 'address', 'groups', 'roles (site.yml order)'))
    for host in sorted(hosts):
        print('%-10s %-14s %-12s %s' % (host, address[host], ','.join(groups[host]), ', '.join(roles[host])))


if __name__ == '__main__':
    main(sys.argv[1])
