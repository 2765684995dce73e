"""Contracts every role, module and filter of the collection keeps.

- every role variable is prefixed with the role's name, declared in
  meta/argument_specs.yml with the same default as defaults/main.yml;
- roles/<role>/README.md is the one scripts/role_readme.py renders from the specs;
- ansible-doc renders every role, module and filter.
"""
import json
import os
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLES = sorted(r for r in os.listdir(os.path.join(ROOT, 'roles')) if not r.startswith('.'))
MODULES = sorted(f[:-3] for f in os.listdir(os.path.join(ROOT, 'plugins', 'modules'))
                 if f.endswith('.py') and not f.startswith('_'))
FILTERS = sorted(f[:-4] for f in os.listdir(os.path.join(ROOT, 'plugins', 'filter')) if f.endswith('.yml'))


def load(path):
    with open(os.path.join(ROOT, path)) as handle:
        return yaml.safe_load(handle) or {}


def ansible_doc(kind, name):
    pypath = os.path.join(ROOT, '.cache', 'pypath')
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=pypath, ANSIBLE_NOCOLOR='1')
    bindir = os.path.dirname(sys.executable)
    proc = subprocess.run([os.path.join(bindir, 'ansible-doc'), '-t', kind, '--json', 'commons.infra.' + name],
                          capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize('role', ROLES)
def test_defaults_match_argument_specs(role):
    defaults = load('roles/%s/defaults/main.yml' % role)
    options = load('roles/%s/meta/argument_specs.yml' % role)['argument_specs']['main']['options']
    assert sorted(defaults) == sorted(options), 'defaults/main.yml and argument_specs disagree'
    for name, option in options.items():
        assert name.startswith(role + '_'), '%s is not prefixed with %s_' % (name, role)
        assert option.get('description'), '%s has no description' % name
        assert option.get('type'), '%s has no type' % name
        if 'default' in option:
            assert option['default'] == defaults[name], '%s: spec default %r, defaults/main.yml %r' % (
                name, option['default'], defaults[name])
        else:
            assert defaults[name] is None, '%s has a default in defaults/main.yml but not in the spec' % name


@pytest.mark.parametrize('role', ROLES)
def test_role_readme_is_generated_from_specs(role):
    proc = subprocess.run([sys.executable, os.path.join(ROOT, 'scripts', 'role_readme.py'), '--check', role],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize('role', ROLES)
def test_ansible_doc_renders_role(role):
    doc = ansible_doc('role', role)
    assert doc['commons.infra.' + role]['entry_points']['main']['options']


@pytest.mark.parametrize('module', MODULES)
def test_ansible_doc_renders_module(module):
    doc = ansible_doc('module', module)['commons.infra.' + module]
    assert doc['doc']['short_description']
    assert doc['examples'].strip()
    assert doc['return']


@pytest.mark.parametrize('name', FILTERS)
def test_ansible_doc_renders_filter(name):
    doc = ansible_doc('filter', name)['commons.infra.' + name]
    assert doc['doc']['short_description']
    assert doc['examples'].strip()
