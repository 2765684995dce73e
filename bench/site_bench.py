# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The whole site's first converge and no-op converge, per role, against Ansible's defaults.

Run from the checkout:  .venv/bin/python bench/site_bench.py [--keep]    (`make bench` runs it)

Fresh lab containers (molecule/site's, as `make demo` makes them: a running demo is
replaced), then playbooks/site.yml with inventory/lab over ssh as the admin user: the first
converge, then a no-op converge that must report changed=0, both as the lab inventory ships
(pipelining on, a persistent master connection). The alternative, as the README's "Faster
runs" defines it, is Ansible's defaults: the same no-op converge with pipelining off
(`-e ansible_pipelining=false`); its ratio to ours is printed. (Its first converge would
need a second fresh lab, about as long again, so only the no-op is compared.) Each run is
timed (wall clock of ansible-playbook) and split per role by ansible.posix.profile_roles.
The no-op target is 90 s on the 2-core lab machine. The whole run holds the site scenario's
machine-wide lock (scripts/test/scenario.sh), so no site scenario or demo runs meanwhile.
The apt archive volumes of the lab hosts are kept between runs (molecule/resources/create.yml),
so "first" means a first converge of fresh hosts with packages already downloaded. Figures
go to bench/results/. --keep leaves the lab running (as `make demo` would; `make demo`
then is a no-op converge, `scripts/test/scenario.sh site verify` tests it); --running times
only the two no-op converges of a running, converged lab.
"""

from __future__ import absolute_import, division, print_function

import argparse
import datetime
import fcntl
import json
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, '.venv', 'bin')
NOOP_TARGET_S = 90
ROLE_LINE = re.compile(r'^(\S+) -+ (\d+\.\d+)s$')
RECAP_LINE = re.compile(r'^(\S+)\s+: ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)')


def env():
    return dict(os.environ,
                PATH=BIN + os.pathsep + os.environ.get('PATH', ''),
                ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, '.cache', 'pypath'),
                ANSIBLE_ROLES_PATH=os.path.join(ROOT, 'roles'),
                COMMONS_INFRA_LAB_KEY=os.path.join(ROOT, '.cache', 'lab', 'admin_ed25519.pub'),
                ANSIBLE_VAULT_PASSWORD_FILE=os.path.join(ROOT, 'inventory', 'lab', 'vault-password.txt'),
                ANSIBLE_CALLBACKS_ENABLED='ansible.posix.profile_roles',
                ANSIBLE_FORKS='10',  # every lab host in one wave, as make demo and the site scenario run
                ANSIBLE_FORCE_COLOR='0', ANSIBLE_NOCOLOR='1')


LOCK = '/run/lock/commons-infra/scenario-site.lock'


def scenario(step):
    proc = subprocess.run([os.path.join(ROOT, 'scripts', 'test', 'scenario.sh'), 'site', step], cwd=ROOT,
                          env=dict(env(), COMMONS_INFRA_SCENARIO_LOCKED='site'),
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit('site %s failed:\n%s' % (step, (proc.stdout + proc.stderr)[-3000:]))


def converge(label, extra=()):
    started = time.monotonic()
    proc = subprocess.run([os.path.join(BIN, 'ansible-playbook'), '-i', 'inventory/lab', 'playbooks/site.yml', *extra],
                          cwd=ROOT, env=env(), capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    log = os.path.join(ROOT, '.cache', 'site-bench-%s.log' % label)
    with open(log, 'w') as handle:
        handle.write(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        sys.exit('%s converge failed (log: %s):\n%s' % (label, log, proc.stdout[-3000:]))
    roles = {m.group(1): float(m.group(2)) for m in map(ROLE_LINE.match, proc.stdout.splitlines())
             if m and m.group(1) != 'total'}
    changed = {m.group(1): int(m.group(2)) for m in map(RECAP_LINE.match, proc.stdout.splitlines()) if m}
    print('  %-28s %7.1f s, changed=%d (log: %s)' % (label, seconds, sum(changed.values()), os.path.relpath(log, ROOT)),
          flush=True)
    return {'seconds': round(seconds, 1), 'roles': roles, 'changed': changed}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--keep', action='store_true', help='leave the lab running')
    parser.add_argument('--running', action='store_true',
                        help='no fresh lab: time only the no-op converges of the running (converged) lab')
    args = parser.parse_args()
    os.makedirs(os.path.dirname(LOCK), exist_ok=True)
    lock = open(LOCK, 'w')  # noqa: SIM115 (held until the process ends)
    print('site bench: waiting for the site scenario lock (%s)' % LOCK, flush=True)
    fcntl.flock(lock, fcntl.LOCK_EX)
    load = open('/proc/loadavg').read().split()[:3]
    print('site bench: %s (7 hosts), load average %s' % ('running lab' if args.running else 'fresh lab', ' '.join(load)),
          flush=True)
    if args.running:
        first = {'seconds': 0.0, 'roles': {}, 'changed': {}}
    else:
        scenario('destroy')
        scenario('create')
        scenario('prepare')
        first = converge('first')
    noop = converge('noop')
    # Without pipelining, becoming an unprivileged user (postgres) needs ACLs on the host's
    # temporary files (no `acl` package on these hosts) or world-readable ones: the latter,
    # for this measurement only.
    default = converge('noop-ansible-defaults', ['-e', 'ansible_pipelining=false',
                                                 '-e', 'ansible_shell_allow_world_readable_temp=true'])
    if not args.keep and not args.running:
        scenario('destroy')
    load_end = open('/proc/loadavg').read().split()[:3]
    print('%-34s %10s %10s %12s' % ('role (profile_roles)', 'first s', 'no-op s', 'no-op Ansible defaults s'))
    for role in sorted(set(first['roles']) | set(noop['roles']), key=lambda r: -first['roles'].get(r, 0)):
        print('%-34s %10.1f %10.1f %12.1f' % (role, first['roles'].get(role, 0), noop['roles'].get(role, 0),
                                              default['roles'].get(role, 0)))
    print('%-34s %10.1f %10.1f %12.1f' % ('whole site (wall clock)', first['seconds'], noop['seconds'], default['seconds']))
    ratio = default['seconds'] / noop['seconds']
    print('no-op converge: ours (pipelining on) %.1f s vs Ansible\'s defaults (pipelining off) %.1f s: ours %.2fx faster'
          % (noop['seconds'], default['seconds'], ratio))
    changed = sum(noop['changed'].values()) + sum(default['changed'].values())
    verdict = 'ok' if noop['seconds'] < NOOP_TARGET_S and changed == 0 else 'MISSED'
    print('no-op converge: %.1f s, changed=%d on %d hosts (target < %d s, changed=0): %s'
          % (noop['seconds'], changed, len(noop['changed']), NOOP_TARGET_S, verdict))
    print('load average: %s at the start, %s at the end (2 cores, shared)' % (' '.join(load), ' '.join(load_end)))
    results = os.path.join(ROOT, 'bench', 'results')
    os.makedirs(results, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime('%Y%m%dT%H%M%SZ')
    with open(os.path.join(results, 'site-%s.json' % stamp), 'w') as handle:
        json.dump({'load': load, 'load_end': load_end, 'first': first, 'noop': noop,
                   'noop_ansible_defaults': default, 'ratio': round(ratio, 2)}, handle, indent=2)
    return 0 if verdict == 'ok' else 1


if __name__ == '__main__':
    sys.exit(main())
