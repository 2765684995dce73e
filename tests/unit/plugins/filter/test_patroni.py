"""etcd and Patroni filters: member URLs, the rules that keep failover lossless, switchover candidates."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.commons.infra.plugins.filter.patroni import (
    FilterModule, etcd_cluster, patroni_adoption, patroni_base_conf, patroni_candidate_errors, patroni_errors,
    patroni_reinit_errors)

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


def survey(sysid=None, state=None, debian=False, masked=False, debian_active=False, patroni_active=False):
    """A member's survey output as validate.yml's shell task prints it."""
    lines = []
    if sysid:
        lines += ['pg_control version number:            1300',
                  'Database system identifier:           %s' % sysid,
                  'Database cluster state:               %s' % state]
    lines += ['debian config: %s' % ('yes' if debian else ''),
              'debian unit: %s' % ('masked' if masked else 'enabled-runtime' if debian else ''),
              'debian active: %s' % ('active' if debian_active else 'inactive'),
              'patroni active: %s' % ('active' if patroni_active else 'inactive')]
    return '\n'.join(lines)


TIER_PRIMARY = survey('7310000000000000001', 'in production', debian=True, debian_active=True)
TIER_STANDBY = survey('7310000000000000001', 'in archive recovery', debian=True, debian_active=True)
EMPTY = survey()
TIER = ['db1', 'db2', 'db3']


def test_adoption_filters_are_registered():
    filters = FilterModule().filters()
    assert filters['patroni_adoption'] is patroni_adoption
    assert filters['patroni_base_conf'] is patroni_base_conf


def test_the_tiers_primary_is_adopted_first_then_its_standby_and_an_empty_member_clones():
    plan = patroni_adoption({'db3': EMPTY, 'db2': TIER_STANDBY, 'db1': TIER_PRIMARY}, ['db3', 'db2', 'db1'], True)
    assert plan['errors'] == []
    assert plan['primary'] == 'db1' and plan['adopt'] == ['db1', 'db2']
    assert plan['system_identifier'] == '7310000000000000001'
    assert plan['surveys']['db2']['standby'] and not plan['surveys']['db1']['standby']


def test_a_standby_is_adopted_after_its_primary_went_to_patroni():
    adopted = survey('7310000000000000001', 'in production', debian=True, masked=True, patroni_active=True)
    plan = patroni_adoption({'db1': adopted, 'db2': TIER_STANDBY, 'db3': EMPTY}, TIER, True)
    assert plan['errors'] == [] and plan['primary'] is None and plan['adopt'] == ['db2']


def test_a_cluster_patroni_runs_alone_needs_no_adoption():
    running = survey('7310000000000000001', 'in production', patroni_active=True)
    replica = survey('7310000000000000001', 'in archive recovery', patroni_active=True)
    plan = patroni_adoption({'db1': running, 'db2': replica, 'db3': replica}, TIER)
    assert plan == dict(plan, errors=[], primary=None, adopt=[])


def test_adoption_waits_for_the_operators_consent():
    problems = patroni_adoption({'db1': TIER_PRIMARY, 'db2': TIER_STANDBY, 'db3': EMPTY}, TIER)['errors']
    assert len(problems) == 1 and problems[0].startswith('patroni_adopt_existing: db1, db2 are run by postgresql@')


@pytest.mark.parametrize('surveys, message', [
    ({'db1': TIER_PRIMARY, 'db2': TIER_STANDBY, 'db3': survey('7310000000000000999', 'in production', patroni_active=True)},
     'patroni_cluster_group: the members hold data of different clusters (system identifier 7310000000000000001 on '
     'db1, db2; system identifier 7310000000000000999 on db3)'),
    ({'db1': TIER_PRIMARY, 'db2': TIER_PRIMARY.replace('0001', '0002'), 'db3': EMPTY},
     'patroni_cluster_group: the members hold data of different clusters'),
    ({'db1': TIER_PRIMARY, 'db2': TIER_PRIMARY, 'db3': EMPTY},
     'patroni_cluster_group: db1, db2 are each a primary run by postgresql@'),
    ({'db1': TIER_STANDBY, 'db2': TIER_STANDBY, 'db3': EMPTY},
     'patroni_cluster_group: db1, db2 are a standby of a primary outside the group'),
    ({'db1': survey('7310000000000000001', 'shut down', debian=True), 'db2': TIER_STANDBY, 'db3': EMPTY},
     'patroni_cluster_group: the primary on db1 is stopped'),
    ({'db1': TIER_PRIMARY, 'db2': survey(debian=True, debian_active=True), 'db3': EMPTY},
     'patroni_cluster_group: db2 is configured by postgresql-common but without data'),
    ({'db1': TIER_PRIMARY, 'db2': survey('7310000000000000001', 'in production', patroni_active=True), 'db3': EMPTY},
     'patroni_cluster_group: Patroni already runs the cluster on db2, and db1 is a primary run by postgresql@'),
    ({'db1': survey('7310000000000000001', 'in production', debian=True, debian_active=True, patroni_active=True),
      'db2': EMPTY, 'db3': EMPTY},
     'patroni_cluster_group: db1 is run by postgresql@ and by Patroni at once'),
])
def test_an_adoption_that_could_lose_or_fork_data_is_refused(surveys, message):
    problems = patroni_adoption(surveys, TIER, True)['errors']
    assert any(problem.startswith(message) for problem in problems), problems


def test_adoption_input_must_be_surveys_and_members():
    with pytest.raises(AnsibleFilterError, match='patroni_adoption expects'):
        patroni_adoption({}, 'db1')


def test_the_base_conf_keeps_settings_but_not_the_lines_naming_files():
    text = '\n'.join(["data_directory = '/var/lib/postgresql/15/main'", "hba_file = '/etc/postgresql/15/main/pg_hba.conf'",
                      "ident_file = '/etc/postgresql/15/main/pg_ident.conf'", "external_pid_file = '/run/x.pid'",
                      "port = 5432", "ssl = on", "#include_dir = 'old'", "include_dir = 'conf.d'",
                      "include 'extra.conf'", "timezone = 'Etc/UTC'"])
    kept = patroni_base_conf(text, '/etc/postgresql/15/main/postgresql.conf').splitlines()
    assert kept[0].startswith('# The settings of /etc/postgresql/15/main/postgresql.conf')
    assert kept[2:] == ['port = 5432', 'ssl = on', "#include_dir = 'old'", "timezone = 'Etc/UTC'"]


def test_the_base_conf_needs_text():
    with pytest.raises(AnsibleFilterError, match='patroni_base_conf expects'):
        patroni_base_conf(None)
