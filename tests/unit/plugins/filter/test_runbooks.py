"""Runbook filters: the upgrade plan, capacity before a drain, package changes, the report,
and the memcached server list swap with its cold share."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.commons.infra.plugins.filter.runbooks import (
    FilterModule, memcached_cold_share, memcached_replace_servers, package_changes, rolling_upgrade_capacity,
    rolling_upgrade_plan, rolling_upgrade_report)

INVENTORY = ['ol-dev', 'ol-web1', 'ol-web2', 'ol-solr1', 'ol-www0', 'ol-db1']
ORDER = ['ol-dev', 'ol-web1', 'ol-web2', 'ol-solr1', 'ol-www0']


def test_registered_under_their_documented_names():
    filters = FilterModule().filters()
    assert filters['rolling_upgrade_plan'] is rolling_upgrade_plan
    assert filters['memcached_cold_share'] is memcached_cold_share


def test_plan_keeps_the_inventory_order_not_the_alphabet():
    assert rolling_upgrade_plan(['ol-web2', 'ol-web1'], INVENTORY) == ['ol-web2', 'ol-web1']


def test_plan_resumes_at_the_host_named():
    assert rolling_upgrade_plan(ORDER, INVENTORY, resume_from='ol-web2') == ['ol-web2', 'ol-solr1', 'ol-www0']


def test_plan_leaves_out_hosts_outside_the_limit_but_keeps_the_order():
    assert rolling_upgrade_plan(ORDER, INVENTORY, play_hosts=['ol-www0', 'ol-web1']) == ['ol-web1', 'ol-www0']


@pytest.mark.parametrize('order, resume, message', [
    ([], None, 'non-empty list'),
    ('ol-web1', None, 'non-empty list'),
    (['ol-web1', 'ol-web1'], None, 'names ol-web1 more than once'),
    (['ol-web1', 'ol-web9'], None, 'names ol-web9, not in the inventory'),
    (ORDER, 'ol-db1', 'rolling_upgrade_resume_from is ol-db1'),
])
def test_plan_refuses_bad_orders(order, resume, message):
    with pytest.raises(AnsibleFilterError, match=message):
        rolling_upgrade_plan(order, INVENTORY, resume_from=resume)


def row(server, backend='web', up=True, drain=False, maint=False, status='UP'):
    return {'server': server, 'backend': backend, 'up': up, 'drain': drain, 'maint': maint, 'status': status}


def test_capacity_ok_when_another_server_serves():
    assert rolling_upgrade_capacity([row('ol-web1')], [row('ol-web2')]) == []


@pytest.mark.parametrize('peer', [
    row('ol-web2', up=False, status='DOWN'), row('ol-web2', drain=True, status='DRAIN'),
    row('ol-web2', maint=True, status='MAINT'), row('ol-web2', backend='api')])
def test_capacity_refused_when_no_other_server_serves_its_backend(peer):
    problems = rolling_upgrade_capacity([row('ol-web1')], [peer])
    assert len(problems) == 1 and problems[0].startswith('backend web: 0 other server(s) in service')


def test_capacity_counts_each_peer_once_across_edge_hosts_and_checks_every_backend():
    own = [row('ol-web1'), row('ol-web1', backend='api')]
    peers = [row('ol-web2'), row('ol-web2'), row('ol-web3', backend='api')]
    assert rolling_upgrade_capacity(own, peers, 2) == [
        'backend api: 1 other server(s) in service (ol-web3 (UP)), 2 needed',
        'backend web: 1 other server(s) in service (ol-web2 (UP)), 2 needed']
    with pytest.raises(AnsibleFilterError, match='whole number'):
        rolling_upgrade_capacity(own, peers, -1)


def test_package_changes_upgraded_installed_removed():
    before = 'ii  rb-canary 1.0\nii  old 2\nii  same 3\nrc  gone 4\n'
    after = 'ii  rb-canary 1.1\nii  new 1\nii  same 3\nrc  gone 4\n'
    assert package_changes(before, after) == ['new - -> 1', 'old 2 -> -', 'rb-canary 1.0 -> 1.1']
    assert package_changes(before, before) == []


def test_report_has_a_row_per_host_and_the_changes():
    text = rolling_upgrade_report([
        {'host': 'ol-web2', 'outcome': 'ok', 'packages': ['a 1 -> 2'], 'reboot': 'yes (reboot)', 'health': '1 URL(s) 200',
         'duration': 42.5},
        {'host': 'ol-web1', 'outcome': 'failed', 'packages': [], 'reboot': 'no', 'health': 'failed', 'duration': 9,
         'message': 'Stopped at ol-web1 | resume'}], title='Rolling upgrade X')
    lines = text.splitlines()
    assert lines[0] == '# Rolling upgrade X'
    assert '| 1 | ol-web2 | ok | 1 | yes (reboot) | 1 URL(s) 200 | 42.5 |' in lines
    assert '| 2 | ol-web1 | failed | 0 | no | failed | 9 |' in lines
    assert '- a 1 -> 2' in lines and '- no package changed' in lines and 'Stopped at ol-web1 \\| resume' not in lines
    assert 'Stopped at ol-web1 | resume' in lines


def test_replace_keeps_the_position_of_the_old_server():
    servers = ['ol-mem0:11211', 'ol-mem1:11211', 'ol-mem2:11211']
    assert memcached_replace_servers(servers, 'ol-mem1', 'ol-mem3:11211') == [
        'ol-mem0:11211', 'ol-mem3:11211', 'ol-mem2:11211']


@pytest.mark.parametrize('old, new, message', [
    ('ol-mem9', 'ol-mem3:11211', 'ol-mem9 is not in'),
    ('ol-mem1', 'ol-mem0:11211', 'ol-mem0:11211 is already in')])
def test_replace_refuses_unknown_old_and_present_new(old, new, message):
    with pytest.raises(AnsibleFilterError, match=message):
        memcached_replace_servers(['ol-mem0:11211', 'ol-mem1:11211'], old, new)


@pytest.mark.parametrize('count', [2, 3, 4, 8])
def test_replacing_one_of_n_in_place_makes_one_nth_of_the_keys_cold_with_modulo_hashing(count):
    old = ['mem%d:11211' % number for number in range(count)]
    new = memcached_replace_servers(old, 'mem1', 'mem-new:11211')
    # Exactly the old server's keys move: its share of the hash space, 1/N (sampling noise aside).
    assert abs(memcached_cold_share(old, new) - 1.0 / count) < 0.02


def test_with_modulo_hashing_a_reordered_list_would_make_most_keys_cold():
    old = ['mem%d:11211' % number for number in range(4)]
    appended = [server for server in old if not server.startswith('mem1:')] + ['mem-new:11211']
    assert memcached_cold_share(old, appended) > 0.6


@pytest.mark.parametrize('count', [2, 4, 8])
def test_with_ketama_hashing_the_new_name_takes_its_own_share_too(count):
    # The old server's keys move (1/N), and the new name's points take about 1/N from the others:
    # about 2/N - 1/N^2 of the keys are cold.
    old = ['mem%d:11211' % number for number in range(count)]
    new = memcached_replace_servers(old, 'mem1', 'mem-new:11211')
    expected = 2.0 / count - 1.0 / count ** 2
    assert abs(memcached_cold_share(old, new, hashing='ketama') - expected) < 0.3 * expected


def test_no_change_no_cold_key_and_a_new_list_everything_cold():
    servers = ['a:11211', 'b:11211']
    assert memcached_cold_share(servers, servers) == 0
    assert memcached_cold_share(servers, servers, hashing='ketama') == 0
    assert memcached_cold_share(['a:11211'], ['b:11211']) == 1
    with pytest.raises(AnsibleFilterError, match='modulo or ketama'):
        memcached_cold_share(servers, servers, hashing='crc')
