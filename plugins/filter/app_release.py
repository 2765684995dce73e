# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""app_release filters: input checks and ref resolution (documentation in the .yml of each filter).

Pure functions of their input, so what the role refuses, and which commit a
``git ls-remote`` answer names, are unit-tested without a host.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import posixpath
import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_native
from ansible.module_utils.six import integer_types, string_types
# The names, refs and modes the hosts' modules accept, from the modules' own code: one rule.
from ansible_collections.commons.infra.plugins.module_utils.deploy_history import (
    FULL_ID_LENGTHS,
    HEX_RE,
    name_problem,
    parse_ls_remote,
    ref_problem,
)
from ansible_collections.commons.infra.plugins.module_utils.fs_rules import mode_problem

ENV_NAME_RE = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*$')
USER_NAME_RE = re.compile(r'^[a-z_][a-z0-9_-]{0,31}$')
RUNTIMES = ('systemd', 'compose', 'none')
LINK_KEYS = ('path', 'target', 'create', 'owner', 'group', 'mode')
KNOWN_HOSTS_RE = re.compile(r'^\S+ (ssh-|ecdsa-|sk-)\S+ [A-Za-z0-9+/=]+( .*)?$')


def _r(value):
    return to_native(repr(value))


def _is_str(value):
    return isinstance(value, string_types)


def _is_int(value):
    return isinstance(value, integer_types) and not isinstance(value, bool)


def _relative_problem(path):
    """Why a path meant to stay inside a release is unsafe, or None."""
    if not _is_str(path) or not path.strip():
        return 'must be a non-empty path relative to the release'
    if '\x00' in path or '\n' in path:
        return 'contains a NUL byte or a newline'
    if path.startswith('/'):
        return 'must be relative to the release, not absolute'
    if '..' in path.split('/'):
        return 'escapes the release with ".."'
    if posixpath.normpath(path) == '.':
        return 'names the release itself'
    return None


def _absolute_problem(path):
    if not _is_str(path) or not path.startswith('/'):
        return 'must be an absolute path'
    if '\x00' in path or '\n' in path:
        return 'contains a NUL byte or a newline'
    if '..' in path.split('/'):
        return 'must not contain ".."'
    return None


def _link_problems(links):
    if not isinstance(links, (list, tuple)):
        return ['app_release_shared_links must be a list of {path, target} items, got %s' % _r(links)]
    problems, seen = [], []
    for index, item in enumerate(links):
        where = 'app_release_shared_links[%d]' % index
        if not isinstance(item, dict):
            problems.append('%s must be a dict with path and target, got %s' % (where, _r(item)))
            continue
        unknown = sorted(set(item) - set(LINK_KEYS))
        if unknown:
            problems.append('%s has unknown keys %s (known: %s)' % (where, ', '.join(unknown), ', '.join(LINK_KEYS)))
        path, target = item.get('path'), item.get('target')
        problem = _relative_problem(path)
        if problem:
            problems.append('%s.path %s %s' % (where, _r(path), problem))
        else:
            path = posixpath.normpath(path)
            for other in seen:
                if path == other or path.startswith(other + '/') or other.startswith(path + '/'):
                    problems.append('%s.path %s overlaps the shared link %s' % (where, _r(item['path']), _r(other)))
            seen.append(path)
        problem = _absolute_problem(target)
        if problem:
            problems.append('%s.target %s %s' % (where, _r(target), problem))
        if 'create' in item and not isinstance(item['create'], bool):
            problems.append('%s.create must be true or false, got %s' % (where, _r(item['create'])))
        mode = item.get('mode')
        if mode is not None and mode_problem(mode):
            problems.append('%s.mode %s' % (where, mode_problem(mode)))
    return problems


def app_release_errors(settings):
    """Every problem of the role's settings, each naming its variable; [] when all is well."""
    if not isinstance(settings, dict):
        raise AnsibleFilterError('app_release_errors expects a dict of the role variables')
    s = settings
    problems = []

    def has(name):
        return name in s

    if has('app_release_service'):
        problem = name_problem(s['app_release_service'])
        if problem:
            problems.append('app_release_service %s %s (it names <root>/deploys/<service> and the unit)'
                            % (_r(s['app_release_service']), problem))
    for name in ('app_release_root', 'app_release_active_link'):
        if has(name):
            problem = _absolute_problem(s[name])
            if problem:
                problems.append('%s %s %s' % (name, _r(s[name]), problem))
    if has('app_release_root') and has('app_release_active_link') and _is_str(s['app_release_root']) \
            and _is_str(s['app_release_active_link']):
        deploys = posixpath.join(posixpath.normpath(s['app_release_root']), 'deploys')
        link = posixpath.normpath(s['app_release_active_link'])
        if link == deploys or link.startswith(deploys + '/'):
            problems.append('app_release_active_link %s must not be inside %s' % (_r(s['app_release_active_link']), deploys))

    if has('app_release_repo') or has('app_release_local_repo'):
        repo, local = s.get('app_release_repo'), s.get('app_release_local_repo')
        if bool(repo) == bool(local):
            problems.append('give exactly one source: app_release_repo (a git URL the hosts reach) or '
                            'app_release_local_repo (a git repository on the controller, shipped as a bundle)')
        if repo and (not _is_str(repo) or repo.startswith('-') or any(c.isspace() for c in repo)):
            problems.append('app_release_repo %s is not a git URL' % _r(repo))
        if local:
            problem = _absolute_problem(local)
            if problem:
                problems.append('app_release_local_repo %s %s on the controller' % (_r(local), problem))
        if local and (s.get('app_release_deploy_key') or s.get('app_release_key_file')):
            problems.append('app_release_deploy_key and app_release_key_file are for app_release_repo; '
                            'a bundle from app_release_local_repo needs no key')
    if has('app_release_version'):
        problem = ref_problem(s['app_release_version'])
        if problem:
            problems.append('app_release_version %s %s' % (_r(s['app_release_version']), problem))
    if s.get('app_release_deploy_key') and s.get('app_release_key_file'):
        problems.append('app_release_deploy_key and app_release_key_file are exclusive')
    for name in ('app_release_key_file', 'app_release_ssh_dir'):
        if s.get(name) is not None:
            problem = _absolute_problem(s[name])
            if problem:
                problems.append('%s %s %s' % (name, _r(s[name]), problem))
    known = s.get('app_release_known_hosts') or []
    if not isinstance(known, (list, tuple)):
        problems.append('app_release_known_hosts must be a list of known_hosts lines, got %s' % _r(known))
    else:
        for line in known:
            if not (_is_str(line) and KNOWN_HOSTS_RE.match(line.strip())):
                problems.append('app_release_known_hosts: %s is not a known_hosts line (host keytype key)' % _r(line))
        if known and s.get('app_release_accept_newhostkey'):
            problems.append('app_release_known_hosts and app_release_accept_newhostkey are exclusive')

    if has('app_release_keep'):
        keep = s['app_release_keep']
        if keep is not None and not (_is_int(keep) and keep >= 2):
            problems.append('app_release_keep must be an integer of at least 2 (the active and the previous release '
                            'are always kept) or null to keep every release, got %s' % _r(keep))
    if has('app_release_shared_links'):
        problems.extend(_link_problems(s['app_release_shared_links']))
    if s.get('app_release_requirements_file') is not None:
        problem = _relative_problem(s['app_release_requirements_file'])
        if problem:
            problems.append('app_release_requirements_file %s %s' % (_r(s['app_release_requirements_file']), problem))
    if s.get('app_release_release_file') is not None:
        name = s['app_release_release_file']
        if not _is_str(name) or not name or '/' in name or name in ('.', '..') or name == '.venv':
            problems.append('app_release_release_file %s must be a plain file name (or null)' % _r(name))

    if s.get('app_release_create_user') and s.get('app_release_user') is not None \
            and not (_is_str(s['app_release_user']) and USER_NAME_RE.match(s['app_release_user'])):
        problems.append('app_release_user %s cannot be created as a system user: lower-case letters, digits, _ and -, '
                        'starting with a letter or _, at most 32 characters (or set app_release_user, or '
                        'app_release_create_user: false for an existing user)' % _r(s['app_release_user']))

    runtime = s.get('app_release_runtime')
    if has('app_release_runtime') and runtime not in RUNTIMES:
        problems.append('app_release_runtime must be one of %s, got %s' % (', '.join(RUNTIMES), _r(runtime)))
    if runtime == 'systemd' and has('app_release_command'):
        command = s['app_release_command']
        if not _is_str(command) or not command.strip():
            problems.append('app_release_command (the ExecStart of <service>.service) is required with '
                            'app_release_runtime=systemd')
        elif '\n' in command:
            problems.append('app_release_command must be one line')
    if runtime == 'compose':
        command = s.get('app_release_compose_command')
        if command is not None and (not isinstance(command, (list, tuple)) or not command
                                    or not all(_is_str(c) and c for c in command)):
            problems.append('app_release_compose_command must be a non-empty list of words, e.g. [docker-compose] '
                            'or [docker, compose], got %s' % _r(command))
        profiles = s.get('app_release_compose_profiles')
        if has('app_release_compose_profiles') and (not isinstance(profiles, (list, tuple))
                                                    or not all(_is_str(p) and p for p in profiles)):
            problems.append('app_release_compose_profiles must be a list of profile names, got %s' % _r(profiles))
    if has('app_release_environment'):
        environment = s['app_release_environment']
        if not (_is_str(environment) and re.match(r'^[A-Za-z0-9_-]+$', environment)):
            problems.append('app_release_environment %s must be a plain name like production '
                            '(it names compose.<environment>.yaml)' % _r(environment))
    if has('app_release_env'):
        env = s['app_release_env']
        if not isinstance(env, dict):
            problems.append('app_release_env must be a dict of variable names to values, got %s' % _r(env))
        else:
            for key, value in env.items():
                if not (_is_str(key) and ENV_NAME_RE.match(key)):
                    problems.append('app_release_env: %s is not a valid variable name' % _r(key))
                if isinstance(value, (dict, list, tuple)) or value is None or (_is_str(value) and '\n' in value):
                    problems.append('app_release_env: %s must be a one-line string or a number' % _r(key))

    if s.get('app_release_health_url') is not None:
        url = s['app_release_health_url']
        if not (_is_str(url) and re.match(r'^https?://[^\s/]+(/\S*)?$', url)):
            problems.append('app_release_health_url %s must be an http:// or https:// URL (or null)' % _r(url))
    if runtime in ('systemd', 'compose') and s.get('app_release_health_check', True) \
            and has('app_release_health_url') and not s.get('app_release_health_url'):
        problems.append('app_release_health_url is required with app_release_runtime=%s: without it a broken release '
                        'is not rolled back; set app_release_health_check: false to deploy without a health gate'
                        % runtime)
    if has('app_release_health_check') and not isinstance(s['app_release_health_check'], bool):
        problems.append('app_release_health_check must be true or false, got %s' % _r(s['app_release_health_check']))
    if has('app_release_health_timeout'):
        timeout = s['app_release_health_timeout']
        if not (_is_int(timeout) and timeout >= 1):
            problems.append('app_release_health_timeout must be a number of seconds, at least 1, got %s' % _r(timeout))
    if s.get('app_release_rollback_to') is not None:
        problem = name_problem(s['app_release_rollback_to'])
        if problem:
            problems.append('app_release_rollback_to %s %s: name a release (a commit id or a unique prefix of one)'
                            % (_r(s['app_release_rollback_to']), problem))
    return problems


def app_release_ref_commit(ls_remote, version):
    """The commit ``version`` names in ``git ls-remote`` output, with git's precedence; '' when none.

    A full commit id is returned as it is (servers advertise refs, not commits);
    the hosts' deploy_history verifies it when it fetches.
    """
    if not _is_str(version) or not version:
        raise AnsibleFilterError('app_release_ref_commit needs the version, got %s' % _r(version))
    # The hosts' deploy_history resolves refs the same way, from the same code.
    lines = '\n'.join(line.strip() for line in to_native(ls_remote or '').splitlines())
    commit = parse_ls_remote(lines, version)
    if commit:
        return commit.lower()
    if HEX_RE.match(version) and len(version) in FULL_ID_LENGTHS:
        return version.lower()
    return ''


class FilterModule(object):
    def filters(self):
        return {
            'app_release_errors': app_release_errors,
            'app_release_ref_commit': app_release_ref_commit,
        }
