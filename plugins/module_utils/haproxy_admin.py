# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Drain, disable and enable one server through haproxy's admin socket, and verify the state.

community.general.haproxy sends the command and then waits for a status string; for a drain it
times out before the server leaves DRAIN (DRAIN is where a drained server stays), and its guard
for a server that is already DOWN never matched. Here the admin state is read from
`show servers state` (its bit field, whatever the health checks say), and "drained" means what
an operator means: the server's current sessions (`scur` of `show stat`) reached 0.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import socket
import time

# srv_admin_state bits (haproxy's include/haproxy/server-t.h).
ADMF_FMAINT = 0x01
ADMF_MAINT_ANY = 0x01 | 0x02 | 0x04 | 0x20 | 0x40
ADMF_FDRAIN = 0x08
ADMF_DRAIN_ANY = 0x08 | 0x10 | 0x80
# srv_op_state: 0 stopped, 1 starting (slowstart), 2 running, 3 stopping.
OP_SERVING = (1, 2)

ACTIONS = {
    'drain': 'drain',
    'disable': 'maint',
    'enable': 'ready',
}


class HaproxyAdminError(Exception):
    pass


def command(socket_path, line, timeout=5.0):
    """Send one command to the admin socket and return its whole answer."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(timeout)
    try:
        conn.connect(socket_path)
        conn.sendall(line.encode('ascii') + b'\n')
        chunks = []
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    except (OSError, socket.timeout) as error:
        raise HaproxyAdminError('admin socket %s: %s' % (socket_path, error))
    finally:
        conn.close()
    return b''.join(chunks).decode('utf-8', 'replace')


def parse_servers_state(text):
    """`show servers state` -> [{backend, server, op_state, admin_state, weight}]."""
    header = None
    rows = []
    for line in text.splitlines():
        if line.startswith('# '):
            header = line[2:].split()
            continue
        if header is None or not line.strip():
            continue
        fields = dict(zip(header, line.split()))
        try:
            rows.append({'backend': fields['be_name'], 'server': fields['srv_name'],
                         'op_state': int(fields['srv_op_state']), 'admin_state': int(fields['srv_admin_state']),
                         'weight': int(fields['srv_uweight'])})
        except (KeyError, ValueError):
            raise HaproxyAdminError('cannot read `show servers state` line: %r' % line)
    return rows


def parse_stat(text):
    """`show stat` CSV -> {(backend, server): {'scur': int, 'status': str}} for servers."""
    header = None
    stats = {}
    for line in text.splitlines():
        if line.startswith('# '):
            header = line[2:].split(',')
            continue
        if header is None or not line.strip():
            continue
        row = dict(zip(header, line.split(',')))
        if row.get('svname') in ('FRONTEND', 'BACKEND'):
            continue
        try:
            stats[(row['pxname'], row['svname'])] = {'scur': int(row.get('scur') or 0), 'status': row.get('status', '')}
        except ValueError:
            raise HaproxyAdminError('cannot read `show stat` line: %r' % line)
    return stats


def snapshot(socket_path, server, backends=None):
    """The server's rows in every backend that holds it (or only in the given backends)."""
    rows = [r for r in parse_servers_state(command(socket_path, 'show servers state')) if r['server'] == server]
    if backends:
        rows = [r for r in rows if r['backend'] in backends]
    stats = parse_stat(command(socket_path, 'show stat'))
    for row in rows:
        stat = stats.get((row['backend'], server), {})
        row['scur'] = stat.get('scur', 0)
        row['status'] = stat.get('status', '')
        row['maint'] = bool(row['admin_state'] & ADMF_MAINT_ANY)
        row['drain'] = bool(row['admin_state'] & ADMF_DRAIN_ANY)
        row['up'] = row['op_state'] in OP_SERVING
    return rows


def reached(action, row, wait_up):
    """True when the row is in the state the action asks for."""
    if action == 'drain':
        # A server that is down has no sessions: drained at once, never a wait for a state it cannot reach.
        return row['drain'] and row['scur'] == 0
    if action == 'disable':
        return row['maint'] and row['scur'] == 0
    return not row['maint'] and not row['drain'] and (row['up'] or not wait_up)


def needs_command(action, row):
    if action == 'drain':
        return not row['drain'] or row['maint']
    if action == 'disable':
        return not row['maint']
    return row['maint'] or row['drain']


def set_state(socket_path, server, action, backends=None, timeout=60.0, wait_up=True, interval=0.2,
              check_mode=False, clock=time.monotonic, sleep=time.sleep):
    """Apply action to the server in every backend that holds it; wait until verified or timeout.

    Returns {'changed', 'backends', 'before', 'after', 'waited'}; raises HaproxyAdminError when the
    server is in no backend, a command is refused, or the state is not reached within timeout.
    """
    if action not in ACTIONS:
        raise HaproxyAdminError('action must be one of %s, got %r' % (', '.join(sorted(ACTIONS)), action))
    before = snapshot(socket_path, server, backends)
    if not before:
        raise HaproxyAdminError('no backend%s holds a server named %r' % (
            ' among %s' % ', '.join(backends) if backends else '', server))
    pending = [row for row in before if needs_command(action, row)]
    result = {'changed': bool(pending), 'backends': [r['backend'] for r in before], 'before': before, 'after': before,
              'waited': 0.0}
    if check_mode:
        return result
    for row in pending:
        answer = command(socket_path, 'set server %s/%s state %s' % (row['backend'], server, ACTIONS[action])).strip()
        if answer:
            raise HaproxyAdminError('haproxy refused "set server %s/%s state %s": %s'
                                    % (row['backend'], server, ACTIONS[action], answer))
    start = clock()
    deadline = start + timeout
    while True:
        after = snapshot(socket_path, server, result['backends'])
        result['after'] = after
        result['waited'] = round(clock() - start, 3)
        missing = [r for r in after if not reached(action, r, wait_up)]
        if not missing:
            return result
        if clock() >= deadline:
            details = '; '.join('%s: status %s, %d current sessions' % (r['backend'], r['status'], r['scur']) for r in missing)
            raise HaproxyAdminError('%s of %s not verified after %ss: %s' % (action, server, timeout, details))
        sleep(interval)
