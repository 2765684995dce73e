# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""etcd and Patroni filters: the member list of an etcd cluster, the rules a
Patroni cluster must keep to fail over without losing an acknowledged write,
the check of a switchover candidate (documentation in the .yml file of each filter).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.six import string_types
from ansible_collections.commons.infra.plugins.filter.memory import whole_number

NAME = re.compile(r'^[a-zA-Z0-9][a-zA-Z0-9_.-]*$')


def etcd_cluster(hosts, addresses, peer_port=2380, client_port=2379, variable='etcd_group'):
    """The members of an etcd cluster from the hosts of its inventory group.

    Returns {'members': [{'name', 'address', 'peer_url', 'client_url'}], 'initial_cluster': str,
    'client_urls': [str]}; refuses an even or empty member list (an even count adds a member that
    can fail without adding one that may: 2 members lose quorum with either gone) and a member
    without an address, naming the variable.
    """
    if isinstance(hosts, string_types) or not isinstance(hosts, list):
        raise AnsibleFilterError('%s: expected a list of hosts, got %r' % (variable, hosts))
    if not hosts:
        raise AnsibleFilterError('%s: the group has no hosts; etcd needs 3 (or 5) members' % variable)
    if len(hosts) % 2 == 0:
        raise AnsibleFilterError(
            '%s: %d members (%s); etcd needs an odd number (3 or 5): with %d a quorum is %d, so the cluster survives '
            'no more failures than with %d'
            % (variable, len(hosts), ', '.join(hosts), len(hosts), len(hosts) // 2 + 1, len(hosts) - 1))
    members = []
    for host in hosts:
        address = (addresses or {}).get(host)
        if not address:
            raise AnsibleFilterError('%s: no address known for member %s' % (variable, host))
        if not NAME.match(host):
            raise AnsibleFilterError('%s: member name %r is not usable as an etcd member name' % (variable, host))
        shown = '[%s]' % address if ':' in address else address
        members.append({'name': host, 'address': address,
                        'peer_url': 'https://%s:%d' % (shown, int(peer_port)),
                        'client_url': 'https://%s:%d' % (shown, int(client_port))})
    return {
        'members': members,
        'initial_cluster': ','.join('%s=%s' % (m['name'], m['peer_url']) for m in members),
        'client_urls': [m['client_url'] for m in members],
    }


def patroni_errors(cluster, prefix='patroni_'):
    """Every reason a Patroni cluster as configured would not work or would lose writes; [] when none.

    ``cluster`` holds: members (Patroni hosts), etcd_members, etcd_clients (hosts etcd's firewall
    admits), synchronous_mode, synchronous_mode_strict, maximum_lag_on_failover, ttl, loop_wait,
    retry_timeout.
    """
    if not isinstance(cluster, dict):
        return ['patroni_errors expects a dict, got %r' % (cluster,)]
    problems = []
    members = list(cluster.get('members') or [])
    etcd_reach = set(cluster.get('etcd_members') or []) | set(cluster.get('etcd_clients') or [])
    outside = [host for host in members if host not in etcd_reach]
    if outside:
        problems.append(
            '%scluster_group: %s outside the etcd cluster\'s reach (neither a member of etcd_group nor a host of '
            'etcd_client_groups, so etcd\'s firewall refuses it); add its group to etcd_client_groups'
            % (prefix, ', '.join(outside) + (' is' if len(outside) == 1 else ' are')))
    strict = bool(cluster.get('synchronous_mode_strict'))
    sync = bool(cluster.get('synchronous_mode'))
    if strict and not sync:
        problems.append('%ssynchronous_mode_strict needs %ssynchronous_mode true' % (prefix, prefix))
    if strict and len(members) < 2:
        problems.append(
            '%ssynchronous_mode_strict: the cluster has %d member(s) (%s); strict synchronous replication needs at '
            'least 2, or every write waits for a standby that does not exist'
            % (prefix, len(members), ', '.join(members) or 'none'))
    timing = {}
    for key in ('ttl', 'loop_wait', 'retry_timeout', 'maximum_lag_on_failover'):
        try:
            timing[key] = whole_number(cluster.get(key), prefix + key, unit='')
        except AnsibleFilterError as error:
            problems.append(str(error))
    if len(timing) == 4:
        if min(timing['ttl'], timing['loop_wait'], timing['retry_timeout']) < 1:
            problems.append('%sttl, %sloop_wait and %sretry_timeout must be at least 1 second' % (prefix, prefix, prefix))
        elif timing['loop_wait'] + 2 * timing['retry_timeout'] > timing['ttl']:
            problems.append(
                '%sttl (%d) must be at least %sloop_wait + 2 * %sretry_timeout (%d): a leader that waits on a slow DCS '
                'would otherwise lose its key while it still runs as primary'
                % (prefix, timing['ttl'], prefix, prefix, timing['loop_wait'] + 2 * timing['retry_timeout']))
        if sync and timing['maximum_lag_on_failover'] < 0:
            problems.append('%smaximum_lag_on_failover must not be negative' % prefix)
    return problems


def cluster_member_problems(name, members, variable):
    """([why name is not a member of the cluster], the leaders' names) from ``patronictl list -f json``."""
    if not isinstance(members, list):
        return ['expected patronictl list -f json output, got %r' % (members,)], []
    names = [m.get('Member') for m in members]
    leaders = [m.get('Member') for m in members if m.get('Role') in ('Leader', 'Standby Leader')]
    if not name or not isinstance(name, string_types):
        return ['%s must name a member of the cluster (%s)' % (variable, ', '.join(names))], leaders
    if name not in names:
        return ['%s: %s is not a member of the cluster (members: %s)' % (variable, name, ', '.join(names) or 'none')], leaders
    return [], leaders


def patroni_candidate_errors(candidate, members, synchronous=True, variable='patroni_switchover_candidate'):
    """Why a switchover to candidate cannot happen now ([] when it can).

    ``members`` is ``patronictl list -f json``'s output: [{'Member', 'Role', 'State', 'Lag in MB'}].
    The candidate must be a member, not the leader, and a streaming standby; in synchronous
    mode the synchronous standby (Patroni refuses any other, which alone holds every commit).
    """
    problems, leaders = cluster_member_problems(candidate, members, variable)
    if problems:
        return problems
    if candidate in leaders:
        return ['%s: %s is already the leader' % (variable, candidate)]
    member = [m for m in members if m.get('Member') == candidate][0]
    if member.get('State') not in ('streaming', 'running'):
        return ['%s: %s is %s, not streaming; a switchover to it would wait or lose writes'
                % (variable, candidate, member.get('State'))]
    if synchronous and member.get('Role') != 'Sync Standby':
        syncs = [m.get('Member') for m in members if m.get('Role') == 'Sync Standby']
        return ['%s: %s is not the synchronous standby (%s); in synchronous mode only it holds every acknowledged '
                'commit' % (variable, candidate, ', '.join(syncs) or 'none yet')]
    if not leaders:
        return ['%s: the cluster has no leader to switch over from' % variable]
    return []


def patroni_reinit_errors(member, members, variable='patroni_reinit_member'):
    """Why member cannot be reinitialized now ([] when it can).

    ``members`` is ``patronictl list -f json``'s output. The member must be a replica of the
    cluster (reinit wipes its data directory and clones the leader again), and the cluster must
    have a leader to clone and, besides the member, another running member: reinitializing the
    only other copy of the data would leave the leader alone.
    """
    problems, leaders = cluster_member_problems(member, members, variable)
    if problems:
        return problems
    if member in leaders:
        return ['%s: %s is the leader; switch over first (playbooks/patroni_switchover.yml)' % (variable, member)]
    if not leaders:
        return ['%s: the cluster has no leader to clone %s from' % (variable, member)]
    return []


class FilterModule(object):
    def filters(self):
        return {
            'etcd_cluster': etcd_cluster,
            'patroni_errors': patroni_errors,
            'patroni_candidate_errors': patroni_candidate_errors,
            'patroni_reinit_errors': patroni_reinit_errors,
        }
