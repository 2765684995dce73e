"""Contracts every role, module and filter of the collection keeps.

- every role variable is prefixed with the role's name, declared in
  meta/argument_specs.yml with the same default as defaults/main.yml;
- roles/<role>/README.md is the one scripts/role_readme.py renders from the specs;
- ansible-doc renders every role, module and filter;
- every file under /etc has one owner role (docs/ownership.md), and config_repo's default
  actions cover no file another role writes.
"""
import fnmatch
import glob
import json
import os
import re
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


# ---------------------------------------------------------------- ownership of /etc

SIMPLE_VAR_RE = re.compile(r'\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}')
OWNERSHIP_ROW_RE = re.compile(r'^\| `(/etc/[^`]+)` \| ([a-z_]+) \|', re.M)


def _role_variables(role):
    variables = {}
    for part in ('defaults/main.yml', 'vars/main.yml'):
        if os.path.exists(os.path.join(ROOT, 'roles', role, part)):
            variables.update(load('roles/%s/%s' % (role, part)))
    return variables


def _resolve(value, variables):
    """A dest/path with the role's plain {{ variable }} references filled in; any other
    expression becomes a glob star (/etc/default/{{ app_release_service }} -> /etc/default/*)."""
    for _depth in range(5):
        filled = SIMPLE_VAR_RE.sub(
            lambda m: variables[m.group(1)] if isinstance(variables.get(m.group(1)), str) else m.group(0), value)
        if filled == value:
            break
        value = filled
    return re.sub(r'\{\{.*?\}\}', '*', value)


def _dest_values(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ('dest', 'path') and isinstance(value, str):
                yield value
            else:
                yield from _dest_values(value)
    elif isinstance(node, list):
        for item in node:
            yield from _dest_values(item)


def etc_files_written(role):
    """The paths under /etc a role's tasks and vars write (directories that only hold them left out)."""
    variables = _role_variables(role)
    files = sorted(glob.glob(os.path.join(ROOT, 'roles', role, 'tasks', '*.yml'))
                   + glob.glob(os.path.join(ROOT, 'roles', role, 'vars', '*.yml')))
    paths = set()
    for path in files:
        for value in _dest_values(load(os.path.relpath(path, ROOT))):
            resolved = _resolve(value, variables)
            if resolved.startswith('/etc/'):
                paths.add(resolved)
    return {p for p in paths if not any(other.startswith(p + '/') for other in paths)}


def _overlap(path, pattern):
    """path and pattern name the same file, or path lies in the directory pattern names."""
    return (fnmatch.fnmatchcase(path, pattern) or fnmatch.fnmatchcase(pattern, path)
            or fnmatch.fnmatchcase(path, pattern + '/*'))


def documented_owners():
    with open(os.path.join(ROOT, 'docs', 'ownership.md')) as handle:
        rows = OWNERSHIP_ROW_RE.findall(handle.read())
    return {re.sub(r'<[^>]+>', '*', path): owner for path, owner in rows}


@pytest.mark.parametrize('role', ROLES)
def test_every_etc_file_a_role_writes_is_documented_as_its_own(role):
    owners = documented_owners()
    for path in sorted(etc_files_written(role)):
        assert owners.get(path) == role, '%s writes %s; docs/ownership.md says %s' % (role, path, owners.get(path))


def test_no_two_roles_write_the_same_etc_file():
    written = [(role, path) for role in ROLES for path in etc_files_written(role)]
    clashes = ['%s (%s) and %s (%s)' % (p1, r1, p2, r2) for i, (r1, p1) in enumerate(written)
               for r2, p2 in written[i + 1:] if r1 != r2 and _overlap(p1, p2)]
    assert clashes == []


def test_config_repo_default_actions_leave_other_roles_files_alone():
    actions = load('roles/config_repo/defaults/main.yml')['config_repo_actions']
    link_dest = load('roles/config_repo/defaults/main.yml')['config_repo_link_dest']
    covered = [(a['service'], glob_path if glob_path.startswith('/') else '%s/%s' % (link_dest, glob_path))
               for a in actions for glob_path in a['paths']]
    clashes = ['config_repo action %s covers %s, which %s writes' % (service, path, role)
               for role in ROLES if role != 'config_repo' for path in sorted(etc_files_written(role))
               for service, pattern in covered if _overlap(path, pattern)]
    assert clashes == []


def test_the_ownership_check_sees_an_overlap():
    # what config_repo's defaults did before: its memcached and fail2ban actions covered memcached's and base's files
    assert _overlap('/etc/memcached.conf', '/etc/memcached.conf')
    assert _overlap('/etc/fail2ban/jail.local', '/etc/fail2ban')
    assert _overlap('/etc/ssh/sshd_config.d/00-commons-infra.conf', '/etc/ssh/sshd_config.d')
    assert not _overlap('/etc/ssh/sshd_config.d/00-commons-infra.conf', '/etc/ssh/sshd_config')
    assert not _overlap('/etc/fail2ban/jail.local', '/etc/fail2ban/jail.d')
    assert '/etc/default/*' in etc_files_written('app_release')
