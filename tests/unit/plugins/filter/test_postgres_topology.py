"""postgres_topology filters: the switchover and failover runbooks' decisions."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.commons.infra.plugins.filter.postgres_topology import (
    FilterModule, postgres_failover_plan, postgres_lsn, postgres_rejoin_plan, postgres_switchover_plan)

ADDRESSES = {'db1': '10.0.0.1', 'db2': '10.0.0.2', 'db3': '10.0.0.3'}
LAYOUT = {'primary': 'db1', 'standbys': ['db2', 'db3'], 'synchronous_standbys': ['db2']}


def primary(lsn='0/5000060'):
    return {'reachable': True, 'running': True, 'in_recovery': False, 'lsn': lsn, 'upstream': None,
            'streaming': False, 'fenced': False}


def standby(lsn='0/5000060', upstream='10.0.0.1', streaming=True):
    return {'reachable': True, 'running': True, 'in_recovery': True, 'lsn': lsn, 'upstream': upstream,
            'streaming': streaming, 'fenced': False}


def gone():
    return {'reachable': True, 'running': False, 'in_recovery': None, 'lsn': None, 'upstream': None,
            'streaming': False, 'fenced': False}


def healthy():
    return {'db1': primary(), 'db2': standby(), 'db3': standby()}


def test_registered_under_documented_names():
    filters = FilterModule().filters()
    assert filters['postgres_switchover_plan'] is postgres_switchover_plan
    assert filters['postgres_failover_plan'] is postgres_failover_plan
    assert filters['postgres_lsn'] is postgres_lsn


def test_lsn_is_compared_as_a_number():
    assert postgres_lsn('0/5000060') == 0x5000060
    assert postgres_lsn('1/0') == 1 << 32
    assert postgres_lsn('1/0') > postgres_lsn('0/FFFFFFFF')
    assert postgres_lsn(None) is None
    with pytest.raises(AnsibleFilterError, match='WAL location'):
        postgres_lsn('5000060')


# -- switchover -------------------------------------------------------------------

def test_switchover_promotes_the_synchronous_standby_and_the_old_primary_takes_its_place():
    plan = postgres_switchover_plan(healthy(), LAYOUT, ADDRESSES)
    assert plan['old_primary'] == 'db1'
    assert plan['new_primary'] == 'db2'
    assert plan['standbys'] == ['db3']
    assert plan['synchronous_standbys'] == ['db1']
    assert plan['roles'] == {'db1': 'standby', 'db2': 'primary', 'db3': 'standby'}


def test_switchover_without_synchronous_standbys_picks_the_most_advanced():
    states = healthy()
    states['db3']['lsn'] = '0/5000070'
    layout = dict(LAYOUT, synchronous_standbys=[])
    assert postgres_switchover_plan(states, layout, ADDRESSES)['new_primary'] == 'db3'


def test_switchover_to_a_chosen_standby():
    plan = postgres_switchover_plan(healthy(), LAYOUT, ADDRESSES, candidate='db3')
    assert plan['new_primary'] == 'db3'
    assert plan['standbys'] == ['db2']
    assert plan['synchronous_standbys'] == ['db2']


def test_switchover_refuses_two_live_primaries_naming_them():
    states = healthy()
    states['db3'] = primary()
    with pytest.raises(AnsibleFilterError, match='2 members are live primaries: db1, db3') as error:
        postgres_switchover_plan(states, LAYOUT, ADDRESSES)
    assert 'db2: standby at 0/5000060' in str(error.value)


def test_switchover_refuses_when_the_inventory_names_another_primary():
    states = {'db1': standby(upstream='10.0.0.2'), 'db2': primary(), 'db3': standby(upstream='10.0.0.2')}
    with pytest.raises(AnsibleFilterError, match='the inventory says db1 is the primary .* but the live primary is db2'):
        postgres_switchover_plan(states, LAYOUT, ADDRESSES)


def test_switchover_refuses_without_a_live_primary():
    states = healthy()
    states['db1'] = gone()
    with pytest.raises(AnsibleFilterError, match='no member is a live primary .*db1: not running.*postgres_failover.yml'):
        postgres_switchover_plan(states, LAYOUT, ADDRESSES)


def test_switchover_refuses_a_candidate_that_is_behind():
    states = healthy()
    states['db1']['lsn'] = '0/9000000'
    with pytest.raises(AnsibleFilterError, match=r'no standby caught up: db2 is 64.0 MiB behind db1'):
        postgres_switchover_plan(states, LAYOUT, ADDRESSES)
    assert postgres_switchover_plan(states, LAYOUT, ADDRESSES, max_lag_mb=100)['new_primary'] == 'db2'


def test_switchover_refuses_a_candidate_that_does_not_stream_from_the_primary():
    states = healthy()
    states['db2'] = standby(streaming=False)
    with pytest.raises(AnsibleFilterError, match='db2 does not stream from db1 .*db2: standby at 0/5000060, not streaming'):
        postgres_switchover_plan(states, LAYOUT, ADDRESSES, candidate='db2')
    # without a named candidate, the streaming one is taken
    assert postgres_switchover_plan(states, LAYOUT, ADDRESSES)['new_primary'] == 'db3'


def test_switchover_refuses_a_candidate_outside_the_cluster():
    with pytest.raises(AnsibleFilterError, match='postgres_switchover_candidate db9 is not a standby of the cluster'):
        postgres_switchover_plan(healthy(), LAYOUT, ADDRESSES, candidate='db9')


def test_switchover_refuses_when_no_standby_streams():
    states = {'db1': primary(), 'db2': gone(), 'db3': standby(upstream='10.9.9.9')}
    with pytest.raises(AnsibleFilterError, match='no standby streams from db1'):
        postgres_switchover_plan(states, LAYOUT, ADDRESSES)


# -- failover ---------------------------------------------------------------------

def failed_primary():
    states = healthy()
    states['db1'] = gone()
    return states


def test_failover_promotes_the_most_advanced_standby_and_fences_the_old_primary():
    states = failed_primary()
    states['db3']['lsn'] = '0/5000100'
    plan = postgres_failover_plan(states, LAYOUT)
    assert plan['new_primary'] == 'db3'
    assert plan['fence'] == ['db1']
    assert plan['standbys'] == ['db2']
    assert plan['synchronous_standbys'] == ['db2']
    assert plan['roles'] == {'db1': 'standby', 'db2': 'standby', 'db3': 'primary'}


def test_failover_prefers_the_synchronous_standby_on_a_tie_and_keeps_a_synchronous_standby():
    plan = postgres_failover_plan(failed_primary(), LAYOUT)
    assert plan['new_primary'] == 'db2'
    assert plan['standbys'] == ['db3']
    assert plan['synchronous_standbys'] == ['db3']


def test_failover_compares_lsns_as_numbers_not_strings():
    states = failed_primary()
    states['db2']['lsn'] = '0/9000000'
    states['db3']['lsn'] = '0/10000000'
    assert postgres_failover_plan(states, LAYOUT)['new_primary'] == 'db3'


def test_failover_refuses_while_a_primary_is_live():
    with pytest.raises(AnsibleFilterError, match='db1 is a live writable primary .*postgres_switchover.yml'):
        postgres_failover_plan(healthy(), LAYOUT)


def test_failover_refuses_a_standby_that_already_is_a_primary():
    states = failed_primary()
    states['db3'] = primary()
    with pytest.raises(AnsibleFilterError, match='db3 is a live writable primary'):
        postgres_failover_plan(states, LAYOUT)


def test_failover_refuses_when_no_standby_answers():
    states = {'db1': gone(), 'db2': gone(), 'db3': dict(gone(), reachable=False)}
    with pytest.raises(AnsibleFilterError, match='no standby answers.*db3: unreachable'):
        postgres_failover_plan(states, LAYOUT)


def test_failover_refuses_when_no_synchronous_standby_answers_unless_told():
    states = failed_primary()
    states['db2'] = gone()
    with pytest.raises(AnsibleFilterError, match='no standby caught up: synchronous standby db2 does not answer'):
        postgres_failover_plan(states, LAYOUT)
    plan = postgres_failover_plan(states, LAYOUT, accept_data_loss=True)
    assert plan['new_primary'] == 'db3'
    assert plan['standbys'] == ['db2']


def test_a_fenced_member_is_neither_primary_nor_candidate():
    states = failed_primary()
    states['db1'] = dict(primary(), fenced=True)
    states['db3']['fenced'] = True
    plan = postgres_failover_plan(states, LAYOUT)
    assert plan['new_primary'] == 'db2'
    assert plan['standbys'] == []


def test_input_without_a_primary_in_the_inventory_is_refused():
    with pytest.raises(AnsibleFilterError, match='names no primary'):
        postgres_failover_plan(healthy(), {'primary': None, 'standbys': ['db2']})


# -- rejoin -----------------------------------------------------------------------

def after_failover():
    """db2 promoted, db1 fenced, the inventory updated."""
    states = {'db1': dict(gone(), fenced=True), 'db2': primary(), 'db3': standby(upstream='10.0.0.2')}
    layout = {'primary': 'db2', 'standbys': ['db1', 'db3'], 'synchronous_standbys': ['db3']}
    return states, layout


def test_rejoin_of_the_fenced_old_primary():
    states, layout = after_failover()
    plan = postgres_rejoin_plan(states, layout, 'db1')
    assert (plan['primary'], plan['host']) == ('db2', 'db1')


def test_rejoin_refuses_while_the_inventory_still_calls_the_host_primary():
    states, dummy = after_failover()
    with pytest.raises(AnsibleFilterError, match='the inventory still says db1 is the primary'):
        postgres_rejoin_plan(states, LAYOUT, 'db1')


def test_rejoin_refuses_without_exactly_the_inventory_primary_live():
    states, layout = after_failover()
    states['db2'] = gone()
    with pytest.raises(AnsibleFilterError, match='the live primaries are: none'):
        postgres_rejoin_plan(states, layout, 'db1')
    with pytest.raises(AnsibleFilterError, match='db9 is not a member'):
        postgres_rejoin_plan(states, layout, 'db9')
