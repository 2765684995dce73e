# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The no-op converge of base + memcached + an app release under each connection/strategy setting, side by side.

Run from the checkout:  .venv/bin/python bench/converge_strategies_bench.py [--runs 2] [--only default,pipelining]

Two systemd lab containers of its own (the keys of molecule/resources/create.yml) on a
network of its own: commons-infra-bench-mem (group memcached, 1 GiB like the site
scenario's ol-mem0) and commons-infra-bench-web (group web), with the lab's group_vars
(inventory/lab/group_vars). The converge is the layer playbooks as production runs them:
playbooks/base.yml, playbooks/memcached.yml, then playbooks/deploy.yml deploying the demo
application (tests/apps/make_demo_repo.sh) to the web host, its cache on the memcached
host. It is converged once, then every setting gets one untimed warm-up run (a fact
cache fills) and RUNS timed runs, the settings taking turns round by round so that the
machine's load falls on all of them alike. A timed run must report changed=0 and
failed=0, or the setting is reported as failing. The settings:

  default            Ansible's defaults: no pipelining, facts gathered in every play
  pipelining         ANSIBLE_PIPELINING=True
  fact_cache         gathering=smart with the jsonfile cache plugin
  pipelining+facts   both of the above (what docs/ansible.cfg.example ships)
  mitogen            the mitogen_linear strategy (PyPI mitogen, unpacked into .cache)
  mitogen+facts      mitogen_linear with the jsonfile fact cache

Figures print with the ratio to `default` and are written as JSON to bench/results/.
The containers and network are removed at the end.
"""

from __future__ import absolute_import, division, print_function

import argparse
import datetime
import glob
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, '.venv', 'bin')
IMAGE = 'commons-infra/debian:bookworm'
NETWORK = 'commons-infra-bench'
HOSTS = {'commons-infra-bench-mem': {'group': 'memcached', 'memory': '1g'},
         'commons-infra-bench-web': {'group': 'web'}}
MITOGEN_VERSION = '0.3.54'
SETTINGS = ('default', 'pipelining', 'fact_cache', 'pipelining+facts', 'mitogen', 'mitogen+facts')

PLAYBOOK = '''
- name: Base layer
  ansible.builtin.import_playbook: %(root)s/playbooks/base.yml
- name: Cache layer
  ansible.builtin.import_playbook: %(root)s/playbooks/memcached.yml
- name: The demo application
  ansible.builtin.import_playbook: %(root)s/playbooks/deploy.yml
'''
APP_VARS = '''
base_serial: 0
deploy_hosts: web
app_release_service: demo
app_release_root: /opt/openlibrary
app_release_local_repo: %(repo)s
app_release_version: v1
app_release_command: /usr/bin/python3 app.py
app_release_env:
  PORT: 8080
  MEMCACHED_SERVERS: commons-infra-bench-mem:11211
app_release_health_url: http://127.0.0.1:8080/health
'''


def sh(argv, **kwargs):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                          check=False, **kwargs)


def remove_lab():
    sh(['docker', 'rm', '-f'] + list(HOSTS))
    sh(['docker', 'network', 'rm', NETWORK])


def start_lab():
    remove_lab()
    run = sh(['docker', 'network', 'create', '--label', 'owner=commons-infra-bench', NETWORK])
    if run.returncode != 0:
        sys.exit('cannot create network %s: %s' % (NETWORK, run.stdout))
    for name, host in HOSTS.items():
        argv = ['docker', 'run', '-d', '--name', name, '--hostname', name, '--network', NETWORK,
                '--label', 'owner=commons-infra-bench',
                '--cap-add', 'SYS_ADMIN', '--cap-add', 'NET_ADMIN', '--security-opt', 'seccomp=unconfined',
                '--cgroupns', 'host', '-v', '/sys/fs/cgroup:/sys/fs/cgroup:rw',
                '-v', 'commons-infra-apt-%s:/var/cache/apt/archives' % name,
                '--tmpfs', '/run', '--tmpfs', '/run/lock', '--tmpfs', '/tmp', '--stop-signal', 'SIGRTMIN+3']
        if host.get('memory'):
            argv += ['--memory', host['memory']]
        run = sh(argv + [IMAGE, '/lib/systemd/systemd'])
        if run.returncode != 0:
            sys.exit('cannot start %s: %s' % (name, run.stdout))
    for name in HOSTS:
        sh(['docker', 'exec', name, 'systemctl', 'is-system-running', '--wait'])


def mitogen_dir():
    """PyPI's mitogen unpacked into .cache (not installed into the shared .venv)."""
    target = os.path.join(ROOT, '.cache', 'mitogen-%s' % MITOGEN_VERSION)
    if not os.path.isdir(os.path.join(target, 'ansible_mitogen')):
        download = tempfile.mkdtemp(prefix='mitogen-')
        run = sh([os.path.join(BIN, 'pip'), 'download', '-q', '--no-deps', '-d', download,
                  'mitogen==%s' % MITOGEN_VERSION])
        wheels = glob.glob(os.path.join(download, 'mitogen-*.whl'))
        if run.returncode != 0 or not wheels:
            return None, 'pip download mitogen==%s failed: %s' % (MITOGEN_VERSION, run.stdout[-500:])
        shutil.unpack_archive(wheels[0], target, 'zip')
    return os.path.join(target, 'ansible_mitogen', 'plugins', 'strategy'), None


def environments(base_env, workdir, strategy_dir):
    facts = {'ANSIBLE_GATHERING': 'smart', 'ANSIBLE_CACHE_PLUGIN': 'ansible.builtin.jsonfile',
             'ANSIBLE_CACHE_PLUGIN_TIMEOUT': '86400'}
    mitogen = {'ANSIBLE_STRATEGY_PLUGINS': strategy_dir or '', 'ANSIBLE_STRATEGY': 'mitogen_linear'}
    envs = {
        'default': {},
        'pipelining': {'ANSIBLE_PIPELINING': 'True'},
        'fact_cache': dict(facts),
        'pipelining+facts': dict(facts, ANSIBLE_PIPELINING='True'),
        'mitogen': dict(mitogen),
        'mitogen+facts': dict(mitogen, **facts),
    }
    for name, extra in envs.items():
        if 'ANSIBLE_CACHE_PLUGIN' in extra:
            extra['ANSIBLE_CACHE_PLUGIN_CONNECTION'] = os.path.join(workdir, 'facts-' + re.sub(r'\W', '_', name))
        envs[name] = dict(base_env, **extra)
    return envs


def converge(workdir, env):
    started = time.time()
    run = sh([os.path.join(BIN, 'ansible-playbook'), '-i', os.path.join(workdir, 'inventory'),
              '-e', '@' + os.path.join(workdir, 'app.yml'), os.path.join(workdir, 'site.yml')], env=env)
    elapsed = time.time() - started
    recaps = re.findall(r'^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)', run.stdout, re.M)
    changed = sum(int(r[2]) for r in recaps)
    failed = sum(int(r[3]) + int(r[4]) for r in recaps)
    error = None
    if run.returncode != 0 or not recaps or failed:
        error = 'rc=%d failed/unreachable=%d: %s' % (run.returncode, failed, run.stdout[-1500:])
    return elapsed, changed, error, run.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--runs', type=int, default=2, help='timed no-op runs per setting')
    parser.add_argument('--only', default=','.join(SETTINGS), help='comma-separated settings (default: all)')
    parser.add_argument('--keep', action='store_true', help='leave the containers running')
    args = parser.parse_args()
    chosen = [s for s in args.only.split(',') if s]
    unknown = set(chosen) - set(SETTINGS)
    if unknown or 'default' not in chosen:
        sys.exit('--only takes %s and must include default' % ', '.join(SETTINGS))

    workdir = tempfile.mkdtemp(prefix='converge-bench-')
    repo = os.path.join(workdir, 'demo-repo')
    made = sh([os.path.join(ROOT, 'tests', 'apps', 'make_demo_repo.sh'), repo])
    if made.returncode != 0:
        sys.exit('make_demo_repo.sh failed: %s' % made.stdout)
    os.makedirs(os.path.join(workdir, 'inventory'))
    with open(os.path.join(workdir, 'inventory', 'hosts.yml'), 'w') as handle:
        # `docker`, not community.docker.docker: the name mitogen's strategy redirects to
        # its own connection; ansible-core routes it to community.docker.docker otherwise.
        handle.write('all:\n  vars:\n    ansible_connection: docker\n'
                     '    ansible_python_interpreter: /usr/bin/python3\n  children:\n')
        for name, host in HOSTS.items():
            handle.write('    %s:\n      hosts:\n        %s:\n' % (host['group'], name))
    os.symlink(os.path.join(ROOT, 'inventory', 'lab', 'group_vars'), os.path.join(workdir, 'inventory', 'group_vars'))
    with open(os.path.join(workdir, 'site.yml'), 'w') as handle:
        handle.write(PLAYBOOK % {'root': ROOT})
    with open(os.path.join(workdir, 'app.yml'), 'w') as handle:
        handle.write(APP_VARS % {'repo': repo})
    key = os.path.join(ROOT, '.cache', 'lab', 'admin_ed25519.pub')
    if not os.path.exists(key):
        sys.exit('%s is missing: run scripts/lab/admin-key.sh (make lab)' % key)
    base_env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, '.cache', 'pypath'),
                    ANSIBLE_ROLES_PATH=os.path.join(ROOT, 'roles'), ANSIBLE_FORCE_COLOR='0', ANSIBLE_NOCOLOR='1',
                    COMMONS_INFRA_LAB_KEY=key, ANSIBLE_PIPELINING='False', ANSIBLE_GATHERING='implicit')
    for name in ('ANSIBLE_STRATEGY', 'ANSIBLE_STRATEGY_PLUGINS', 'ANSIBLE_CACHE_PLUGIN', 'ANSIBLE_CONFIG'):
        base_env.pop(name, None)
    strategy_dir, mitogen_error = (None, None)
    if any(s.startswith('mitogen') for s in chosen):
        strategy_dir, mitogen_error = mitogen_dir()
    envs = environments(base_env, workdir, strategy_dir)

    results = {'runs': args.runs, 'load_before': os.getloadavg()[0], 'settings': {}}
    failures = {}
    if mitogen_error:
        for name in chosen:
            if name.startswith('mitogen'):
                failures[name] = mitogen_error
    start_lab()
    try:
        first, changed, error, dummy = converge(workdir, envs['default'])
        if error:
            sys.exit('the first converge failed: %s' % error)
        results['first_converge_s'] = round(first, 1)
        times = {name: [] for name in chosen if name not in failures}
        for name in list(times):
            dummy, dummy, error, dummy = converge(workdir, envs[name])  # warm-up: fills a fact cache
            if error:
                failures[name] = 'warm-up run: ' + error
                del times[name]
        for dummy in range(args.runs):
            for name in list(times):
                elapsed, changed, error, dummy = converge(workdir, envs[name])
                if error or changed:
                    failures[name] = error or 'a no-op run changed %d things' % changed
                    del times[name]
                    continue
                times[name].append(elapsed)
    finally:
        if not args.keep:
            remove_lab()
    results['load_after'] = os.getloadavg()[0]

    base = statistics.median(times['default']) if 'default' in times else None
    print('no-op converge of base + memcached + app_release (2 lab containers, Docker connection), '
          '%d timed runs each after a warm-up; first converge %.0f s; load %.1f -> %.1f'
          % (args.runs, results['first_converge_s'], results['load_before'], results['load_after']))
    print('  %-18s %9s %9s   %s' % ('setting', 'median s', 'vs default', 'runs s'))
    for name in chosen:
        if name in times:
            median = statistics.median(times[name])
            ratio = base / median if base else float('nan')
            results['settings'][name] = {'median_s': round(median, 2), 'runs_s': [round(t, 2) for t in times[name]],
                                         'speedup_vs_default': round(ratio, 2)}
            print('  %-18s %9.2f %8.2fx   %s' % (name, median, ratio, [round(t, 1) for t in times[name]]))
        else:
            results['settings'][name] = {'failed': failures[name][-2000:]}
            print('  %-18s    FAILED   %s' % (name, failures[name].splitlines()[0][:160] if failures[name] else ''))
    os.makedirs(os.path.join(ROOT, 'bench', 'results'), exist_ok=True)
    stamp = datetime.datetime.utcnow().strftime('%Y%m%dT%H%M%SZ')
    with open(os.path.join(ROOT, 'bench', 'results', 'converge_strategies-%s.json' % stamp), 'w') as handle:
        json.dump(results, handle, indent=2)
    shutil.rmtree(workdir, ignore_errors=True)
    if 'default' not in times:
        sys.exit(1)


if __name__ == '__main__':
    main()
