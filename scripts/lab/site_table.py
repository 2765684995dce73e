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


def main(inventory_dir):
    listing = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'ansible-inventory'), '-i', inventory_dir,
                              '--list'], capture_output=True, text=True, check=True).stdout
    inventory = json.loads(listing)
    hosts = members(inventory, 'all')
    roles = {host: [] for host in hosts}
    for entry in load(os.path.join(ROOT, 'playbooks', 'site.yml')):
        for play in load(os.path.join(ROOT, 'playbooks', entry['ansible.builtin.import_playbook'])):
            targets = set()
            for part in str(play['hosts']).split(':'):
                if not part.startswith(('&', '!')):
                    targets.update(members(inventory, part) if part != 'all' else hosts)
            for role in play.get('roles', []):
                name = (role['role'] if isinstance(role, dict) else role).split('.')[-1]
                for host in targets:
                    if name not in roles[host]:
                        roles[host].append(name)
    groups = {host: [g for g in inventory if g not in ('all', '_meta') and host in inventory[g].get('hosts', [])]
              for host in hosts}
    address = {host: inventory['_meta']['hostvars'].get(host, {}).get('ansible_host', '') for host in hosts}
    print('%-10s %-14s %-12s %s' % ('host', 'address', 'groups', 'roles (site.yml order)'))
    for host in sorted(hosts):
        print('%-10s %-14s %-12s %s' % (host, address[host], ','.join(groups[host]), ', '.join(roles[host])))


if __name__ == '__main__':
    main(sys.argv[1])
