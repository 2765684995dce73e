# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Requests per second through the edge (nginx TLS -> haproxy -> two web hosts) and directly to one
web host, in the same run, from the same client.

Run from the checkout:  .venv/bin/python bench/edge_bench.py [--requests 2000] [--concurrency 8]

Uses the edge scenario's hosts (molecule/edge): when ed-edge is not running, the scenario is
created, prepared and converged first (scripts/test/scenario.sh, under its lock) and destroyed at
the end. The client is ed-outsider running molecule/edge/files/edge_load.py (one connection a
request, as the scenario's tests measure). Figures are also written as JSON to bench/results/.
"""

from __future__ import absolute_import, division, print_function

import argparse
import datetime
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLIENT = 'ed-outsider'


def sh(argv):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)


def running(name):
    return sh(['docker', 'inspect', '-f', '{{.State.Running}}', name]).stdout.strip() == 'true'


def scenario(command):
    run = sh([os.path.join(ROOT, 'scripts', 'test', 'scenario.sh'), 'edge', command])
    if run.returncode != 0:
        sys.exit('scenario edge %s failed:\n%s' % (command, run.stdout[-3000:]))


def load(url, requests, concurrency):
    run = sh(['docker', 'exec', CLIENT, 'python3', '/usr/local/bin/edge_load.py', url, '--count', str(requests),
              '--concurrency', str(concurrency)])
    if run.returncode != 0:
        sys.exit('load on %s failed: %s' % (url, run.stdout[-2000:]))
    result = json.loads(run.stdout)
    result.pop('timeline', None)
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--requests', type=int, default=2000)
    parser.add_argument('--concurrency', type=int, default=8)
    args = parser.parse_args()
    created = False
    if not running('ed-edge'):
        for command in ('create', 'prepare', 'converge'):
            scenario(command)
        created = True
    try:
        load('https://ed-edge/', 100, args.concurrency)  # warm-up
        edge = load('https://ed-edge/', args.requests, args.concurrency)
        direct = load('http://ed-web1:8080/', args.requests, args.concurrency)
    finally:
        if created:
            scenario('destroy')
    for label, result in (('through the edge (https, nginx -> haproxy -> 2 web hosts)', edge),
                          ('directly to ed-web1 (http)', direct)):
        print('%-60s %7.1f req/s  p50 %6.1f ms  p99 %6.1f ms  failures %d/%d' % (
            label, result['rps'], result['p50_ms'], result['p99_ms'], result['failures'], result['requests']))
    print('edge / direct: %.2f' % (edge['rps'] / direct['rps']))
    os.makedirs(os.path.join(ROOT, 'bench', 'results'), exist_ok=True)
    stamp = datetime.datetime.utcnow().strftime('%Y%m%dT%H%M%SZ')
    with open(os.path.join(ROOT, 'bench', 'results', 'edge-%s.json' % stamp), 'w') as handle:
        json.dump({'edge': edge, 'direct': direct, 'requests': args.requests, 'concurrency': args.concurrency,
                   'load': os.getloadavg()}, handle, indent=1)
    return 0 if edge['failures'] == 0 and direct['failures'] == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
