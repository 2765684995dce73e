# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""stunnel PSK tunnels from inventory data (documentation in the .yml file of each filter).

A service is one tunnel: its server host accepts TLS-PSK on accept_port and
hands the plaintext to connect; each client host listens on client_accept and
tunnels to the server. One PSK per (client host, service) pair, under the
identity <service>@<client name>.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.six import string_types

NAME_RE = re.compile(r'^[a-z0-9][a-z0-9_-]{0,31}$')
# What stunnel takes as a hexadecimal key: 16 to 128 bytes (OpenSSL's PSK_MAX_PSK_LEN is 256 bytes).
KEY_RE = re.compile(r'^(?:[0-9a-fA-F]{2}){16,128}$')
# OpenSSL's PSK_MAX_IDENTITY_LEN
MAX_IDENTITY = 128
SERVICE_KEYS = {'name', 'server', 'accept_port', 'accept_address', 'connect', 'client_groups', 'client_hosts',
                'client_accept', 'server_address'}


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _port_problem(value):
    if isinstance(value, string_types) and value.isdigit():
        value = int(value)
    if not _is_int(value) or not 1 <= value <= 65535:
        return 'must be a port 1-65535, got %r' % (value,)
    return None


def _endpoint_problem(value):
    """'address:port' or a bare port, as stunnel's accept and connect take them."""
    if _is_int(value):
        return _port_problem(value)
    if not isinstance(value, string_types) or not value.strip():
        return 'must be "address:port" or a port, got %r' % (value,)
    host, sep, port = value.rpartition(':')
    if not sep:
        return _port_problem(value)
    if not host or any(c.isspace() for c in host):
        return 'must be "address:port" or a port, got %r' % (value,)
    problem = _port_problem(port)
    return problem and 'port %s' % problem


def _endpoint_port(value):
    return int(str(value).rpartition(':')[2])


def _label(index, service):
    name = service.get('name') if isinstance(service, dict) else None
    return 'stunnel_services[%d] (%s)' % (index, name or 'no name')


def _hostvar(hostvars, host, name, default=None):
    try:
        value = hostvars[host].get(name, default)
    except (KeyError, AttributeError):
        return default
    return default if value is None else value


def _normalize(services, groups, hostvars):
    """Each service with its defaults and its client hosts resolved; (services, errors)."""
    errors = []
    result = []
    if not isinstance(services, list):
        return [], ['stunnel_services must be a list of services, got %r' % (services,)]
    for index, service in enumerate(services):
        label = _label(index, service)
        if not isinstance(service, dict):
            errors.append('%s: must be a dict with name, server, accept_port, connect and clients' % label)
            continue
        problems = []
        unknown = sorted(set(service) - SERVICE_KEYS)
        if unknown:
            problems.append('unknown keys %s (known: %s)' % (', '.join(unknown), ', '.join(sorted(SERVICE_KEYS))))
        name = service.get('name')
        if not isinstance(name, string_types) or not NAME_RE.match(name):
            problems.append('name must be lowercase letters, digits, _ or - (at most 32), got %r' % (name,))
        server = service.get('server')
        if server not in hostvars:
            problems.append('server %r is not an inventory host' % (server,))
        problem = _port_problem(service.get('accept_port'))
        if problem:
            problems.append('accept_port %s' % problem)
        problem = _endpoint_problem(service.get('connect'))
        if problem:
            problems.append('connect %s' % problem)
        client_groups = service.get('client_groups', [])
        client_hosts = service.get('client_hosts', [])
        if not isinstance(client_groups, list) or not isinstance(client_hosts, list):
            problems.append('client_groups and client_hosts must be lists')
            client_groups, client_hosts = [], []
        unknown_groups = [g for g in client_groups if g not in groups or g in ('all', 'ungrouped')]
        if unknown_groups:
            problems.append('client_groups names unknown inventory group(s) %s' % ', '.join(map(str, unknown_groups)))
        unknown_hosts = [h for h in client_hosts if h not in hostvars]
        if unknown_hosts:
            problems.append('client_hosts names unknown inventory host(s) %s' % ', '.join(map(str, unknown_hosts)))
        clients = []
        for host in [h for g in client_groups if g not in unknown_groups for h in groups[g]] + \
                [h for h in client_hosts if h not in unknown_hosts]:
            if host not in clients:
                clients.append(host)
        if not (client_groups or client_hosts):
            problems.append('has no clients (client_groups and client_hosts are both empty)')
        if server in clients:
            problems.append('server %s cannot be a client of its own service' % server)
        accept_address = service.get('accept_address', '0.0.0.0')
        if not isinstance(accept_address, string_types) or not accept_address or ' ' in accept_address:
            problems.append('accept_address must be an address, got %r' % (accept_address,))
        client_accept = service.get('client_accept')
        if client_accept is None and not _endpoint_problem(service.get('connect')):
            client_accept = '127.0.0.1:%d' % _endpoint_port(service['connect'])
        problem = _endpoint_problem(client_accept)
        if problem and client_accept is not None:
            problems.append('client_accept %s' % problem)
        server_address = service.get('server_address', server)
        if not isinstance(server_address, string_types) or not server_address:
            problems.append('server_address must be a host name or address, got %r' % (server_address,))
        if problems:
            errors.extend('%s: %s' % (label, p) for p in problems)
            continue
        result.append({
            'index': index, 'label': label, 'name': name, 'server': server,
            'accept_port': int(service['accept_port']), 'accept_address': accept_address,
            'connect': str(service['connect']), 'client_accept': str(client_accept),
            'server_address': server_address, 'client_groups': client_groups, 'client_hosts': client_hosts,
            'clients': clients,
        })
    return result, errors


def _identity(service, client, hostvars):
    return '%s@%s' % (service, _hostvar(hostvars, client, 'stunnel_client_name', client))


def _cross_checks(services, hostvars, groups):
    errors = []
    seen_names = {}
    seen_accept = {}
    seen_client_accept = {}
    identities = {}
    for service in services:
        label = service['label']
        if service['name'] in seen_names:
            errors.append('%s: name %s is used by %s too' % (label, service['name'], seen_names[service['name']]))
        seen_names.setdefault(service['name'], label)
        key = (service['server'], service['accept_port'])
        if key in seen_accept:
            errors.append('%s: %s port %d is taken by %s' % (label, service['server'], service['accept_port'], seen_accept[key]))
        seen_accept.setdefault(key, label)
        for client in service['clients']:
            key = (client, _endpoint_port(service['client_accept']))
            if key in seen_client_accept:
                errors.append('%s: client %s already listens on port %d for %s' % (
                    label, client, key[1], seen_client_accept[key]))
            seen_client_accept.setdefault(key, label)
            identity = _identity(service['name'], client, hostvars)
            if len(identity) > MAX_IDENTITY:
                errors.append('%s: identity %s is longer than %d characters' % (label, identity, MAX_IDENTITY))
            if ':' in identity or any(c.isspace() for c in identity):
                errors.append('%s: identity %r may hold neither ":" nor spaces (set stunnel_client_name of %s)' % (
                    label, identity, client))
            if identity in identities and identities[identity] != (service['name'], client):
                other = identities[identity]
                errors.append('%s: identity collision: %s and %s both get identity %s (set stunnel_client_name of one)' % (
                    label, other[1], client, identity))
            identities.setdefault(identity, (service['name'], client))
        # The server's own view of the service: a client it does not list is a client it would refuse.
        server_view = _normalize(_hostvar(hostvars, service['server'], 'stunnel_services', []), groups, hostvars)[0]
        theirs = [s for s in server_view if s['name'] == service['name']]
        if not theirs:
            errors.append('%s: server %s does not know service %s (its stunnel_services lack it)' % (
                label, service['server'], service['name']))
            continue
        unknown = [c for c in service['clients'] if c not in theirs[0]['clients']]
        if unknown:
            errors.append('%s: client(s) %s listed for %s, but server %s does not know them (its stunnel_services list %s)' % (
                label, ', '.join(unknown), service['name'], service['server'], ', '.join(theirs[0]['clients']) or 'none'))
    return errors, identities


def _psk_checks(psks, rotate, identities):
    errors = []
    if not isinstance(psks, dict):
        return ['stunnel_psks must be a dict of identity: key']
    if not isinstance(rotate, list):
        return ['stunnel_rotate must be a list of identities']
    owners = {}
    for identity in sorted(psks):
        key = psks[identity]
        if identity not in identities:
            errors.append('stunnel_psks: no service uses identity %s (known: %s)' % (identity, ', '.join(sorted(identities)) or 'none'))
        # Never echo a key: name the identity only.
        if not isinstance(key, string_types) or not KEY_RE.match(key):
            errors.append('stunnel_psks[%s]: the key must be 32 to 256 hexadecimal digits (16 to 128 bytes)' % identity)
            continue
        normalized = key.lower()
        if normalized in owners:
            errors.append('stunnel_psks: %s and %s share one key; each connection needs its own' % (owners[normalized], identity))
        owners.setdefault(normalized, identity)
    for identity in rotate:
        if identity not in identities:
            errors.append('stunnel_rotate: no service uses identity %s' % (identity,))
        elif identity in psks:
            errors.append('stunnel_rotate: %s has its key in stunnel_psks; rotate it there' % identity)
    return errors


def stunnel_plan(services, host, hostvars, groups, psks=None, rotate=None):
    """This host's part of the tunnels: the services it serves and the ones it is a client of."""
    psks = {} if psks is None else psks
    rotate = [] if rotate is None else rotate
    normalized, errors = _normalize(services, groups, hostvars)
    if not errors:
        cross, identities = _cross_checks(normalized, hostvars, groups)
        errors.extend(cross)
        errors.extend(_psk_checks(psks, rotate, identities))
    plan = {'errors': errors, 'server': [], 'client': [], 'keys': [], 'key_dirs': []}
    if errors:
        return plan
    for service in normalized:
        if service['server'] == host:
            ids = [_identity(service['name'], c, hostvars) for c in service['clients']]
            plan['server'].append({
                'name': service['name'], 'mode': 'server', 'instance': 'server-' + service['name'],
                'accept': '%s:%d' % (service['accept_address'], service['accept_port']),
                'connect': service['connect'], 'identities': ids,
                'clients': service['clients'], 'given': [i for i in ids if i in psks],
                'rotate': [i for i in ids if i in rotate],
            })
            plan['keys'].extend({'server': host, 'service': service['name'], 'identity': i,
                                 'file': '%s/%s.psk' % (service['name'], i),
                                 'given': i in psks, 'rotate': i in rotate} for i in ids)
        if host in service['clients']:
            identity = _identity(service['name'], host, hostvars)
            plan['client'].append({
                'name': service['name'], 'mode': 'client', 'instance': 'client-' + service['name'],
                'accept': service['client_accept'],
                'connect': '%s:%d' % (service['server_address'], service['accept_port']),
                'server': service['server'], 'identity': identity,
                'given': identity in psks, 'rotate': identity in rotate,
            })
            plan['keys'].append({'server': service['server'], 'service': service['name'], 'identity': identity,
                                 'file': '%s/%s.psk' % (service['name'], identity),
                                 'given': identity in psks, 'rotate': identity in rotate})
    for key in plan['keys']:
        where = {'server': key['server'], 'service': key['service']}
        if where not in plan['key_dirs']:
            plan['key_dirs'].append(where)
    return plan


def _addresses(hostvars, host):
    explicit = _hostvar(hostvars, host, 'base_firewall_address', [])
    if explicit:
        return list(explicit)
    ansible_host = _hostvar(hostvars, host, 'ansible_host', '')
    if re.match(r'^[0-9.]+$|^[0-9a-fA-F:]+:[0-9a-fA-F:.]*$', str(ansible_host)):
        return [str(ansible_host)]
    facts = _hostvar(hostvars, host, 'ansible_facts', {}) or {}
    found = [(facts.get(k) or {}).get('address') for k in ('default_ipv4', 'default_ipv6')]
    return [a for a in found if a]


def stunnel_firewall_contract(services, host, hostvars, groups):
    """base firewall rules for the accept ports this host serves, open to each service's clients only."""
    normalized, errors = _normalize(services, groups, hostvars)
    if errors:
        raise AnsibleFilterError('; '.join(errors))
    rules = []
    for service in normalized:
        if service['server'] != host:
            continue
        cidrs = []
        for client in service['client_hosts']:
            found = _addresses(hostvars, client)
            if not found:
                raise AnsibleFilterError(
                    '%s: no address known for client %s: set its base_firewall_address or gather its facts'
                    % (service['label'], client))
            cidrs.extend(a for a in found if a not in cidrs)
        rules.append({'name': 'stunnel %s' % service['name'], 'port': service['accept_port'], 'proto': 'tcp',
                      'from_groups': list(service['client_groups']), 'from_cidrs': cidrs})
    return rules


class FilterModule(object):
    def filters(self):
        return {
            'stunnel_plan': stunnel_plan,
            'stunnel_firewall_contract': stunnel_firewall_contract,
        }
