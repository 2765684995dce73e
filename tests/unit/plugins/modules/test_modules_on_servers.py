# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""etc_symlinks and deploy_history as processes on a server (issue 8): every error is a clean
failure naming the path, and the code runs on the oldest target Python the collection states."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ast
import glob
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

import pytest
import yaml

from ansible_collections.commons.infra.plugins.modules import deploy_history, etc_symlinks

PYPATH = next(p for p in sys.path if os.path.isdir(os.path.join(p or '.', 'ansible_collections', 'commons', 'infra')))
CHECKOUT = os.path.realpath(os.path.join(PYPATH, 'ansible_collections', 'commons', 'infra'))
NOBODY = 65534


# The interpreter and the checkout may be unreadable for nobody (/root/.pyenv): the module is
# imported and its arguments read as root, then the process drops to the user and runs it.
AS_USER = '''
import os, runpy, sys
from ansible.module_utils import basic
import ansible_collections.commons.infra.plugins.modules.{name}
basic._load_params()
os.setgroups([])
os.setgid({uid})
os.setuid({uid})
runpy.run_module('ansible_collections.commons.infra.plugins.modules.{name}', run_name='__main__')
'''


def run_module(name, tmp_path, args, as_user=None):
    args_file = str(tmp_path / ('args-%s.json' % name))
    with open(args_file, 'w') as f:
        json.dump({'ANSIBLE_MODULE_ARGS': args}, f)
    module = 'ansible_collections.commons.infra.plugins.modules.' + name
    command = [sys.executable, '-m', module, args_file]
    if as_user is not None:
        command = [sys.executable, '-c', AS_USER.format(name=name, uid=as_user), args_file]
    proc = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=PYPATH),
                          cwd='/', check=False, universal_newlines=True, timeout=120)
    assert 'Traceback' not in proc.stderr, proc.stderr
    try:
        return json.loads(proc.stdout)
    except ValueError:
        raise AssertionError('no JSON (rc %d): %s %s' % (proc.returncode, proc.stdout, proc.stderr))


@pytest.fixture
def base():
    """A directory nobody can reach (pytest's own temp root is 0700)."""
    if os.geteuid() != 0:
        pytest.skip('needs root to drop to nobody')
    path = tempfile.mkdtemp(prefix='commons-infra-nobody-')
    os.chmod(path, 0o755)
    yield pathlib.Path(path)
    shutil.rmtree(path)


def test_etc_symlinks_without_root_under_a_0700_directory_fails_naming_the_path(tmp_path, base):
    unprivileged = NOBODY
    tmp_path = base
    layer, dest = tmp_path / 'layer', tmp_path / 'etc'
    (layer / 'private').mkdir(parents=True)
    (layer / 'private' / 'x.conf').write_text('x\n')
    for p in (layer, layer / 'private'):
        os.chmod(str(p), 0o755)
    os.chmod(str(layer / 'private' / 'x.conf'), 0o644)
    (dest / 'private').mkdir(parents=True)
    os.chmod(str(dest), 0o755)
    os.chmod(str(dest / 'private'), 0o700)
    result = run_module('etc_symlinks', tmp_path, {'sources': [str(layer)], 'dest': str(dest),
                                                   'backup_dir': str(tmp_path / 'bk')}, as_user=unprivileged)
    assert result['failed'] and str(dest / 'private') in result['msg'], result


def test_deploy_history_without_root_under_a_0700_directory_fails_naming_the_path(tmp_path, base):
    unprivileged = NOBODY
    tmp_path = base
    locked = tmp_path / 'locked'
    (locked / 'deploys' / 'svc').mkdir(parents=True)
    os.chmod(str(locked), 0o700)
    src = tmp_path / 'build'
    src.mkdir()
    (src / 'f').write_text('x')
    os.chmod(str(src), 0o755)
    os.chmod(str(src / 'f'), 0o644)
    result = run_module('deploy_history', tmp_path, {'root': str(locked), 'service': 'svc', 'state': 'active',
                                                     'src_dir': str(src)}, as_user=unprivileged)
    assert result['failed'] and str(locked) in result['msg'], result


def test_history_line_of_the_wrong_shape_is_a_clean_failure(tmp_path):
    sdir = tmp_path / 'opt' / 'deploys' / 'svc'
    sdir.mkdir(parents=True)
    (sdir / 'history.jsonl').write_text('{"time": "t", "action": "present", "release": ["a", "b"]}\n')
    result = run_module('deploy_history', tmp_path, {'root': str(tmp_path / 'opt'), 'service': 'svc', 'state': 'query'})
    assert result['failed'] and str(sdir / 'history.jsonl') in result['msg'], result


BOOM = '''
import runpy, sys
from ansible_collections.commons.infra.plugins.module_utils import {name} as utils
def boom(*args, **kwargs):
    raise KeyError('a bug')
utils.{function} = boom
runpy.run_module('ansible_collections.commons.infra.plugins.modules.{name}', run_name='__main__')
'''


@pytest.mark.parametrize('name,function,args', [
    ('etc_symlinks', 'build_plan', {'sources': ['/usr/share/doc'], 'dest': '/tmp'}),
    ('deploy_history', 'scan', {'root': '/tmp/commons-infra-nowhere', 'service': 'svc', 'state': 'query'}),
])
def test_unexpected_errors_keep_their_traceback_in_exception(tmp_path, name, function, args):
    """The last-resort handler: a bug ends in fail_json with the traceback in `exception`."""
    args_file = str(tmp_path / 'args.json')
    with open(args_file, 'w') as f:
        json.dump({'ANSIBLE_MODULE_ARGS': dict(args, _ansible_tracebacks_for=['error'])}, f)
    proc = subprocess.run([sys.executable, '-c', BOOM.format(name=name, function=function), args_file],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=PYPATH),
                          check=False, universal_newlines=True, timeout=60)
    assert 'Traceback' not in proc.stderr, proc.stderr
    result = json.loads(proc.stdout)
    assert result['failed'] and 'a bug' in result['msg']
    assert 'KeyError' in result['exception'] and 'boom' in result['exception']


# -------------------------------------------------------------------- 8: the target Python floor

def _floor():
    with open(os.path.join(CHECKOUT, 'meta', 'runtime.yml')) as f:
        text = f.read()
    found = re.search(r'^# target python: >= (\d+)\.(\d+)$', text, re.MULTILINE)
    assert found, 'meta/runtime.yml states no target Python floor'
    return int(found.group(1)), int(found.group(2))


def _sources():
    return [os.path.join(CHECKOUT, 'plugins', 'modules', n + '.py') for n in ('etc_symlinks', 'deploy_history')] + \
        sorted(glob.glob(os.path.join(CHECKOUT, 'plugins', 'module_utils', '*.py')))


def test_the_modules_state_the_python_floor_of_runtime_yml():
    floor = '%d.%d' % _floor()
    for module in (deploy_history, etc_symlinks):
        doc = yaml.safe_load(module.DOCUMENTATION)
        assert 'python >= %s' % floor in doc.get('requirements', []), module.__name__


def test_module_code_parses_as_the_floor_python():
    for path in _sources():
        with open(path) as f:
            ast.parse(f.read(), path, feature_version=_floor())


def _floor_python():
    major, minor = _floor()
    name = 'python%d.%d' % (major, minor)
    candidates = sorted(glob.glob(os.path.expanduser('~/.pyenv/versions/%d.%d.*/bin/%s' % (major, minor, name))))
    # pyenv's shims answer for every version but run only the selected ones.
    candidates += [os.path.join(d, name) for d in os.environ.get('PATH', '').split(os.pathsep) if '/shims' not in d]
    for path in candidates:
        if os.access(path, os.X_OK):
            return path
    return None


def test_module_utils_run_on_the_floor_python(tmp_path):
    """A src_dir and a src_archive deploy and an etc_symlinks run with the oldest supported Python."""
    python = _floor_python()
    if python is None:
        pytest.skip('no python%d.%d on this machine' % _floor())
    src = tmp_path / 'build'
    (src / 'sub').mkdir(parents=True)
    (src / 'sub' / 'page.html').write_text('x')
    script = '''
import json, os, sys, tarfile
from ansible_collections.commons.infra.plugins.module_utils import deploy_history as dh, etc_symlinks as es
base, src = sys.argv[1], sys.argv[2]
r = dh.run({"root": base + "/opt", "service": "svc", "state": "active", "src_dir": src})
assert open(os.path.join(r["path"], "sub", "page.html")).read() == "x"
with tarfile.open(base + "/a.tar", "w") as t:
    t.add(src, arcname=".")
r = dh.run({"root": base + "/opt", "service": "svc", "state": "active", "src_archive": base + "/a.tar"})
os.mkdir(base + "/etc")
opts = es.Options(sources=[src], dest=base + "/etc", backup_dir=base + "/bk", copy=["sub/*.html"])
assert es.run(opts)["copied"] == [base + "/etc/sub/page.html"]
print("ok")
'''
    proc = subprocess.run([python, '-c', script, str(tmp_path), str(src)], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONPATH=PYPATH), check=False,
                          universal_newlines=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip().endswith('ok'), proc.stdout
