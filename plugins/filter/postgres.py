# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL filters: tuning from usable memory, the replication layout of a
cluster, slot names (documentation in the .yml file of each filter).

Shared by the postgres role and whatever manages the instance later (Patroni):
the arithmetic and the cluster rules live here once.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_native
from ansible.module_utils.six import string_types
from ansible_collections.commons.infra.plugins.filter.memory import whole_number

try:
    import netaddr
    HAS_NETADDR = True
except ImportError:  # pragma: no cover - netaddr comes with ansible.utils
    HAS_NETADDR = False

ROLES = ('primary', 'standby')


def _whole(value, name):
    return whole_number(value, name, unit='')


def _usable_mb(memory):
    if isinstance(memory, dict):
        if 'usable_mb' not in memory:
            raise AnsibleFilterError('memory must be memory_info\'s dict (with usable_mb) or MiB, got keys %s' % sorted(memory))
        memory = memory['usable_mb']
    usable = _whole(memory, 'memory')
    if usable < 64:
        raise AnsibleFilterError('memory: %d MiB usable is too little for PostgreSQL (at least 64 MiB)' % usable)
    return usable


def postgres_tuning(memory, max_connections=100, shared_buffers_mb=None, effective_cache_size_mb=None,
                    work_mem_mb=None, maintenance_work_mem_mb=None, prefix=''):
    """Memory settings for postgresql.conf from usable memory, each overridable.

    The usual rules of thumb (PostgreSQL's wiki, pgtune): shared_buffers a quarter of
    memory, effective_cache_size three quarters, maintenance_work_mem a sixteenth (at
    most 2 GiB), work_mem what is left after shared_buffers spread over three sorts
    per connection. An override larger than the usable memory is refused: such a
    server starts and is then killed by the OOM killer under load.
    """
    usable = _usable_mb(memory)
    connections = _whole(max_connections, prefix + 'max_connections')
    if connections < 1:
        raise AnsibleFilterError('%smax_connections must be at least 1, got %d' % (prefix, connections))
    overrides = {}
    for name, value in (('shared_buffers_mb', shared_buffers_mb), ('effective_cache_size_mb', effective_cache_size_mb),
                        ('work_mem_mb', work_mem_mb), ('maintenance_work_mem_mb', maintenance_work_mem_mb)):
        if value is None:
            continue
        number = _whole(value, prefix + name)
        if number < 1:
            raise AnsibleFilterError('%s%s must be at least 1 MiB, got %d' % (prefix, name, number))
        if number > usable:
            raise AnsibleFilterError('%s%s (%d MiB) is larger than the usable memory of the host (%d MiB)'
                                     % (prefix, name, number, usable))
        overrides[name] = number
    shared_buffers = overrides.get('shared_buffers_mb', usable // 4)
    computed = {
        'shared_buffers_mb': shared_buffers,
        'effective_cache_size_mb': usable * 3 // 4,
        'maintenance_work_mem_mb': min(usable // 16, 2048),
        'work_mem_mb': max((usable - shared_buffers) // (connections * 3), 1),
    }
    computed.update(overrides)
    return {
        'max_connections': connections,
        'shared_buffers': '%dMB' % computed['shared_buffers_mb'],
        'effective_cache_size': '%dMB' % computed['effective_cache_size_mb'],
        'maintenance_work_mem': '%dMB' % computed['maintenance_work_mem_mb'],
        'work_mem': '%dMB' % computed['work_mem_mb'],
    }


def postgres_slot_name(host):
    """A replication slot / application_name for a host: lower case, [a-z0-9_]."""
    if not isinstance(host, string_types) or not host:
        raise AnsibleFilterError('postgres_slot_name expects a host name, got %r' % (host,))
    return re.sub('[^a-z0-9_]', '_', host.lower())[:63]


def postgres_cluster(members, synchronous_standbys=None, prefix='postgres_'):
    """The replication layout of one cluster from {host: replication role}.

    Returns {'primary': host or None, 'standbys': [hosts], 'synchronous_standbys': [hosts]};
    refuses an unknown role, two primaries, standbys without a primary and
    synchronous standbys that are not standbys of the cluster, naming the variable.
    """
    if not isinstance(members, dict) or not members:
        raise AnsibleFilterError('postgres_cluster expects a dict of host: replication role, got %r' % (members,))
    role_var = prefix + 'replication_role'
    bad = sorted('%s (%r)' % (host, role) for host, role in members.items() if role not in ROLES)
    if bad:
        raise AnsibleFilterError('%s must be primary or standby: %s' % (role_var, ', '.join(bad)))
    primaries = sorted(host for host, role in members.items() if role == 'primary')
    standbys = sorted(host for host, role in members.items() if role == 'standby')
    if len(primaries) > 1:
        raise AnsibleFilterError('%s: a cluster has one primary, found %d: %s'
                                 % (role_var, len(primaries), ', '.join(primaries)))
    if standbys and not primaries:
        raise AnsibleFilterError('%s: %s %s standby but no host of the cluster is primary'
                                 % (role_var, ', '.join(standbys), 'is a' if len(standbys) == 1 else 'are each a'))
    sync = list(synchronous_standbys or [])
    if isinstance(synchronous_standbys, string_types):
        raise AnsibleFilterError('%ssynchronous_standbys must be a list of hosts, got %r' % (prefix, synchronous_standbys))
    strangers = [host for host in sync if host not in standbys]
    if strangers:
        raise AnsibleFilterError('%ssynchronous_standbys: %s not a standby of the cluster (standbys: %s)'
                                 % (prefix, ', '.join(strangers), ', '.join(standbys) or 'none'))
    return {'primary': primaries[0] if primaries else None, 'standbys': standbys, 'synchronous_standbys': sync}


def _network(value):
    """netaddr's network for an address or CIDR written in full (no '10' for 10.0.0.0/8), else None."""
    if not isinstance(value, string_types) or not re.match(r'^[0-9A-Fa-f:.]+(/[0-9]{1,3})?$', value):
        return None
    try:
        network = netaddr.IPNetwork(value)
    except (netaddr.AddrFormatError, ValueError, TypeError):
        return None
    if network.version == 4 and value.split('/')[0].count('.') != 3:
        return None
    return network


def postgres_hba_errors(rules, groups, variable='postgres_hba'):
    """Every problem of a list of hba rules, each naming the variable and the rule; [] when usable."""
    if not HAS_NETADDR:
        raise AnsibleFilterError('postgres_hba_errors needs the netaddr Python library on the controller')
    if not isinstance(rules, list):
        return ['%s must be a list of rules, got %r' % (variable, rules)]
    problems = []
    for index, rule in enumerate(rules):
        if not isinstance(rule, dict):
            problems.append('%s[%d] must be a dict, got %r' % (variable, index, rule))
            continue
        label = '%s[%d] (%s)' % (variable, index, rule.get('name', 'no name'))
        for key in ('databases', 'users', 'from_groups', 'from_cidrs'):
            value = rule.get(key, [])
            if isinstance(value, string_types) or not isinstance(value, list):
                problems.append('%s: %s must be a list, got %r' % (label, key, value))
        lists_ok = not [p for p in problems if p.startswith(label)]
        if not lists_ok:
            continue
        for key in ('databases', 'users'):
            if not rule.get(key):
                problems.append('%s: %s must name at least one (or "all")' % (label, key))
        unknown = [group for group in rule.get('from_groups', []) if group not in groups]
        if unknown:
            problems.append('%s: from_groups names unknown inventory group(s) %s' % (label, ', '.join(unknown)))
        bad = [cidr for cidr in rule.get('from_cidrs', []) if _network(cidr) is None]
        if bad:
            problems.append('%s: from_cidrs has entries that are not CIDRs or IP addresses: %s'
                            % (label, ', '.join(to_native(cidr) for cidr in bad)))
        if not rule.get('from_groups') and not rule.get('from_cidrs'):
            problems.append('%s: give from_groups or from_cidrs; a rule open to nobody is a mistake' % label)
    return problems


def postgres_hba_sources(rule, groups, addresses):
    """The networks one hba rule admits: [{'cidr': ..., 'source': ...}].

    Each host of the rule's from_groups as a single-address network (its address
    from ``addresses``, host name to IP), then from_cidrs in network form
    (10.1.2.3/8 -> 10.0.0.0/8, 192.0.2.7 -> 192.0.2.7/32). A network is listed once.
    """
    if not HAS_NETADDR:
        raise AnsibleFilterError('postgres_hba_sources needs the netaddr Python library on the controller')
    sources = []
    seen = set()
    for group in rule.get('from_groups', []):
        if group not in groups:
            raise AnsibleFilterError('unknown inventory group %s' % group)
        for host in groups[group]:
            address = (addresses or {}).get(host)
            network = _network(address) if address else None
            if network is None:
                raise AnsibleFilterError('no IP address known for %s (group %s), got %r' % (host, group, address))
            cidr = str(netaddr.IPNetwork('%s/%d' % (network.ip, 32 if network.version == 4 else 128)))
            if cidr not in seen:
                seen.add(cidr)
                sources.append({'cidr': cidr, 'source': '%s: %s' % (group, host)})
    for value in rule.get('from_cidrs', []):
        network = _network(value)
        if network is None:
            raise AnsibleFilterError('%r is not a CIDR or IP address' % (value,))
        cidr = str(network.cidr)
        if cidr not in seen:
            seen.add(cidr)
            sources.append({'cidr': cidr, 'source': value})
    return sources


class FilterModule(object):
    def filters(self):
        return {
            'postgres_tuning': postgres_tuning,
            'postgres_cluster': postgres_cluster,
            'postgres_slot_name': postgres_slot_name,
            'postgres_hba_errors': postgres_hba_errors,
            'postgres_hba_sources': postgres_hba_sources,
        }
