# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The deploy_history module run end to end, as Ansible runs it on a target."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import subprocess
import sys

import pytest
import yaml

from ansible_collections.commons.infra.plugins.modules import deploy_history as module

MODULE = 'ansible_collections.commons.infra.plugins.modules.deploy_history'
GIT_ENV = dict(os.environ, GIT_AUTHOR_NAME='t', GIT_AUTHOR_EMAIL='t@example.org',
               GIT_COMMITTER_NAME='t', GIT_COMMITTER_EMAIL='t@example.org', GIT_CONFIG_NOSYSTEM='1')


def pypath():
    """The directory holding ansible_collections/ (conftest puts it first on sys.path)."""
    import ansible_collections.commons.infra as pkg
    here = os.path.dirname(os.path.abspath(pkg.__file__)) if getattr(pkg, '__file__', None) else list(pkg.__path__)[0]
    # .../ansible_collections/commons/infra -> ...
    return os.path.dirname(os.path.dirname(os.path.dirname(here)))


def run_module(tmp_path, **args):
    path = str(tmp_path / 'args.json')
    with open(path, 'w') as f:
        json.dump({'ANSIBLE_MODULE_ARGS': args}, f)
    env = dict(os.environ, PYTHONPATH=pypath())
    proc = subprocess.run([sys.executable, '-m', MODULE, path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=env, cwd=str(tmp_path), check=False)
    assert proc.stdout, proc.stderr.decode()
    return proc.returncode, json.loads(proc.stdout.decode())


def git(repo, *args):
    return subprocess.run(['git', '-C', repo] + list(args), check=True, env=GIT_ENV,
                          stdout=subprocess.PIPE).stdout.decode().strip()


@pytest.fixture
def repo(tmp_path):
    path = str(tmp_path / 'repo')
    subprocess.run(['git', 'init', '-q', '-b', 'main', path], check=True, env=GIT_ENV)
    commits = []
    for n in (1, 2):
        with open(os.path.join(path, 'VERSION'), 'w') as f:
            f.write('v%d\n' % n)
        git(path, 'add', '-A')
        git(path, 'commit', '-q', '-m', 'c%d' % n)
        commits.append(git(path, 'rev-parse', 'HEAD'))
    return path, commits


def listing(root):
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            out.append((full, os.readlink(full) if os.path.islink(full) else os.path.getsize(full)))
    return sorted(out)


def test_documentation_renders_and_matches_argument_spec(tmp_path):
    doc = yaml.safe_load(module.DOCUMENTATION)
    yaml.safe_load(module.EXAMPLES)
    yaml.safe_load(module.RETURN)
    assert doc['module'] == 'deploy_history' and doc['version_added'] == '0.1.0'
    assert set(doc['attributes']) == {'check_mode', 'diff_mode', 'platform'}
    # The module itself lists its parameters when given an unknown one.
    rc, result = run_module(tmp_path, root='/x', service='s', bogus=1)
    assert rc == 1 and result['failed']
    supported = re.search(r'Supported parameters include: (.*)\.', result['msg']).group(1)
    assert set(p.strip() for p in supported.split(',')) == set(doc['options'])

    ansible_doc = os.path.join(os.path.dirname(sys.executable), 'ansible-doc')
    if not os.path.exists(ansible_doc):
        pytest.skip('ansible-doc not installed next to %s' % sys.executable)
    proc = subprocess.run([ansible_doc, '-t', 'module', 'commons.infra.deploy_history', '--json'],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=dict(os.environ, ANSIBLE_COLLECTIONS_PATH=pypath()), check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    rendered = json.loads(proc.stdout.decode())['commons.infra.deploy_history']
    assert rendered['doc']['short_description'].startswith('Hash-binned releases')


def test_end_to_end_deploy_noop_rollback_query(tmp_path, repo):
    path, (c1, c2) = repo
    root = str(tmp_path / 'opt')
    rc, r = run_module(tmp_path, root=root, service='olsystem', repo=path, version=c1, state='active', by='alice')
    assert rc == 0 and r['changed'] and r['release'] == c1
    assert r['active_link'] == os.path.join(root, 'olsystem')
    assert r['path'] == os.path.join(root, 'deploys', 'olsystem', c1)
    rc, r = run_module(tmp_path, root=root, service='olsystem', repo=path, version='main', state='active', by='bob')
    assert r['changed'] and r['release'] == c2 and r['previous'] == c1
    assert [h['by'] for h in r['history']] == ['alice', 'alice', 'bob', 'bob']

    before = listing(root)
    rc, r = run_module(tmp_path, root=root, service='olsystem', repo=path, version='main', state='active')
    assert rc == 0 and r['changed'] is False
    assert listing(root) == before

    rc, r = run_module(tmp_path, root=root, service='olsystem', state='rollback', _ansible_diff=True)
    assert r['changed'] and r['active'] == c1 and r['previous'] == c2
    assert r['diff']['before'].strip().endswith(c2) and r['diff']['after'].strip().endswith(c1)
    with open(os.path.join(root, 'olsystem', 'VERSION')) as f:
        assert f.read() == 'v1\n'

    rc, r = run_module(tmp_path, root=root, service='olsystem', state='query', history_lines=-1)
    assert r['changed'] is False and len(r['history']) == 5
    assert [x['release'] for x in r['releases']] == [c1, c2]
    assert 'diff' not in r


def test_check_mode_and_diff_touch_nothing(tmp_path, repo):
    path, (c1, c2) = repo
    root = str(tmp_path / 'opt')
    run_module(tmp_path, root=root, service='svc', repo=path, version=c1, state='active')
    before = listing(root)
    rc, r = run_module(tmp_path, root=root, service='svc', repo=path, version='main', state='active',
                       keep=2, _ansible_check_mode=True, _ansible_diff=True)
    assert rc == 0 and r['changed'] is True and r['release'] == c2 and r['active'] == c2
    assert r['diff']['before'] == os.path.join(root, 'deploys', 'svc', c1) + '\n'
    assert r['diff']['after'] == os.path.join(root, 'deploys', 'svc', c2) + '\n'
    assert listing(root) == before


def test_check_mode_warns_about_unfetched_commit(tmp_path, repo):
    path, (c1, c2) = repo
    root = str(tmp_path / 'opt')
    run_module(tmp_path, root=root, service='svc', repo=path, version=c1, state='active')
    git(path, 'commit', '-q', '--allow-empty', '-m', 'c3')
    c3 = git(path, 'rev-parse', 'HEAD')
    git(path, 'reset', '-q', '--hard', c2)  # c3 exists but no ref advertises it
    rc, r = run_module(tmp_path, root=root, service='svc', repo=path, version=c3, state='active',
                       _ansible_check_mode=True)
    assert r['changed'] and r['release'] == c3
    # ansible-core 2.19 returns structured warnings; older versions plain strings
    assert 'is not in the local mirror yet' in json.dumps(r['warnings'])


@pytest.mark.parametrize('args,message', [
    ({'service': '../etc'}, 'path separator'),
    ({'service': '.hidden'}, 'starts with a dot'),
    ({'keep': 1}, 'keep must be an integer >= 2'),
    ({'keep': -3}, 'keep must be an integer >= 2'),
    ({'version': 'no-such-ref'}, "unknown ref 'no-such-ref'"),
    ({'state': 'absent'}, 'state is absent but all of the following are missing: release'),
    ({'state': 'absent', 'release': '../../etc'}, 'path separator'),
    ({'state': 'rollback', 'release': '/etc'}, 'absolute path'),
    ({'state': 'rollback'}, 'no previous release'),
])
def test_failures_are_clear_and_change_nothing(tmp_path, repo, args, message):
    path, (c1, c2) = repo
    root = str(tmp_path / 'opt')
    run_module(tmp_path, root=root, service='svc', repo=path, version=c1, state='active')
    before = listing(root)
    full = dict(root=root, service='svc', repo=path, version='main', state='active')
    if args.get('state') in ('absent', 'rollback'):
        full.pop('repo')
        full.pop('version')
    full.update(args)
    rc, r = run_module(tmp_path, **full)
    assert rc == 1 and r['failed'] is True
    assert message in r['msg']
    assert listing(root) == before


def test_unreachable_repo_fails_clearly(tmp_path):
    rc, r = run_module(tmp_path, root=str(tmp_path / 'opt'), service='svc', repo=str(tmp_path / 'nope'), state='active')
    assert rc == 1 and r['msg'].startswith('cannot read repository')
    assert not os.path.exists(str(tmp_path / 'opt'))
