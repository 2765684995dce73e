"""postgres filters: memory tuning, cluster layout and slot names."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.commons.infra.plugins.filter.postgres import (
    FilterModule, postgres_cluster, postgres_hba_errors, postgres_hba_sources, postgres_slot_name, postgres_tuning)


def test_registered_under_documented_names():
    filters = FilterModule().filters()
    assert filters['postgres_tuning'] is postgres_tuning
    assert filters['postgres_cluster'] is postgres_cluster
    assert filters['postgres_slot_name'] is postgres_slot_name


def test_tuning_for_a_1_gib_container():
    assert postgres_tuning({'total_mb': 24032, 'cgroup_limit_mb': 1024, 'usable_mb': 1024}) == {
        'max_connections': 100,
        'shared_buffers': '256MB',
        'effective_cache_size': '768MB',
        'maintenance_work_mem': '64MB',
        'work_mem': '2MB',
    }


def test_tuning_for_a_64_gib_server_caps_maintenance_work_mem():
    settings = postgres_tuning(65536, 200)
    assert settings['shared_buffers'] == '16384MB'
    assert settings['effective_cache_size'] == '49152MB'
    assert settings['maintenance_work_mem'] == '2048MB'
    assert settings['work_mem'] == '81MB'  # (65536 - 16384) // 600


def test_work_mem_follows_an_overridden_shared_buffers_and_never_drops_to_zero():
    assert postgres_tuning(1024, 100, shared_buffers_mb=512)['work_mem'] == '1MB'
    assert postgres_tuning(256, 5000)['work_mem'] == '1MB'


def test_each_value_can_be_overridden():
    settings = postgres_tuning(1024, 50, shared_buffers_mb=100, effective_cache_size_mb=200,
                               work_mem_mb=3, maintenance_work_mem_mb=32)
    assert settings == {'max_connections': 50, 'shared_buffers': '100MB', 'effective_cache_size': '200MB',
                        'work_mem': '3MB', 'maintenance_work_mem': '32MB'}


@pytest.mark.parametrize('memory,kwargs,message', [
    (1024, {'shared_buffers_mb': 4096, 'prefix': 'postgres_'},
     'postgres_shared_buffers_mb (4096 MiB) is larger than the usable memory of the host (1024 MiB)'),
    (1024, {'work_mem_mb': 1025}, 'work_mem_mb (1025 MiB) is larger'),
    (1024, {'effective_cache_size_mb': 0}, 'effective_cache_size_mb must be at least 1 MiB'),
    (1024, {'maintenance_work_mem_mb': 'lots'}, "maintenance_work_mem_mb must be a whole number, got 'lots'"),
    (1024, {'max_connections': 0, 'prefix': 'postgres_'}, 'postgres_max_connections must be at least 1'),
    (32, {}, 'too little for PostgreSQL'),
    ({'total_mb': 1024}, {}, 'with usable_mb'),
    (True, {}, 'memory must be a whole number'),
])
def test_tuning_refuses_bad_values_naming_them(memory, kwargs, message):
    with pytest.raises(AnsibleFilterError) as err:
        postgres_tuning(memory, **kwargs)
    assert message in str(err.value)


def test_cluster_layout():
    assert postgres_cluster({'db1': 'primary', 'db3': 'standby', 'db2': 'standby'}, ['db2']) == {
        'primary': 'db1', 'standbys': ['db2', 'db3'], 'synchronous_standbys': ['db2']}
    assert postgres_cluster({'db1': 'primary'}) == {'primary': 'db1', 'standbys': [], 'synchronous_standbys': []}


@pytest.mark.parametrize('members,sync,message', [
    ({'db1': 'primary', 'db2': 'primary'}, [], 'postgres_replication_role: a cluster has one primary, found 2: db1, db2'),
    ({'db2': 'standby'}, [], 'postgres_replication_role: db2 is a standby but no host of the cluster is primary'),
    ({'db1': 'master', 'db2': 'standby'}, [], "postgres_replication_role must be primary or standby: db1 ('master')"),
    ({'db1': 'primary', 'db2': 'standby'}, ['db1'], 'postgres_synchronous_standbys: db1 not a standby of the cluster'),
    ({'db1': 'primary'}, 'db2', 'postgres_synchronous_standbys must be a list'),
    ({}, [], 'expects a dict'),
])
def test_cluster_refuses_layouts_that_cannot_work(members, sync, message):
    with pytest.raises(AnsibleFilterError) as err:
        postgres_cluster(members, sync)
    assert message in str(err.value)


def test_slot_name():
    assert postgres_slot_name('ol-db2') == 'ol_db2'
    assert postgres_slot_name('PG.Db-3') == 'pg_db_3'
    with pytest.raises(AnsibleFilterError):
        postgres_slot_name('')


GROUPS = {'all': ['db1', 'web1', 'web2'], 'db': ['db1'], 'web': ['web1', 'web2'], 'ungrouped': []}
ADDRESSES = {'db1': '10.0.0.1', 'web1': '10.0.1.1', 'web2': '2001:db8::2'}


def test_hba_errors_none_for_good_rules():
    rules = [{'name': 'web', 'databases': ['ol'], 'users': ['ol'], 'from_groups': ['web']},
             {'name': 'office', 'databases': ['all'], 'users': ['ro'], 'from_cidrs': ['192.0.2.0/24', '2001:db8::/32', '192.0.2.7']}]
    assert postgres_hba_errors(rules, GROUPS) == []


@pytest.mark.parametrize('rule,message', [
    ({'name': 'x', 'databases': ['ol'], 'users': ['ol'], 'from_cidrs': ['10.0.0.300/24']},
     'postgres_hba[0] (x): from_cidrs has entries that are not CIDRs or IP addresses: 10.0.0.300/24'),
    ({'name': 'x', 'databases': ['ol'], 'users': ['ol'], 'from_cidrs': ['10/8']}, 'not CIDRs or IP addresses: 10/8'),
    ({'name': 'x', 'databases': ['ol'], 'users': ['ol'], 'from_cidrs': ['10.0.0.0/33']}, 'not CIDRs or IP addresses: 10.0.0.0/33'),
    ({'name': 'x', 'databases': ['ol'], 'users': ['ol'], 'from_cidrs': ['db.example.org']}, 'not CIDRs or IP addresses: db.example.org'),
    ({'name': 'x', 'databases': ['ol'], 'users': ['ol'], 'from_groups': ['solr']}, 'from_groups names unknown inventory group(s) solr'),
    ({'name': 'x', 'databases': 'ol', 'users': ['ol'], 'from_groups': ['web']}, 'databases must be a list'),
    ({'name': 'x', 'databases': [], 'users': ['ol'], 'from_groups': ['web']}, 'databases must name at least one'),
    ({'name': 'x', 'databases': ['ol'], 'users': ['ol']}, 'a rule open to nobody is a mistake'),
])
def test_hba_errors_name_the_rule(rule, message):
    problems = postgres_hba_errors([rule], GROUPS)
    assert any(message in problem for problem in problems), problems


def test_hba_errors_use_the_given_variable_name():
    assert postgres_hba_errors([{'name': 'x', 'databases': ['a'], 'users': ['a'], 'from_groups': ['nope']}], GROUPS,
                               'pgbouncer_hba')[0].startswith('pgbouncer_hba[0] (x):')


def test_hba_sources_expand_groups_and_normalise_cidrs():
    rule = {'from_groups': ['web', 'db', 'web'], 'from_cidrs': ['10.1.2.3/8', '192.0.2.7', '10.0.0.1/32']}
    assert postgres_hba_sources(rule, GROUPS, ADDRESSES) == [
        {'cidr': '10.0.1.1/32', 'source': 'web: web1'},
        {'cidr': '2001:db8::2/128', 'source': 'web: web2'},
        {'cidr': '10.0.0.1/32', 'source': 'db: db1'},
        {'cidr': '10.0.0.0/8', 'source': '10.1.2.3/8'},
        {'cidr': '192.0.2.7/32', 'source': '192.0.2.7'},
    ]


def test_hba_sources_refuse_a_host_without_address():
    with pytest.raises(AnsibleFilterError) as err:
        postgres_hba_sources({'from_groups': ['web']}, GROUPS, {'web1': '10.0.1.1'})
    assert 'no IP address known for web2 (group web)' in str(err.value)
