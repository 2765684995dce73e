# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Config repository filters: which services a config change touches (documentation in the .yml of each filter).

Pure functions of their input, so the role's decisions (what to validate, reload,
restart, whether systemd needs a daemon-reload) are unit-tested without a host.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fnmatch
import posixpath
import shlex

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_native
from ansible.module_utils.six import string_types

ACTIONS = ('reload', 'restart')
ACTION_KEYS = ('service', 'paths', 'validate', 'action')
DEFAULT_DAEMON_RELOAD_PATHS = ('systemd/system',)


# ---------------------------------------------------------------- helpers

def _within(path, root):
    if root == '/':
        return path.startswith('/')
    return path == root or path.startswith(root + '/')


def _string_list(value, name):
    """A list of strings (a lone string becomes a one-item list); raises AnsibleFilterError."""
    if value is None:
        return []
    if isinstance(value, string_types):
        return [value]
    if not isinstance(value, (list, tuple)):
        raise AnsibleFilterError('%s must be a list of strings, got %s' % (name, to_native(repr(value))))
    for item in value:
        if not isinstance(item, string_types):
            raise AnsibleFilterError('%s must be a list of strings, got the item %s' % (name, to_native(repr(item))))
    return list(value)


def _normalize_layer(layer):
    """'./confs/common/' -> 'confs/common'; '.' or '' stays '.' (the whole checkout)."""
    return posixpath.normpath(layer.strip()) if layer.strip() else '.'


def _layer_problem(layer):
    if not isinstance(layer, string_types) or not layer.strip():
        return 'must be a non-empty path relative to the checkout'
    if layer.startswith('/'):
        return 'must be relative to the checkout, not absolute'
    if '..' in layer.split('/'):
        return 'escapes the checkout with ".."'
    if '.git' in _normalize_layer(layer).split('/'):
        return 'points into the repository metadata (.git)'
    return None


def _argv(command, where):
    """A validate command (string or list) -> argv list; [] for none."""
    if command is None or command == '' or command == []:
        return []
    if isinstance(command, string_types):
        try:
            argv = shlex.split(command)
        except ValueError as e:
            raise AnsibleFilterError('%s: validate %r cannot be split into words: %s' % (where, command, e))
        return argv
    if isinstance(command, (list, tuple)) and all(isinstance(w, string_types) for w in command):
        return list(command)
    raise AnsibleFilterError('%s: validate must be a command string or a list of words, got %s'
                             % (where, to_native(repr(command))))


def _normalize_actions(actions, name='actions'):
    """Checked copies of the action dicts: service, paths (list), validate (argv), action."""
    if actions is None:
        return []
    if not isinstance(actions, (list, tuple)):
        raise AnsibleFilterError('%s must be a list of {paths, service, validate, action}, got %s'
                                 % (name, to_native(repr(actions))))
    normalized = []
    for index, item in enumerate(actions):
        where = '%s[%d]' % (name, index)
        if not isinstance(item, dict):
            raise AnsibleFilterError('%s must be a dict with paths and service, got %s' % (where, to_native(repr(item))))
        unknown = sorted(set(item) - set(ACTION_KEYS))
        if unknown:
            raise AnsibleFilterError('%s: unknown keys %s (allowed: %s)' % (where, ', '.join(unknown), ', '.join(ACTION_KEYS)))
        service = item.get('service')
        if not isinstance(service, string_types) or not service.strip() or any(c.isspace() for c in service):
            raise AnsibleFilterError('%s: service must be a systemd unit name, got %s' % (where, to_native(repr(service))))
        where = '%s (service %s)' % (where, service)
        paths = _string_list(item.get('paths'), where + ': paths')
        if not paths or not all(p.strip() for p in paths):
            raise AnsibleFilterError('%s: paths must list at least one non-empty glob' % where)
        action = item.get('action') or 'reload'
        if action not in ACTIONS:
            raise AnsibleFilterError('%s: action must be one of %s, got %s'
                                     % (where, ', '.join(ACTIONS), to_native(repr(action))))
        normalized.append({'service': service, 'paths': paths, 'validate': _argv(item.get('validate'), where),
                           'action': action})
    return normalized


def _absolute(path, link_dest):
    path = to_native(path)
    if not path.startswith('/'):
        path = posixpath.join(link_dest, path)
    return posixpath.normpath(path)


def _candidates(path):
    """'/etc/a/b' -> ['/etc/a/b', '/etc/a', '/etc']: a pattern naming a directory covers what is below it."""
    found = []
    while path not in ('', '/', '.'):
        found.append(path)
        path = posixpath.dirname(path)
    return found


def _matches(pattern, path, rel):
    """Whether a glob (absolute, or relative to the link dest) covers the path."""
    pattern = pattern.strip()
    if pattern.startswith('/'):
        pattern = posixpath.normpath(pattern)
        return any(fnmatch.fnmatchcase(c, pattern) for c in _candidates(path))
    if rel is None:
        return False
    pattern = posixpath.normpath(pattern)
    return any(fnmatch.fnmatchcase(c, pattern) for c in _candidates(rel))


# ---------------------------------------------------------------- filters

def config_repo_link_paths(repo_paths, layers, link_dest='/etc', repo_files=None):
    """Repository-relative paths (``git diff --name-only``) -> the destination paths they show up as.

    A path outside every layer is dropped. With ``repo_files`` (every file of the
    layers at the new commit), a path hidden by the same path in a later layer is
    dropped too, since the link points at the later layer's file.
    """
    layers = [_normalize_layer(layer) for layer in _string_list(layers, 'layers')]
    for layer in layers:
        problem = _layer_problem(layer)
        if problem:
            raise AnsibleFilterError('layer %r %s' % (layer, problem))
    if not isinstance(link_dest, string_types) or not link_dest.startswith('/'):
        raise AnsibleFilterError('link_dest must be an absolute path, got %s' % to_native(repr(link_dest)))
    link_dest = posixpath.normpath(link_dest)
    in_layer = {}
    for path in _string_list(repo_files, 'repo_files'):
        for index, layer in enumerate(layers):
            rel = _relative_to_layer(path, layer)
            if rel is not None:
                in_layer.setdefault(rel, set()).add(index)
    dest_paths = set()
    for path in _string_list(repo_paths, 'repo_paths'):
        for index, layer in enumerate(layers):
            rel = _relative_to_layer(path, layer)
            if rel is None:
                continue
            if any(later > index for later in in_layer.get(rel, ())):
                continue
            dest_paths.add(posixpath.join(link_dest, rel))
    return sorted(dest_paths)


def _relative_to_layer(path, layer):
    path = posixpath.normpath(to_native(path).strip('/'))
    if layer == '.':
        return path if path != '.' else None
    if path.startswith(layer + '/'):
        return path[len(layer) + 1:]
    return None


def config_repo_plan(changed_paths, actions, link_dest='/etc', daemon_reload_paths=DEFAULT_DAEMON_RELOAD_PATHS):
    """What a set of changed destination paths asks for: daemon-reload, and which services to validate and reload or restart."""
    if not isinstance(link_dest, string_types) or not link_dest.startswith('/'):
        raise AnsibleFilterError('link_dest must be an absolute path, got %s' % to_native(repr(link_dest)))
    link_dest = posixpath.normpath(link_dest)
    actions = _normalize_actions(actions)
    reload_patterns = _string_list(daemon_reload_paths, 'daemon_reload_paths')
    paths = sorted(set(_absolute(p, link_dest) for p in _string_list(changed_paths, 'changed_paths')))

    services = []
    by_service = {}
    unit_paths = []
    unmatched = []
    for path in paths:
        rel = posixpath.relpath(path, link_dest) if _within(path, link_dest) and path != link_dest else None
        matched = False
        if any(_matches(p, path, rel) for p in reload_patterns):
            unit_paths.append(path)
            matched = True
        for action in actions:
            if not any(_matches(p, path, rel) for p in action['paths']):
                continue
            matched = True
            entry = by_service.get(action['service'])
            if entry is None:
                entry = {'service': action['service'], 'action': action['action'], 'validate': [], 'paths': []}
                by_service[action['service']] = entry
                services.append(entry)
            if action['action'] == 'restart':
                entry['action'] = 'restart'
            if action['validate'] and action['validate'] not in entry['validate']:
                entry['validate'].append(action['validate'])
            if path not in entry['paths']:
                entry['paths'].append(path)
        if not matched:
            unmatched.append(path)

    # Keep the order of the actions list: it is the order services are reloaded in.
    order = []
    for action in actions:
        if action['service'] in by_service and action['service'] not in order:
            order.append(action['service'])
    services = [by_service[name] for name in order]
    validations = [{'service': s['service'], 'command': argv, 'paths': s['paths']}
                   for s in services for argv in s['validate']]
    return {
        'changed_paths': paths,
        'daemon_reload': bool(unit_paths),
        'daemon_reload_paths': unit_paths,
        'services': services,
        'validations': validations,
        'unmatched': unmatched,
    }


def config_repo_errors(settings):
    """Every problem of the role's settings, each naming its variable; [] when all is well."""
    if not isinstance(settings, dict):
        raise AnsibleFilterError('config_repo_errors expects a dict of the role variables')
    errors = []
    s = settings

    def text(name):
        value = s.get(name)
        return value if isinstance(value, string_types) else None

    for name in ('config_repo_repo', 'config_repo_version'):
        if name in s and not (text(name) or '').strip():
            errors.append('%s must be set (got %s)' % (name, to_native(repr(s.get(name)))))

    dest = text('config_repo_dest')
    link_dest = text('config_repo_link_dest')
    if 'config_repo_dest' in s:
        if not dest or not dest.startswith('/'):
            errors.append('config_repo_dest must be an absolute path, got %s' % to_native(repr(s.get('config_repo_dest'))))
            dest = None
        elif '..' in dest.split('/') or posixpath.normpath(dest) == '/':
            errors.append('config_repo_dest must be an absolute path below /, without "..", got %r' % dest)
            dest = None
        else:
            dest = posixpath.normpath(dest)
    if 'config_repo_link_dest' in s:
        if not link_dest or not link_dest.startswith('/') or '..' in link_dest.split('/'):
            errors.append('config_repo_link_dest must be an absolute path without "..", got %s'
                          % to_native(repr(s.get('config_repo_link_dest'))))
            link_dest = None
        else:
            link_dest = posixpath.normpath(link_dest)
    if dest and link_dest:
        if _within(dest, link_dest):
            errors.append('config_repo_dest %s is inside config_repo_link_dest %s' % (dest, link_dest))
        elif _within(link_dest, dest):
            errors.append('config_repo_link_dest %s is inside config_repo_dest %s' % (link_dest, dest))

    if 'config_repo_layers' in s:
        layers = s.get('config_repo_layers')
        if isinstance(layers, string_types) or not isinstance(layers, (list, tuple)) or not layers:
            errors.append('config_repo_layers must be a non-empty list of paths relative to the checkout, got %s'
                          % to_native(repr(layers)))
        else:
            seen = []
            for layer in layers:
                problem = _layer_problem(layer)
                if problem:
                    errors.append('config_repo_layers: %s %s' % (to_native(repr(layer)), problem))
                    continue
                norm = _normalize_layer(layer)
                for other in seen:
                    if norm == other or other == '.' or norm == '.' or _within(norm, other) or _within(other, norm):
                        errors.append('config_repo_layers: %r and %r overlap (one is inside the other)' % (other, norm))
                        break
                seen.append(norm)

    for name in ('config_repo_key_file', 'config_repo_ssh_dir', 'config_repo_backup_dir'):
        value = s.get(name)
        if value not in (None, '') and (not isinstance(value, string_types) or not value.startswith('/')):
            errors.append('%s must be an absolute path, got %s' % (name, to_native(repr(value))))
    backup_dir = text('config_repo_backup_dir')
    if backup_dir and backup_dir.startswith('/') and link_dest and _within(posixpath.normpath(backup_dir), link_dest):
        errors.append('config_repo_backup_dir %s is inside config_repo_link_dest %s' % (backup_dir, link_dest))
    if s.get('config_repo_deploy_key') and s.get('config_repo_key_file'):
        errors.append('set config_repo_deploy_key (the key itself) or config_repo_key_file (a key already on the host), not both')

    known_hosts = s.get('config_repo_known_hosts')
    if known_hosts:
        if isinstance(known_hosts, string_types) or not isinstance(known_hosts, (list, tuple)):
            errors.append('config_repo_known_hosts must be a list of known_hosts lines')
        else:
            for line in known_hosts:
                if not isinstance(line, string_types) or len(line.split()) < 3:
                    errors.append('config_repo_known_hosts: %s is not a known_hosts line ("host keytype key")'
                                  % to_native(repr(line)))
        if s.get('config_repo_accept_newhostkey'):
            errors.append('config_repo_known_hosts pins the host keys; do not also set config_repo_accept_newhostkey')

    for name in ('config_repo_actions',):
        if name in s:
            try:
                _normalize_actions(s.get(name), name)
            except AnsibleFilterError as e:
                errors.append(to_native(e.message if hasattr(e, 'message') else e))
    if 'config_repo_daemon_reload_paths' in s:
        try:
            _string_list(s.get('config_repo_daemon_reload_paths'), 'config_repo_daemon_reload_paths')
        except AnsibleFilterError as e:
            errors.append(to_native(e.message if hasattr(e, 'message') else e))
    return errors


class FilterModule(object):
    def filters(self):
        return {
            'config_repo_errors': config_repo_errors,
            'config_repo_link_paths': config_repo_link_paths,
            'config_repo_plan': config_repo_plan,
        }
