# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The decisions of the switchover and failover runbooks (documentation in the
.yml file of each filter): compare the inventory's replication layout with what
each member of the live cluster says about itself, refuse when they disagree,
and say who is promoted, who follows it and who is fenced.

Each member's live state is a dict, as tasks/survey.yml of the postgres role
gathers it::

    {'reachable': bool, 'running': bool, 'in_recovery': bool or None,
     'lsn': '0/5000060' or None,   # primary: pg_current_wal_lsn(); standby: the
                                   # furthest of received and replayed WAL
     'upstream': '10.0.0.5' or None,  # the address a standby's WAL receiver streams from
     'streaming': bool, 'fenced': bool}
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible.module_utils.six import string_types


def postgres_lsn(value):
    """A WAL location ('16/B374D848') as a number of bytes; None stays None."""
    if value is None or value == '':
        return None
    if not isinstance(value, string_types) or value.count('/') != 1:
        raise AnsibleFilterError('postgres_lsn expects a WAL location like 0/5000060, got %r' % (value,))
    high, low = value.split('/')
    try:
        return (int(high, 16) << 32) + int(low, 16)
    except ValueError:
        raise AnsibleFilterError('postgres_lsn expects a WAL location like 0/5000060, got %r' % (value,))


def _describe(host, state):
    if state is None:
        return '%s: not surveyed' % host
    if state.get('fenced'):
        return '%s: fenced' % host
    if not state.get('reachable', True):
        return '%s: unreachable' % host
    if not state.get('running'):
        return '%s: not running' % host
    if state.get('in_recovery'):
        return '%s: standby at %s%s' % (host, state.get('lsn') or 'no WAL yet',
                                        '' if state.get('streaming') else ', not streaming')
    return '%s: primary at %s' % (host, state.get('lsn') or '?')


def _found(states, hosts):
    return '; '.join(_describe(host, states.get(host)) for host in hosts)


def _check_input(states, layout, name):
    if not isinstance(states, dict):
        raise AnsibleFilterError('%s expects a dict of host: live state, got %r' % (name, states))
    if not isinstance(layout, dict) or 'primary' not in layout or 'standbys' not in layout:
        raise AnsibleFilterError('%s expects the postgres_cluster layout (primary, standbys), got %r' % (name, layout))
    members = ([layout['primary']] if layout['primary'] else []) + list(layout['standbys'])
    if not layout['primary']:
        raise AnsibleFilterError('%s: the inventory names no primary for this cluster (postgres_replication_role)' % name)
    return members


def _live_primaries(states, members):
    return [host for host in members
            if (states.get(host) or {}).get('running') and (states.get(host) or {}).get('in_recovery') is False
            and not (states.get(host) or {}).get('fenced')]


def _streams_from(state, address):
    return bool(state and state.get('running') and state.get('in_recovery') and state.get('streaming')
                and address and state.get('upstream') == address)


def _roles(members, new_primary):
    return dict((host, 'primary' if host == new_primary else 'standby') for host in members)


def postgres_switchover_plan(states, layout, addresses, candidate=None, max_lag_mb=16):
    """The plan of a planned switchover, or an error naming what the survey found.

    Refuses unless exactly one member is a live primary and it is the inventory's
    primary, and the candidate (given, or the best synchronous then most advanced
    streaming standby) streams from it at most max_lag_mb behind.
    """
    name = 'postgres_switchover'
    members = _check_input(states, layout, name)
    primary = layout['primary']
    live = _live_primaries(states, members)
    if len(live) > 1:
        raise AnsibleFilterError('%s: refusing, %d members are live primaries: %s (found: %s)'
                                 % (name, len(live), ', '.join(live), _found(states, members)))
    if not live:
        raise AnsibleFilterError('%s: refusing, no member is a live primary (found: %s); a planned switchover needs '
                                 'a running primary, use playbooks/postgres_failover.yml when it is gone'
                                 % (name, _found(states, members)))
    if live[0] != primary:
        raise AnsibleFilterError('%s: refusing, the inventory says %s is the primary (postgres_replication_role) but the '
                                 'live primary is %s (found: %s); make the inventory match the live cluster first'
                                 % (name, primary, live[0], _found(states, members)))
    primary_address = (addresses or {}).get(primary)
    streaming = [host for host in layout['standbys'] if _streams_from(states.get(host), primary_address)
                 and not states[host].get('fenced')]
    if candidate:
        if candidate not in layout['standbys']:
            raise AnsibleFilterError('%s: refusing, postgres_switchover_candidate %s is not a standby of the cluster '
                                     '(standbys: %s)' % (name, candidate, ', '.join(layout['standbys']) or 'none'))
        if candidate not in streaming:
            raise AnsibleFilterError('%s: refusing, %s does not stream from %s (found: %s)'
                                     % (name, candidate, primary, _found(states, members)))
    else:
        if not streaming:
            raise AnsibleFilterError('%s: refusing, no standby streams from %s (found: %s)'
                                     % (name, primary, _found(states, members)))
        sync = layout.get('synchronous_standbys') or []
        candidate = sorted(streaming, key=lambda host: (host not in sync, -(postgres_lsn(states[host].get('lsn')) or 0),
                                                        host))[0]
    behind = (postgres_lsn(states[primary].get('lsn')) or 0) - (postgres_lsn(states[candidate].get('lsn')) or 0)
    if behind > int(max_lag_mb) * 1024 * 1024:
        raise AnsibleFilterError('%s: refusing, no standby caught up: %s is %.1f MiB behind %s (at most %s MiB, '
                                 'postgres_switchover_max_lag_mb) (found: %s)'
                                 % (name, candidate, behind / 1048576.0, primary, max_lag_mb, _found(states, members)))
    others = [host for host in layout['standbys'] if host != candidate and not (states.get(host) or {}).get('fenced')]
    return {
        'old_primary': primary,
        'new_primary': candidate,
        'standbys': others,
        'synchronous_standbys': [primary if host == candidate else host for host in layout.get('synchronous_standbys') or []],
        'roles': _roles(members, candidate),
        'found': _found(states, members),
    }


def postgres_failover_plan(states, layout, accept_data_loss=False):
    """The plan of a failover (the primary is gone), or an error naming what the survey found.

    Refuses while any member is a live writable primary, when no standby answers,
    and (unless accept_data_loss) when no synchronous standby answers while the
    inventory has some: only they hold every acknowledged commit. Promotes the
    standby with the most WAL (a synchronous one on a tie), fences the old primary.
    """
    name = 'postgres_failover'
    members = _check_input(states, layout, name)
    primary = layout['primary']
    live = _live_primaries(states, members)
    if live:
        raise AnsibleFilterError('%s: refusing, %s %s a live writable primary (found: %s); failover is for a primary '
                                 'that is gone: stop it, or use playbooks/postgres_switchover.yml for a planned change'
                                 % (name, ', '.join(live), 'is' if len(live) == 1 else 'are each', _found(states, members)))
    candidates = [host for host in layout['standbys'] if (states.get(host) or {}).get('running')
                  and (states.get(host) or {}).get('in_recovery') and not states[host].get('fenced')]
    if not candidates:
        raise AnsibleFilterError('%s: refusing, no standby answers, nothing to promote (found: %s)'
                                 % (name, _found(states, members)))
    sync = layout.get('synchronous_standbys') or []
    if sync and not [host for host in candidates if host in sync] and not accept_data_loss:
        raise AnsibleFilterError('%s: refusing, no standby caught up: synchronous standby %s %s not answer, so %s may '
                                 'lack commits the primary acknowledged (found: %s); set '
                                 'postgres_failover_accept_data_loss=true to promote the most advanced anyway'
                                 % (name, ', '.join(sync), 'does' if len(sync) == 1 else 'do', ', '.join(candidates),
                                    _found(states, members)))
    new_primary = sorted(candidates, key=lambda host: (-(postgres_lsn(states[host].get('lsn')) or 0),
                                                       host not in sync, host))[0]
    # Standbys that are down follow the new primary when they start again.
    others = [host for host in layout['standbys'] if host != new_primary and not (states.get(host) or {}).get('fenced')]
    new_sync = [host for host in sync if host in others and host in candidates]
    if sync and not new_sync:
        new_sync = [host for host in others if host in candidates][:1]
    return {
        'old_primary': primary,
        'new_primary': new_primary,
        'standbys': others,
        'fence': [primary],
        'running_standbys': [host for host in others if host in candidates],
        'synchronous_standbys': new_sync,
        'roles': _roles(members, new_primary),
        'found': _found(states, members),
    }


def postgres_rejoin_plan(states, layout, host):
    """Whether host (an old primary) may be rewound to the live primary, or an error naming what was found.

    Refuses unless the inventory's primary is the one live primary and the inventory
    already calls host a standby (the operator updated it after the switchover or failover).
    """
    name = 'postgres_rejoin'
    members = _check_input(states, layout, name)
    primary = layout['primary']
    if host not in members:
        raise AnsibleFilterError('%s: refusing, postgres_rejoin_host %s is not a member of the cluster (%s)'
                                 % (name, host, ', '.join(members)))
    if host == primary:
        raise AnsibleFilterError('%s: refusing, the inventory still says %s is the primary; set its '
                                 'postgres_replication_role to standby and the promoted host\'s to primary (found: %s)'
                                 % (name, host, _found(states, members)))
    live = _live_primaries(states, members)
    if live != [primary]:
        raise AnsibleFilterError('%s: refusing, the inventory says %s is the primary but the live primaries are: %s (found: %s)'
                                 % (name, primary, ', '.join(live) or 'none', _found(states, members)))
    state = states.get(host) or {}
    if not state.get('reachable', True):
        raise AnsibleFilterError('%s: refusing, %s is unreachable' % (name, host))
    return {'primary': primary, 'host': host, 'found': _found(states, members)}


class FilterModule(object):
    def filters(self):
        return {
            'postgres_lsn': postgres_lsn,
            'postgres_switchover_plan': postgres_switchover_plan,
            'postgres_failover_plan': postgres_failover_plan,
            'postgres_rejoin_plan': postgres_rejoin_plan,
        }
