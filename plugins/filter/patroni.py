# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""etcd and Patroni filters: the member list of an etcd cluster, the rules a
Patroni cluster must keep to fail over without losing an acknowledged write,
the check of a switchover candidate, the adoption of a cluster the PostgreSQL tier built
(documentation in the .yml file of each filter).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.six import string_types
from ansible_collections.commons.infra.plugins.filter.memory import whole_number

NAME = re.compile(r'^[a-zA-Z0-9][a-zA-Z0-9_.-]*$')
SURVEY_LINE = re.compile(r'^([^:]+):\s*(.*?)\s*$')
CONF_KEY = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(?:=|\s|$)')
# pg_controldata's states of a standby's data; any other state with data is a primary's.
STANDBY_STATES = ('shut down in recovery', 'in archive recovery')
# Settings of postgresql-common's postgresql.conf that name its files: under Patroni the
# data directory holds pg_hba.conf and pg_ident.conf, and conf.d (the postgres role's
# settings, primary_conninfo of a standby) is replaced by Patroni's parameters.
FILE_SETTINGS = ('data_directory', 'hba_file', 'ident_file', 'external_pid_file', 'include_dir', 'include',
                 'include_if_exists')


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


def member_survey(text):
    """One member's data and who runs it, from the survey's output.

    The output is ``pg_controldata`` (nothing when the data directory is empty) followed by the lines
    ``debian config: yes``, ``debian unit: <systemctl is-enabled>``, ``debian active: <systemctl is-active>``
    and ``patroni active: <systemctl is-active>``.
    """
    fields = {}
    for line in (text or '').splitlines():
        match = SURVEY_LINE.match(line)
        if match:
            fields[match.group(1).strip().lower()] = match.group(2)
    state = fields.get('database cluster state') or None
    return {
        'system_identifier': fields.get('database system identifier') or None,
        'state': state,
        'standby': state in STANDBY_STATES,
        'debian_config': fields.get('debian config') == 'yes',
        'debian_masked': fields.get('debian unit') == 'masked',
        'debian_active': fields.get('debian active') == 'active',
        'patroni_active': fields.get('patroni active') == 'active',
    }


def _hosts(hosts):
    return ', '.join(hosts) + (' is' if len(hosts) == 1 else ' are')


def patroni_adoption(surveys, members, allowed=False, service='postgresql@', variable='patroni_cluster_group'):
    """Which members the PostgreSQL tier built and Patroni adopts, and why it cannot ([] errors when it can).

    ``surveys`` maps each member to its survey's output (see member_survey). Returns {'errors': [str],
    'primary': the member whose primary is adopted first or None, 'adopt': [members handed over, primary
    first], 'system_identifier': the data's identifier or None, 'surveys': {member: survey}}.
    """
    if not isinstance(surveys, dict) or isinstance(members, string_types) or not isinstance(members, list):
        raise AnsibleFilterError('patroni_adoption expects {member: survey output} and the member list')
    found = dict((host, member_survey(surveys.get(host))) for host in members)
    with_data = [host for host in members if found[host]['system_identifier']]
    clusters = {}
    for host in with_data:
        clusters.setdefault(found[host]['system_identifier'], []).append(host)
    # A member still run by postgresql-common (its unit not masked) that Patroni does not run yet.
    pending = [host for host in members if found[host]['debian_config'] and not found[host]['debian_masked']
               and not found[host]['patroni_active']]
    primaries = [host for host in pending if host in with_data and not found[host]['standby']]
    patroni_run = [host for host in with_data if found[host]['patroni_active']]
    problems = []
    if len(clusters) > 1:
        holders = '; '.join('system identifier %s on %s' % (sysid, ', '.join(hosts))
                            for sysid, hosts in sorted(clusters.items()))
        problems.append(
            '%s: the members hold data of different clusters (%s); Patroni runs one cluster and would refuse or '
            'overwrite the others: empty postgres_data_directory on the members to clone, or take them out of the '
            'group' % (variable, holders))
    both = [host for host in members if found[host]['debian_active'] and found[host]['patroni_active']]
    if both:
        problems.append('%s: %s run by %s and by Patroni at once; stop one of them by hand first'
                        % (variable, _hosts(both), service))
    if pending and not allowed:
        problems.append(
            'patroni_adopt_existing: %s run by %s (built by the PostgreSQL tier); set patroni_adopt_existing: true '
            'to hand it over to Patroni with its data (writes stop from the stop of %s until Patroni leads), or '
            'take it out of %s' % (_hosts(pending), service, service, variable))
    empty = [host for host in pending if host not in with_data]
    if empty:
        problems.append('%s: %s configured by postgresql-common but without data in postgres_data_directory; '
                        'nothing to adopt: drop that cluster (pg_dropcluster) or fix postgres_data_directory'
                        % (variable, _hosts(empty)))
    if len(primaries) > 1:
        problems.append('%s: %s each a primary run by %s; Patroni adopts one primary: make the others its '
                        'standbys or take them out of the group' % (variable, _hosts(primaries), service))
    elif primaries and patroni_run:
        problems.append('%s: Patroni already runs the cluster on %s, and %s a primary run by %s: adopting it would '
                        'make two writable primaries' % (variable, ', '.join(patroni_run), _hosts(primaries), service))
    if pending and not primaries and not patroni_run and with_data:
        problems.append('%s: %s a standby of a primary outside the group (no member holds primary data); add the '
                        'PostgreSQL tier\'s primary to the group so it is adopted first'
                        % (variable, _hosts([host for host in pending if host in with_data])))
    stopped = [host for host in primaries if not found[host]['debian_active']]
    if stopped:
        problems.append('%s: the primary on %s stopped; start it (systemctl start %s) so the users Patroni needs '
                        'are made before the handover' % (variable, _hosts(stopped), service))
    adopt = [host for host in pending if host in with_data]
    return {
        'errors': problems,
        'primary': primaries[0] if len(primaries) == 1 else None,
        'adopt': sorted(adopt, key=lambda host: host not in primaries),
        'system_identifier': list(clusters)[0] if len(clusters) == 1 else None,
        'surveys': found,
    }


def patroni_base_conf(text, source='postgresql.conf'):
    """postgresql-common's postgresql.conf as Patroni's postgresql.base.conf: every setting but those naming files."""
    if not isinstance(text, string_types):
        raise AnsibleFilterError('patroni_base_conf expects the text of postgresql.conf, got %r' % (text,))
    kept = ['# The settings of %s when Patroni adopted the cluster, without the lines that name its files'
            % source, '# (%s); Patroni\'s own parameters come after them.' % ', '.join(FILE_SETTINGS)]
    for line in text.splitlines():
        match = CONF_KEY.match(line)
        if not (match and match.group(1).lower() in FILE_SETTINGS):
            kept.append(line)
    return '\n'.join(kept) + '\n'


class FilterModule(object):
    def filters(self):
        return {
            'etcd_cluster': etcd_cluster,
            'patroni_errors': patroni_errors,
            'patroni_candidate_errors': patroni_candidate_errors,
            'patroni_reinit_errors': patroni_reinit_errors,
            'patroni_adoption': patroni_adoption,
            'patroni_base_conf': patroni_base_conf,
        }
