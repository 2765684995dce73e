"""etcd and Patroni filters: member URLs, the rules that keep failover lossless, switchover candidates."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.commons.infra.plugins.filter.patroni import (
    FilterModule, etcd_cluster, patroni_candidate_errors, patroni_errors, patroni_reinit_errors)

ADDRESSES = {'db1': '10.0.0.1', 'db2': '10.0.0.2', 'home0': '10.0.0.9'}
GOOD = {'members': ['db1', 'db2'], 'etcd_members': ['db1', 'db2', 'home0'], 'etcd_clients': [],
        'synchronous_mode': True, 'synchronous_mode_strict': True, 'maximum_lag_on_failover': 0,
        'ttl': 30, 'loop_wait': 10, 'retry_timeout': 10}


def test_registered_under_documented_names():
    filters = FilterModule().filters()
    assert filters['etcd_cluster'] is etcd_cluster
    assert filters['patroni_errors'] is patroni_errors
    assert filters['patroni_candidate_errors'] is patroni_candidate_errors
    assert filters['patroni_reinit_errors'] is patroni_reinit_errors


def test_three_members_on_their_addresses():
    cluster = etcd_cluster(['db1', 'db2', 'home0'], ADDRESSES)
    assert cluster['initial_cluster'] == 'db1=https://10.0.0.1:2380,db2=https://10.0.0.2:2380,home0=https://10.0.0.9:2380'
    assert cluster['client_urls'] == ['https://10.0.0.1:2379', 'https://10.0.0.2:2379', 'https://10.0.0.9:2379']


@pytest.mark.parametrize('hosts', [['db1', 'db2'], [], ['db1', 'db2', 'home0', 'db1']])
def test_an_even_or_empty_member_list_is_refused_naming_the_variable(hosts):
    with pytest.raises(AnsibleFilterError, match='etcd_group'):
        etcd_cluster(hosts, ADDRESSES)


def test_a_member_without_address_is_refused():
    with pytest.raises(AnsibleFilterError, match='no address known for member db3'):
        etcd_cluster(['db1', 'db2', 'db3'], ADDRESSES)


def test_ipv6_urls_are_bracketed():
    assert etcd_cluster(['db1'], {'db1': 'fd00::1'})['client_urls'] == ['https://[fd00::1]:2379']


def test_a_good_cluster_has_no_problems():
    assert patroni_errors(GOOD) == []


def test_strict_sync_with_one_member_is_refused():
    problems = patroni_errors(dict(GOOD, members=['db1'], etcd_members=['db1']))
    assert len(problems) == 1 and problems[0].startswith('patroni_synchronous_mode_strict: the cluster has 1 member')


def test_strict_without_sync_is_refused():
    assert patroni_errors(dict(GOOD, synchronous_mode=False)) == [
        'patroni_synchronous_mode_strict needs patroni_synchronous_mode true']


def test_a_patroni_host_etcd_does_not_admit_is_named():
    problems = patroni_errors(dict(GOOD, members=['db1', 'db2', 'db3']))
    assert problems and 'db3 is outside the etcd cluster' in problems[0] and 'etcd_client_groups' in problems[0]
    assert patroni_errors(dict(GOOD, members=['db1', 'db2', 'db3'], etcd_clients=['db3'])) == []


def test_ttl_shorter_than_a_slow_loop_is_refused():
    problems = patroni_errors(dict(GOOD, ttl=20))
    assert problems == [problems[0]] and problems[0].startswith('patroni_ttl (20) must be at least')


@pytest.mark.parametrize('value', ['ten', 1.5, True])
def test_timing_must_be_whole(value):
    assert 'patroni_loop_wait must be a whole number' in ' '.join(patroni_errors(dict(GOOD, loop_wait=value)))


MEMBERS = [
    {'Member': 'db1', 'Role': 'Leader', 'State': 'running'},
    {'Member': 'db2', 'Role': 'Sync Standby', 'State': 'streaming'},
    {'Member': 'db3', 'Role': 'Replica', 'State': 'starting'},
    {'Member': 'db4', 'Role': 'Replica', 'State': 'streaming'},
]


def test_a_streaming_standby_is_a_candidate():
    assert patroni_candidate_errors('db2', MEMBERS) == []


@pytest.mark.parametrize('candidate, message', [
    ('db9', 'db9 is not a member of the cluster (members: db1, db2, db3, db4)'),
    ('db1', 'db1 is already the leader'),
    ('db3', 'db3 is starting, not streaming'),
    ('', 'must name a member'),
    ('db4', 'db4 is not the synchronous standby (db2)'),
])
def test_a_bad_candidate_is_named(candidate, message):
    problems = patroni_candidate_errors(candidate, MEMBERS)
    assert problems and message in problems[0] and problems[0].startswith('patroni_switchover_candidate')


def test_an_async_replica_is_a_candidate_outside_synchronous_mode():
    assert patroni_candidate_errors('db4', MEMBERS, synchronous=False) == []


@pytest.mark.parametrize('member', ['db2', 'db3', 'db4'])
def test_a_replica_can_be_reinitialized(member):
    assert patroni_reinit_errors(member, MEMBERS) == []


@pytest.mark.parametrize('member, members, message', [
    ('db9', MEMBERS, 'db9 is not a member of the cluster (members: db1, db2, db3, db4)'),
    ('db1', MEMBERS, 'db1 is the leader; switch over first'),
    ('', MEMBERS, 'must name a member'),
    ('db2', [dict(m, Role='Replica') for m in MEMBERS], 'the cluster has no leader to clone db2 from'),
])
def test_a_member_that_cannot_be_reinitialized_is_named(member, members, message):
    problems = patroni_reinit_errors(member, members)
    assert problems and message in problems[0] and problems[0].startswith('patroni_reinit_member')
