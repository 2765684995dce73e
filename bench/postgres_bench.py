# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""First converge and no-op converge of the PostgreSQL tier's three db hosts.

Run from the checkout:  .venv/bin/python bench/postgres_bench.py   (make bench runs it)

Uses the molecule/postgres scenario's hosts (pg-db1 primary with pgbouncer, pg-db2
synchronous and pg-db3 asynchronous standbys, pg-client), through
scripts/test/scenario.sh, so it waits for anyone else's run of that scenario and
removes its containers at the end. The scenario is created and prepared (client
packages) untimed; then its converge (playbooks/postgres.yml and base's firewall
contract) is timed twice: the first builds the cluster (packages from the shared apt
cache volume, pg_basebackup of both standbys), the second must change nothing.
Figures are printed and written as JSON to bench/results/.
"""

from __future__ import absolute_import, division, print_function

import datetime
import json
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCENARIO = os.path.join(ROOT, 'scripts', 'test', 'scenario.sh')
DB_HOSTS = ('pg-db1', 'pg-db2', 'pg-db3')
RECAP_RE = re.compile(r'(pg-db\d)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)')
ANSI_RE = re.compile(r'\x1b\[[0-9;]*m')


def scenario(command):
    started = time.monotonic()
    proc = subprocess.run([SCENARIO, 'postgres', command], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, check=False)
    return proc.returncode, ANSI_RE.sub('', proc.stdout), time.monotonic() - started


def recap(output):
    """{host: (ok, changed, unreachable, failed)} of the last recap of each db host."""
    counts = {}
    for host, ok, changed, unreachable, failed in RECAP_RE.findall(output):
        counts[host] = (int(ok), int(changed), int(unreachable), int(failed))
    return counts


def main():
    results = {'date': datetime.datetime.utcnow().strftime('%Y-%m-%dT%H:%M:%SZ'), 'load_before': os.getloadavg()[0]}
    status = 0
    try:
        for command in ('destroy', 'create', 'prepare'):
            rc, out, _took = scenario(command)
            if rc != 0:
                print('scenario postgres %s failed:\n%s' % (command, out[-3000:]))
                return 1
        for label in ('first converge', 'no-op converge'):
            rc, out, took = scenario('converge')
            counts = recap(out)
            changed = {host: counts.get(host, (0, -1))[1] for host in DB_HOSTS}
            print('%-15s %6.1f s  changed: %s%s' % (label, took, ', '.join('%s=%d' % item for item in sorted(changed.items())),
                                                    '' if rc == 0 else '  (FAILED rc=%d)' % rc))
            results[label] = {'seconds': round(took, 1), 'changed': changed, 'rc': rc}
            if rc != 0 or (label == 'no-op converge' and any(changed.values())):
                status = 1
                print(out[-3000:])
    finally:
        scenario('destroy')
    results['load_after'] = os.getloadavg()[0]
    print('load average (1 min) before %.1f, after %.1f' % (results['load_before'], results['load_after']))
    os.makedirs(os.path.join(ROOT, 'bench', 'results'), exist_ok=True)
    with open(os.path.join(ROOT, 'bench', 'results', 'postgres.json'), 'w') as handle:
        json.dump(results, handle, indent=2, sort_keys=True)
    return status


if __name__ == '__main__':
    sys.exit(main())
