# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The etc_symlinks module end to end: a real process fed an args file, as Ansible runs it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import subprocess
import sys

import pytest

MODULE = 'ansible_collections.commons.infra.plugins.modules.etc_symlinks'
# conftest put the collection on sys.path; hand the same root to the child process.
PYPATH = next(p for p in sys.path if os.path.isdir(os.path.join(p or '.', 'ansible_collections', 'commons', 'infra')))


def run_module(tmp_path, check=False, diff=False, **args):
    if check:
        args['_ansible_check_mode'] = True
    if diff:
        args['_ansible_diff'] = True
    args_file = tmp_path / 'args.json'
    args_file.write_text(json.dumps({'ANSIBLE_MODULE_ARGS': args}))
    env = dict(os.environ, PYTHONPATH=PYPATH)
    proc = subprocess.run([sys.executable, '-m', MODULE, str(args_file)], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=60, check=False)
    try:
        return json.loads(proc.stdout)
    except ValueError:
        raise AssertionError('module printed no JSON (rc %d): %s %s' % (proc.returncode, proc.stdout, proc.stderr))


def write(path, content='x\n'):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(content)


@pytest.fixture
def lab(tmp_path):
    src = tmp_path / 'repo' / 'etc'
    dest = tmp_path / 'etc'
    dest.mkdir(parents=True)
    write(str(src / 'nginx' / 'nginx.conf'))
    write(str(src / 'motd'), 'hello\n')
    write(str(src / 'pve' / 'storage.cfg'), 'dir: local\n')
    return {'src': str(src), 'dest': str(dest), 'backup': str(tmp_path / 'backup')}


def test_links_reports_and_is_idempotent(tmp_path, lab):
    args = dict(sources=[lab['src']], dest=lab['dest'], backup_dir=lab['backup'],
                copy=[{'path': 'pve', 'mode': '0640'}])
    r = run_module(tmp_path, **args)
    assert r['changed'] is True, r
    assert r['created'] == [os.path.join(lab['dest'], 'motd'), os.path.join(lab['dest'], 'nginx/nginx.conf')]
    assert r['copied'] == [os.path.join(lab['dest'], 'pve/storage.cfg')]
    assert r['changed_paths'] == sorted(r['created'] + r['copied'])
    for key in ('updated', 'removed', 'backed_up', 'captured', 'conflicts', 'kept', 'cleaned'):
        assert r[key] == [], key
    assert os.readlink(os.path.join(lab['dest'], 'motd')) == os.path.join(lab['src'], 'motd')
    assert oct(os.stat(os.path.join(lab['dest'], 'pve/storage.cfg')).st_mode & 0o777) == '0o640'
    r = run_module(tmp_path, **args)
    assert r['changed'] is False
    assert r['changed_paths'] == []
    assert len(r['kept']) == 3


def test_check_and_diff_mode(tmp_path, lab):
    r = run_module(tmp_path, check=True, diff=True, sources=[lab['src']], dest=lab['dest'])
    assert r['changed'] is True
    assert len(r['created']) == 3
    assert os.listdir(lab['dest']) == []
    assert {'before_header': os.path.join(lab['dest'], 'motd'), 'after_header': os.path.join(lab['dest'], 'motd'),
            'before': 'absent\n', 'after': 'link -> %s\n' % os.path.join(lab['src'], 'motd')} in r['diff']


def test_conflict_backup_default_and_error(tmp_path, lab):
    write(os.path.join(lab['dest'], 'motd'), 'local\n')
    r = run_module(tmp_path, sources=[lab['src']], dest=lab['dest'], backup_dir=lab['backup'], conflict='error')
    assert r['failed'] is True
    assert r['msg'] == ('conflict: %s is a regular file (6 bytes, mode 0644), not a link into the sources '
                        '(conflict mode error); nothing was changed' % os.path.join(lab['dest'], 'motd'))
    assert r['errors'] == [r['msg'][:-len('; nothing was changed')]]
    assert sorted(os.listdir(lab['dest'])) == ['motd']
    r = run_module(tmp_path, sources=[lab['src']], dest=lab['dest'], backup_dir=lab['backup'])
    assert r['backed_up'] == [os.path.join(lab['dest'], 'motd')]
    with open(os.path.join(lab['backup'], 'motd')) as f:
        assert f.read() == 'local\n'


def test_unknown_conflict_mode_is_rejected_by_the_argument_spec(tmp_path, lab):
    r = run_module(tmp_path, sources=[lab['src']], dest=lab['dest'], conflict='clobber')
    assert r['failed'] is True
    assert 'value of conflict must be one of: backup, error, replace, got: clobber' in r['msg']
    assert os.listdir(lab['dest']) == []


def test_relative_and_missing_paths_fail_with_every_problem(tmp_path, lab):
    r = run_module(tmp_path, sources=['repo/etc', os.path.join(lab['src'], 'nope')], dest=lab['dest'])
    assert r['failed'] is True
    assert r['errors'] == ["source 'repo/etc' must be an absolute path",
                           'source %s does not exist' % os.path.join(lab['src'], 'nope')]
    assert os.listdir(lab['dest']) == []


def test_secret_refusal_through_the_module(tmp_path, lab):
    write(os.path.join(lab['src'], 'ssh', 'ssh_host_ed25519_key'),
          '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n')
    r = run_module(tmp_path, sources=[lab['src']], dest=lab['dest'])
    assert r['failed'] is True
    assert os.path.join(lab['src'], 'ssh', 'ssh_host_ed25519_key') in r['msg']
    assert os.listdir(lab['dest']) == []


def test_capture_warns_about_missing_live_files(tmp_path, lab):
    r = run_module(tmp_path, sources=[lab['src']], dest=lab['dest'], state='capture', copy=['pve/storage.cfg'])
    assert r['changed'] is False
    # ansible-core 2.19 wraps warnings in WarningSummary events; older releases return plain strings.
    warnings = [w['event']['msg'] if isinstance(w, dict) else w for w in r['warnings']]
    assert warnings == ['capture: %s is absent, nothing to capture' % os.path.join(lab['dest'], 'pve/storage.cfg')]
