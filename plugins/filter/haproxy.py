# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""haproxy frontends, backends and listen sections from inventory data (documentation in haproxy_plan.yml).

Every problem is collected with the variable it comes from (haproxy_backends[1] (solr).group), so
the role refuses before any change and names everything wrong at once.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.six import string_types

NAME_RE = re.compile(r'^[a-z0-9][a-z0-9_-]*$')
# RFC 1123 host names (labels of letters, digits and hyphens), as haproxy resolves them at start-up.
HOSTNAME_RE = re.compile(r'^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$')
# haproxy time values: a number with an optional unit (us, ms, s, m, h, d).
TIME_RE = re.compile(r'^[0-9]+(us|ms|s|m|h|d)?$')
METHOD_RE = re.compile(r'^[A-Z]+$')
MODES = ('http', 'tcp')
BALANCES = ('roundrobin', 'leastconn', 'source', 'first', 'static-rr', 'uri', 'url_param', 'hdr', 'random')
FRONTEND_KEYS = {'name', 'mode', 'bind', 'default_backend', 'maxconn', 'options'}
BACKEND_KEYS = {'name', 'mode', 'balance', 'group', 'servers', 'port', 'check', 'server_options', 'options',
                'retry_on', 'ssl', 'bind'}
CHECK_KEYS = {'method', 'path', 'expect_status', 'port', 'host', 'ssl'}
SERVER_OPTION_KEYS = {'inter', 'fastinter', 'downinter', 'rise', 'fall', 'slowstart', 'maxconn', 'weight', 'backup'}
SERVER_KEYS = {'name', 'address', 'port', 'weight', 'backup'}
TIME_OPTIONS = ('inter', 'fastinter', 'downinter', 'slowstart')
INT_OPTIONS = {'rise': (1, 1000), 'fall': (1, 1000), 'maxconn': (1, 1000000), 'weight': (0, 256)}


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _port(value):
    if isinstance(value, string_types) and value.isdigit():
        value = int(value)
    return value if _is_int(value) and 1 <= value <= 65535 else None


def address_problem(value):
    """None when value is an IPv4/IPv6 address or a host name haproxy can resolve, else why not."""
    if not isinstance(value, string_types) or not value:
        return 'must be an IP address or a host name, got %r' % (value,)
    try:
        ipaddress.ip_address(value)
        return None
    except ValueError:
        pass
    # A dotted quad that is not an address (10.0.0.300) is a typo, not a host name.
    if re.match(r'^[0-9.]+$', value) or not HOSTNAME_RE.match(value):
        return 'must be an IP address or a host name, got %r' % (value,)
    return None


def bind_problem(value):
    """None when value is "address:port" (address may be empty or *, IPv6 in brackets or bare)."""
    if not isinstance(value, string_types):
        return 'must be "address:port", got %r' % (value,)
    host, sep, port = value.rpartition(':')
    if not sep or _port(port) is None:
        return 'must be "address:port" with a port 1-65535, got %r' % (value,)
    host = host.strip('[]')
    if host in ('', '*'):
        return None
    problem = address_problem(host)
    return problem and 'address %s' % problem


def host_address(host, hostvars):
    """A group member's server address: haproxy_address, else ansible_host, else its inventory name."""
    hv = hostvars.get(host, {}) if hostvars else {}
    for key in ('haproxy_address', 'ansible_host'):
        value = hv.get(key)
        if isinstance(value, string_types) and value:
            return value
    return host


def _check_time(where, options, key, errors):
    value = options.get(key)
    if value is not None and not TIME_RE.match(str(value)):
        errors.append('%s.%s must be a time like 2s or 500ms, got %r' % (where, key, value))


def _server_options(where, options, errors):
    if options is None:
        return {}
    if not isinstance(options, dict):
        errors.append('%s must be a dict, got %r' % (where, options))
        return {}
    unknown = sorted(set(options) - SERVER_OPTION_KEYS)
    if unknown:
        errors.append('%s has unknown keys: %s (known: %s)' % (where, ', '.join(unknown), ', '.join(sorted(SERVER_OPTION_KEYS))))
    for key in TIME_OPTIONS:
        _check_time(where, options, key, errors)
    for key, (low, high) in INT_OPTIONS.items():
        value = options.get(key)
        if value is not None and not (_is_int(value) and low <= value <= high):
            errors.append('%s.%s must be a whole number %d-%d, got %r' % (where, key, low, high, value))
    return dict(options)


def _check(where, check, mode, errors):
    if check is None:
        return None
    if not isinstance(check, dict):
        errors.append('%s must be a dict, got %r' % (where, check))
        return None
    unknown = sorted(set(check) - CHECK_KEYS)
    if unknown:
        errors.append('%s has unknown keys: %s' % (where, ', '.join(unknown)))
    result = {'method': check.get('method', 'GET'), 'path': check.get('path'), 'expect_status': check.get('expect_status', 200),
              'port': check.get('port'), 'host': check.get('host'), 'ssl': bool(check.get('ssl', False))}
    if not isinstance(result['method'], string_types) or not METHOD_RE.match(result['method']):
        errors.append('%s.method must be an HTTP method like GET, got %r' % (where, result['method']))
    if result['path'] is not None and (not isinstance(result['path'], string_types) or not result['path'].startswith('/')
                                       or any(c.isspace() for c in result['path'])):
        errors.append('%s.path must be a path starting with /, without spaces, got %r' % (where, result['path']))
    status = result['expect_status']
    if not (_is_int(status) and 100 <= status <= 599):
        errors.append('%s.expect_status must be an HTTP status 100-599, got %r' % (where, status))
    if result['port'] is not None and _port(result['port']) is None:
        errors.append('%s.port must be a port 1-65535, got %r' % (where, result['port']))
    if result['host'] is not None and address_problem(result['host']):
        errors.append('%s.host %s' % (where, address_problem(result['host'])))
    return result


def _servers(where, backend, groups, hostvars, errors):
    port = backend.get('port')
    group = backend.get('group')
    explicit = backend.get('servers')
    if (group is None) == (explicit is None):
        errors.append('%s needs either group (an inventory group) or servers (a list), not %s'
                      % (where, 'both' if group is not None else 'neither'))
        return []
    if port is not None and _port(port) is None:
        errors.append('%s.port must be a port 1-65535, got %r' % (where, port))
        port = None
    servers = []
    if group is not None:
        if not isinstance(group, string_types) or group not in groups:
            errors.append('%s.group: no inventory group %r' % (where, group))
            return []
        members = groups[group]
        if not members:
            errors.append('%s.group: inventory group %r has no hosts' % (where, group))
            return []
        if port is None:
            errors.append('%s.port is required with group (the port the servers listen on)' % where)
            return []
        for host in members:
            address = host_address(host, hostvars)
            problem = address_problem(address)
            if problem:
                errors.append('%s: server address of host %s (haproxy_address, ansible_host or its name) %s' % (where, host, problem))
                continue
            servers.append({'name': host, 'address': address, 'port': _port(port), 'weight': None, 'backup': False})
        return servers
    if not isinstance(explicit, list) or not explicit:
        errors.append('%s.servers must be a non-empty list of {name, address, port}, got %r' % (where, explicit))
        return []
    for swhere, server in dict_items('%s.servers' % where, explicit, SERVER_KEYS, errors):
        name = server.get('name')
        if not isinstance(name, string_types) or not re.match(r'^[A-Za-z0-9][A-Za-z0-9_.-]*$', name):
            errors.append('%s.name must be a server name of letters, digits, _ . -, got %r' % (swhere, name))
            continue
        problem = address_problem(server.get('address'))
        if problem:
            errors.append('%s.address %s' % (swhere, problem))
            continue
        server_port = _port(server.get('port', port))
        if server_port is None:
            errors.append('%s.port must be a port 1-65535, got %r' % (swhere, server.get('port', port)))
            continue
        weight = server.get('weight')
        if weight is not None and not (_is_int(weight) and 0 <= weight <= 256):
            errors.append('%s.weight must be a whole number 0-256, got %r' % (swhere, weight))
        servers.append({'name': name, 'address': server['address'], 'port': server_port, 'weight': weight,
                        'backup': bool(server.get('backup', False))})
    for name in repeated([s['name'] for s in servers]):
        errors.append('%s: server name %r appears twice' % (where, name))
    return servers


def _mode(where, item, errors):
    mode = item.get('mode', 'http')
    if mode not in MODES:
        errors.append('%s.mode must be one of %s, got %r' % (where, ', '.join(MODES), mode))
    return mode


def _binds(where, binds, errors):
    if isinstance(binds, string_types):
        binds = [binds]
    if not isinstance(binds, list) or not binds:
        errors.append('%s.bind must be a non-empty list of "address:port", got %r' % (where, binds))
        return []
    for bind in binds:
        problem = bind_problem(bind)
        if problem:
            errors.append('%s.bind %s' % (where, problem))
    return binds


def _backend(where, item, groups, hostvars, errors, listen=False):
    mode = _mode(where, item, errors)
    balance = item.get('balance', 'roundrobin')
    if not isinstance(balance, string_types) or balance.split(' ')[0] not in BALANCES:
        errors.append('%s.balance must be one of %s, got %r' % (where, ', '.join(BALANCES), balance))
    result = {
        'name': item.get('name'), 'mode': mode, 'balance': balance,
        'check': _check(where + '.check', item.get('check'), mode, errors),
        'server_options': _server_options(where + '.server_options', item.get('server_options'), errors),
        'servers': _servers(where, item, groups, hostvars, errors),
        'options': list(item.get('options') or []),
        'retry_on': item.get('retry_on'),
        'ssl': bool(item.get('ssl', False)),
    }
    if listen:
        result['bind'] = _binds(where, item.get('bind'), errors)
    return result


def dict_items(variable, items, keys, errors, named=False):
    """(where, item) for every dict of the list (named: whose name matches [a-z0-9_-]+); problems go to errors."""
    if items is None and named:
        return []
    if not isinstance(items, list):
        errors.append('%s must be a list, got %r' % (variable, items))
        return []
    result = []
    for index, item in enumerate(items):
        where = '%s[%d]' % (variable, index)
        if not isinstance(item, dict):
            errors.append('%s must be a dict, got %r' % (where, item))
            continue
        if named:
            where = '%s (%s)' % (where, item.get('name'))
            if not isinstance(item.get('name'), string_types) or not NAME_RE.match(item['name']):
                errors.append('%s.name must match [a-z0-9_-]+, got %r' % (where, item.get('name')))
                continue
        unknown = sorted(set(item) - keys)
        if unknown:
            errors.append('%s has unknown keys: %s (known: %s)' % (where, ', '.join(unknown), ', '.join(sorted(keys))))
        result.append((where, item))
    return result


def named_items(variable, items, keys, errors):
    return dict_items(variable, items, keys, errors, named=True)


def repeated(values):
    """The values that appear more than once, sorted."""
    return sorted(set(v for v in values if values.count(v) > 1))


def claimed_twice(claims):
    """[(key, owners)] of a {key: [owner, ...]} map, for keys with more than one owner."""
    return [(key, owners) for key, owners in sorted(claims.items()) if len(owners) > 1]


def haproxy_plan(frontends, backends, groups, hostvars, listens=None):
    """Checked and filled-in sections: {'frontends', 'backends', 'listens', 'errors'}."""
    if not isinstance(groups, dict):
        raise AnsibleFilterError('haproxy_plan: groups must be the inventory groups, got %r' % (groups,))
    errors = []
    plan = {'frontends': [], 'backends': [], 'listens': [], 'errors': errors}
    for where, item in named_items('haproxy_backends', backends, BACKEND_KEYS - {'bind'}, errors):
        plan['backends'].append(_backend(where, item, groups, hostvars, errors))
    for where, item in named_items('haproxy_listens', listens, BACKEND_KEYS, errors):
        plan['listens'].append(_backend(where, item, groups, hostvars, errors, listen=True))
    backend_modes = dict((b['name'], b['mode']) for b in plan['backends'])
    for where, item in named_items('haproxy_frontends', frontends, FRONTEND_KEYS, errors):
        mode = _mode(where, item, errors)
        default = item.get('default_backend')
        if default is not None and default not in backend_modes:
            errors.append('%s.default_backend: no backend %r in haproxy_backends' % (where, default))
        elif default is not None and backend_modes[default] != mode:
            errors.append('%s: mode %s, but its default_backend %r is in mode %s' % (where, mode, default, backend_modes[default]))
        maxconn = item.get('maxconn')
        if maxconn is not None and not (_is_int(maxconn) and maxconn >= 1):
            errors.append('%s.maxconn must be a whole number >= 1, got %r' % (where, maxconn))
        plan['frontends'].append({'name': item['name'], 'mode': mode, 'bind': _binds(where, item.get('bind'), errors),
                                  'default_backend': default, 'maxconn': maxconn, 'options': list(item.get('options') or [])})
    for kind, variable in (('frontends', 'haproxy_frontends'), ('backends', 'haproxy_backends'), ('listens', 'haproxy_listens')):
        for name in repeated([s['name'] for s in plan[kind]]):
            errors.append('%s: name %r appears twice' % (variable, name))
    binds = {}
    for section in plan['frontends'] + plan['listens']:
        for bind in section.get('bind', []):
            binds.setdefault(bind, []).append(section['name'])
    for bind, owners in claimed_twice(binds):
        errors.append('bind %s is claimed by %s' % (bind, ', '.join(owners)))
    return plan


class FilterModule(object):
    def filters(self):
        return {'haproxy_plan': haproxy_plan}
