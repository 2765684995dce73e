# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""base's no-op converge with the drift engine (this checkout) and without it (plain tasks), side by side.

Run from the checkout:  .venv/bin/python bench/base_noop_bench.py [--rev cd368ba] [--runs 3]

The drift engine (files/probe.py + base__drift_json, every task guarded by `when: ... in
base_drift`) is what the issue asked to remove unless it makes a no-op more than 3x faster;
the role without it (every task runs, Ansible's own idempotence decides) is commit REV
of this branch, taken from git (`git archive REV roles/base`) into a temp dir. Both roles converge the same systemd lab
container (the keys of molecule/resources/create.yml), over the Docker connection with
pipelining on, with the same variables: each is first converged once, then timed over RUNS
no-op runs (wall clock of ansible-playbook, which must report changed=0). A playbook
of one ping is timed for reference. Figures are also written as JSON to
bench/results/.
"""

from __future__ import absolute_import, division, print_function

import argparse
import datetime
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, '.venv', 'bin')
IMAGE = 'commons-infra/debian:bookworm'
TARGET = 'commons-infra-bench-base'

PLAY = '''
- name: base, no-op
  hosts: all
  gather_facts: false
  vars:
    ansible_pipelining: true
    base_groups: [{name: ops}]
    base_admin_users:
      - {name: admin, groups: [ops], authorized_keys: ["%(key)s"]}
    base_sshd_max_sessions: 10
    base_firewall_allow:
      - {name: node-exporter, port: 9100, from_cidrs: [192.0.2.0/24]}
    base_opt_dirs:
      - {path: /opt/openlibrary}
  roles:
    - role: %(role)s
'''
KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGbM9hkmpjLzbVHoxSGhs8lFiiQAuzTmnb3W5FZyBYjM bench@lab'


def sh(argv, **kwargs):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                          check=False, **kwargs)


def start_target():
    sh(['docker', 'rm', '-f', TARGET])
    run = sh(['docker', 'run', '-d', '--name', TARGET, '--hostname', TARGET, '--label', 'owner=commons-infra-bench',
              '--cap-add', 'SYS_ADMIN', '--cap-add', 'NET_ADMIN', '--security-opt', 'seccomp=unconfined',
              '--cgroupns', 'host', '-v', '/sys/fs/cgroup:/sys/fs/cgroup:rw',
              '-v', 'commons-infra-apt-%s:/var/cache/apt/archives' % TARGET,
              '--tmpfs', '/run', '--tmpfs', '/run/lock', '--tmpfs', '/tmp', '--stop-signal', 'SIGRTMIN+3',
              IMAGE, '/lib/systemd/systemd'])
    if run.returncode != 0:
        sys.exit('cannot start %s: %s' % (TARGET, run.stdout))
    sh(['docker', 'exec', TARGET, 'systemctl', 'is-system-running', '--wait'])


def playbook(workdir, inventory, role, env):
    path = os.path.join(workdir, 'play-%s.yml' % re.sub(r'\W', '_', role))
    with open(path, 'w') as handle:
        handle.write(PLAY % {'key': KEY, 'role': role})
    return path


def timed(path, inventory, env):
    started = time.time()
    run = sh([os.path.join(BIN, 'ansible-playbook'), '-i', inventory, path], env=env)
    elapsed = time.time() - started
    recap = re.search(r'changed=(\d+).*failed=(\d+)', run.stdout)
    if run.returncode != 0 or not recap:
        sys.exit('%s failed:\n%s' % (path, run.stdout[-3000:]))
    return elapsed, int(recap.group(1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--rev', default='cd368ba', help='git revision whose roles/base has no drift engine')
    parser.add_argument('--runs', type=int, default=3)
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix='base-bench-')
    archive = sh(['bash', '-c', 'git -C "%s" archive %s roles/base | tar -C "%s" -x' % (ROOT, args.rev, workdir)])
    if archive.returncode != 0 or os.path.exists(os.path.join(workdir, 'roles/base/files/probe.py')):
        sys.exit('%s:roles/base is not the role without the drift engine: %s' % (args.rev, archive.stdout))
    inventory = os.path.join(workdir, 'inventory.yml')
    with open(inventory, 'w') as handle:
        handle.write('all:\n  hosts:\n    %s:\n      ansible_connection: community.docker.docker\n'
                     '      ansible_python_interpreter: /usr/bin/python3\n' % TARGET)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, '.cache', 'pypath'),
               ANSIBLE_ROLES_PATH=os.path.join(ROOT, 'roles'), ANSIBLE_FORCE_COLOR='0', ANSIBLE_NOCOLOR='1')

    start_target()
    try:
        empty = os.path.join(workdir, 'empty.yml')
        with open(empty, 'w') as handle:
            handle.write('- hosts: all\n  gather_facts: false\n  vars: {ansible_pipelining: true}\n'
                         '  tasks: [{ansible.builtin.ping: }]\n')
        results = {'empty_playbook_s': round(timed(empty, inventory, env)[0], 2)}
        for label, role in (('with drift engine (this checkout)', 'commons.infra.base'),
                            ('without (plain tasks, %s)' % args.rev, os.path.join(workdir, 'roles', 'base'))):
            path = playbook(workdir, inventory, role, env)
            first = timed(path, inventory, env)[0]
            runs = []
            for dummy in range(args.runs):
                elapsed, changed = timed(path, inventory, env)
                if changed:
                    sys.exit('%s: a no-op run changed %d things' % (label, changed))
                runs.append(elapsed)
            results[label] = {'first_converge_s': round(first, 1), 'noop_runs_s': [round(r, 2) for r in runs],
                              'noop_median_s': round(statistics.median(runs), 2)}
    finally:
        sh(['docker', 'rm', '-f', TARGET])

    with_engine, without = [results[k] for k in results if k != 'empty_playbook_s']
    print('base no-op converge, %d runs each, Docker connection, pipelining on (a one-ping playbook: %.2f s)'
          % (args.runs, results['empty_playbook_s']))
    for label in (k for k in results if k != 'empty_playbook_s'):
        print('  %-40s median %6.2f s  runs %s' % (label, results[label]['noop_median_s'], results[label]['noop_runs_s']))
    ratio = without['noop_median_s'] / with_engine['noop_median_s']
    print('  the drift engine makes the no-op %.2fx faster (the issue keeps it above 3x)' % ratio)
    results['ratio'] = round(ratio, 2)
    os.makedirs(os.path.join(ROOT, 'bench', 'results'), exist_ok=True)
    stamp = datetime.datetime.utcnow().strftime('%Y%m%dT%H%M%SZ')
    with open(os.path.join(ROOT, 'bench', 'results', 'base_noop-%s.json' % stamp), 'w') as handle:
        json.dump(results, handle, indent=2)


if __name__ == '__main__':
    main()
