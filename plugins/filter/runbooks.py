# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runbook filters: rolling upgrade plan, capacity, package changes, report; memcached
server list replacement and its cold share (documentation in the .yml file of each filter)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import binascii
import bisect
import hashlib

from ansible.errors import AnsibleFilterError


def rolling_upgrade_plan(order, inventory_hosts, play_hosts=None, resume_from=None):
    """The hosts to upgrade, in the order given, from resume_from on.

    order: the inventory's rolling_upgrade_order; inventory_hosts: every host of the inventory
    (a name in order that is not one is a typo and fails the run); play_hosts: the hosts the run
    may touch (--limit), others are left out."""
    if not isinstance(order, (list, tuple)) or not order or not all(isinstance(h, str) and h for h in order):
        raise AnsibleFilterError('rolling_upgrade_order must be a non-empty list of host names, got %r' % (order,))
    duplicates = sorted(set(h for h in order if list(order).count(h) > 1))
    if duplicates:
        raise AnsibleFilterError('rolling_upgrade_order names %s more than once' % ', '.join(duplicates))
    unknown = [h for h in order if h not in inventory_hosts]
    if unknown:
        raise AnsibleFilterError('rolling_upgrade_order names %s, not in the inventory' % ', '.join(unknown))
    plan = list(order)
    if resume_from:
        if resume_from not in plan:
            raise AnsibleFilterError('rolling_upgrade_resume_from is %s, which rolling_upgrade_order does not name (%s)'
                                     % (resume_from, ', '.join(plan)))
        plan = plan[plan.index(resume_from):]
    if play_hosts is not None:
        plan = [h for h in plan if h in play_hosts]
    return plan


def rolling_upgrade_capacity(own_rows, peer_rows, min_up=1):
    """Problems (strings) that forbid taking the server out: for each backend holding it, the
    other servers in service (up, neither drained nor in maintenance) must number at least min_up.

    own_rows: the server's rows (haproxy_server's `before`); peer_rows: the rows of the other
    servers of its tier, from every edge host."""
    if isinstance(min_up, bool) or not isinstance(min_up, int) or min_up < 0:
        raise AnsibleFilterError('rolling_upgrade_min_peers_up must be a whole number >= 0, got %r' % (min_up,))
    problems = []
    for backend in sorted(set(row['backend'] for row in own_rows)):
        serving = sorted(set(row['server'] for row in peer_rows
                             if row['backend'] == backend and row.get('up') and not row.get('drain') and not row.get('maint')))
        if len(serving) < min_up:
            others = sorted(set('%s (%s)' % (row['server'], row.get('status', '?')) for row in peer_rows if row['backend'] == backend))
            problems.append('backend %s: %d other server(s) in service (%s), %d needed' % (
                backend, len(serving), ', '.join(others) or 'none', min_up))
    return problems


def _versions(listing):
    """{name: version} of the installed packages in dpkg-query's `${db:Status-Abbrev} ${Package} ${Version}`
    lines (only status ii: a package removed but not purged is not installed)."""
    versions = {}
    for line in (listing or '').splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[0] == 'ii':
            versions[fields[1]] = fields[2]
    return versions


def package_changes(before, after):
    """Sorted 'name old -> new' lines (old or new '-' for installed / removed) between two
    dpkg-query listings."""
    old, new = _versions(before), _versions(after)
    changes = []
    for name in sorted(set(old) | set(new)):
        if old.get(name) != new.get(name):
            changes.append('%s %s -> %s' % (name, old.get(name, '-'), new.get(name, '-')))
    return changes


def _cell(value):
    return str(value).replace('|', '\\|').replace('\n', ' ')


def rolling_upgrade_report(records, title='Rolling upgrade'):
    """A markdown report: one row a host (in run order), then each host's package changes."""
    lines = ['# %s' % title, '',
             '| # | host | outcome | packages changed | reboot | health | duration (s) |',
             '|---|------|---------|------------------|--------|--------|--------------|']
    for number, record in enumerate(records, 1):
        lines.append('| %d | %s | %s | %d | %s | %s | %s |' % (
            number, _cell(record['host']), _cell(record.get('outcome', '?')), len(record.get('packages', [])),
            _cell(record.get('reboot', 'no')), _cell(record.get('health', '-')), _cell(record.get('duration', '-'))))
    for record in records:
        lines += ['', '## %s' % record['host'], '']
        if record.get('message'):
            lines += ['%s' % record['message'], '']
        lines += ['- %s' % change for change in record.get('packages', [])] or ['- no package changed']
    return '\n'.join(lines) + '\n'


def memcached_replace_servers(servers, old, new):
    """The clients' server list (host:port entries) with the entry of host old replaced by new in
    its place: the other servers keep their positions, so a client's hashing moves only the old
    server's keys."""
    if not isinstance(servers, (list, tuple)) or not all(isinstance(s, str) and s for s in servers):
        raise AnsibleFilterError('the memcached server list must be a list of host:port, got %r' % (servers,))
    hosts = [server.rsplit(':', 1)[0] for server in servers]
    if old not in hosts:
        raise AnsibleFilterError("%s is not in the clients' memcached server list (%s)" % (old, ', '.join(servers)))
    if new.rsplit(':', 1)[0] in hosts:
        raise AnsibleFilterError("%s is already in the clients' memcached server list (%s)" % (new, ', '.join(servers)))
    return [new if host == old else server for host, server in zip(hosts, servers)]


def _ketama_ring(servers, points=160):
    """A ketama-style continuum (libmemcached, pymemcache's ring): points a server, md5 of 'server-i'."""
    ring = []
    for server in servers:
        for index in range(points):
            digest = hashlib.md5(('%s-%d' % (server, index)).encode()).digest()
            ring.append((int.from_bytes(digest[:4], 'little'), server))
    ring.sort()
    return ring


def _ketama_server(ring, key):
    point = int.from_bytes(hashlib.md5(key.encode()).digest()[:4], 'little')
    return ring[bisect.bisect(ring, (point, '')) % len(ring)][1]


def _modulo_server(servers, key):
    """python-memcached's choice (Open Library's client): a CRC32 of the key modulo the list's length."""
    return servers[((binascii.crc32(key.encode()) & 0xffffffff) >> 16 & 0x7fff) % len(servers)]


def memcached_cold_share(old_servers, new_servers, hashing='modulo', keys=20000):
    """The share of keys (0..1) a client maps to another server once its list changes from
    old_servers to new_servers: those keys miss once (cold).

    hashing: modulo - the key's hash modulo the list's length, by position (python-memcached);
    ketama - a continuum of points named after each server (libmemcached, pymemcache)."""
    if not old_servers or not new_servers:
        raise AnsibleFilterError('both server lists must hold at least one server')
    if hashing == 'modulo':
        def before(key):
            return _modulo_server(old_servers, key)

        def after(key):
            return _modulo_server(new_servers, key)
    elif hashing == 'ketama':
        old_ring, new_ring = _ketama_ring(old_servers), _ketama_ring(new_servers)

        def before(key):
            return _ketama_server(old_ring, key)

        def after(key):
            return _ketama_server(new_ring, key)
    else:
        raise AnsibleFilterError('hashing must be modulo or ketama, got %r' % (hashing,))
    moved = sum(1 for number in range(keys) if before('key:%d' % number) != after('key:%d' % number))
    return round(moved / float(keys), 4)


class FilterModule(object):
    def filters(self):
        return {
            'rolling_upgrade_plan': rolling_upgrade_plan,
            'rolling_upgrade_capacity': rolling_upgrade_capacity,
            'package_changes': package_changes,
            'rolling_upgrade_report': rolling_upgrade_report,
            'memcached_replace_servers': memcached_replace_servers,
            'memcached_cold_share': memcached_cold_share,
        }
