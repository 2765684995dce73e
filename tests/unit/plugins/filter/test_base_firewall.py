"""base's firewall filters: contracts merged, rules resolved, and the preflight that refuses to cut a service."""
import json

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.commons.infra.plugins.filter.base_firewall import (
    FilterModule, base_firewall_allow_list, base_firewall_closed_ports, base_firewall_host_addresses,
    base_firewall_rules, base_firewall_unaddressed_hosts)

GROUPS = {'web': ['web1', 'web2'], 'db': ['db1', 'db2'], 'memcached': ['db1'], 'empty': []}
HOSTVARS = {
    'web1': {'ansible_host': '10.0.0.11'},
    'web2': {'ansible_facts': {'default_ipv4': {'address': '10.0.0.12'}, 'default_ipv6': {'address': 'fd00::12'}}},
    'db1': {'base_firewall_address': ['10.0.1.1'], 'ansible_host': 'db1.example.org'},
    'db2': {'ansible_host': 'db2.example.org'},
}
SS = '''tcp LISTEN 0 4096 0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=1,fd=3))
tcp LISTEN 0 4096 [::]:22 [::]:* users:(("sshd",pid=1,fd=4))
tcp LISTEN 0 244 0.0.0.0:5432 0.0.0.0:* users:(("postgres",pid=7,fd=5))
tcp LISTEN 0 1024 127.0.0.1:11211 0.0.0.0:* users:(("memcached",pid=8,fd=26))
tcp LISTEN 0 4096 *:8080 *:* users:(("docker-proxy",pid=9,fd=4))
udp UNCONN 0 0 127.0.0.53%lo:53 0.0.0.0:* users:(("systemd-resolve",pid=3,fd=13))
udp UNCONN 0 0 0.0.0.0%eth0:68 0.0.0.0:* users:(("dhclient",pid=4,fd=7))
tcp LISTEN 0 5 [::ffff:127.0.0.1]:9000 *:*
'''


def rule(name, port, **kw):
    return dict({'name': name, 'port': port, 'proto': 'tcp', 'from_groups': [], 'from_cidrs': []}, **kw)


def live(*rules, forward=True):
    """`nft -j list table` as nft 1.0.6 prints it, with one rule per (proto, port[, range])."""
    items = [{'metainfo': {'version': '1.0.6'}}, {'table': {'family': 'inet', 'name': 'commons_infra'}},
             {'chain': {'name': 'input', 'hook': 'input'}}]
    if forward:
        items.append({'chain': {'name': 'forward', 'hook': 'forward'}})
    for proto, port in rules:
        right = {'range': list(port)} if isinstance(port, tuple) else port
        items.append({'rule': {'chain': 'input', 'expr': [
            {'match': {'op': '==', 'left': {'payload': {'protocol': proto, 'field': 'dport'}}, 'right': right}},
            {'accept': None}]}})
    return json.dumps({'nftables': items})


def test_registered_under_documented_names():
    filters = FilterModule().filters()
    assert set(filters) == {'base_firewall_allow_list', 'base_firewall_closed_ports', 'base_firewall_host_addresses',
                            'base_firewall_rules', 'base_firewall_unaddressed_hosts'}


def test_contracts_merge_with_defaults_and_labels():
    rules = base_firewall_allow_list([
        ['base_firewall_allow', [{'name': 'node-exporter', 'port': 9100, 'from_cidrs': ['192.0.2.0/24']}]],
        ['base_firewall_contract_memcached', [{'name': 'memcached', 'port': 11211, 'from_groups': ['web']}]],
        ['base_firewall_contract_postgres', [{'name': 'postgres', 'port': 5432, 'from_groups': ['web', 'db']}]],
    ])
    assert [r['label'] for r in rules] == [
        'base_firewall_allow[0] (node-exporter)',
        'base_firewall_contract_memcached[0] (memcached)',
        'base_firewall_contract_postgres[0] (postgres)']
    assert rules[1]['proto'] == 'tcp' and rules[1]['from_cidrs'] == []


def test_a_contract_that_is_not_a_list_is_named():
    with pytest.raises(AnsibleFilterError, match='base_firewall_contract_x must be a list'):
        base_firewall_allow_list([['base_firewall_contract_x', {'name': 'x'}]])


def test_rules_resolve_groups_to_addresses_in_precedence_order():
    resolved = base_firewall_rules([rule('memcached', 11211, from_groups=['web', 'memcached'], from_cidrs=['10.9.9.9/8'])],
                                   GROUPS, HOSTVARS, 'web1')[0]
    # host bits of a CIDR are dropped (nft refuses them); base_firewall_address wins over ansible_host
    assert resolved['v4'] == ['10.0.0.0/8', '10.0.0.11', '10.0.0.12', '10.0.1.1']
    assert resolved['v6'] == ['fd00::12']
    assert resolved['self'] is True and resolved['anywhere'] is False and resolved['port'] == '11211'


def test_rule_without_sources_is_open_to_anyone_and_empty_group_to_no_one():
    anywhere, nobody = base_firewall_rules([rule('http', 80), rule('x', 81, from_groups=['empty'])], GROUPS, HOSTVARS, 'db1')
    assert anywhere['anywhere'] and not anywhere['self']
    assert not nobody['anywhere'] and nobody['v4'] == [] and nobody['v6'] == []


def test_members_without_address_are_named_for_fact_gathering():
    assert base_firewall_unaddressed_hosts([rule('pg', 5432, from_groups=['db', 'web'])], GROUPS, HOSTVARS) == ['db2']


def test_host_addresses_by_ip_inventory_name_or_ansible_host():
    assert base_firewall_host_addresses(['192.0.2.7', 'web1', 'db1.example.org', 'unknown.example.org'], HOSTVARS) == [
        '192.0.2.7', '10.0.0.11', '10.0.1.1']


# --- preflight -----------------------------------------------------------------------

def names(closed):
    return ['%d/%s' % (c['port'], c['proto']) for c in closed]


def test_first_switch_names_every_reachable_listener_without_a_contract():
    closed = base_firewall_closed_ports(SS, [], 22, '', [])
    # not ssh (base's own), not loopback (11211, 53, the v4-mapped loopback 9000)
    assert names(closed) == ['68/udp', '5432/tcp', '8080/tcp']
    assert closed[1]['processes'] == ['postgres'] and closed[1]['addresses'] == ['0.0.0.0']


def test_contracts_and_acknowledgements_cover_ports():
    closed = base_firewall_closed_ports(SS, [rule('postgres', 5432), rule('pub', '8000-8099')], 22, '', ['68/udp'])
    assert closed == []


def test_acknowledgement_without_protocol_covers_both():
    assert names(base_firewall_closed_ports(SS, [], 22, '', [5432, '8080', 68])) == []
    assert names(base_firewall_closed_ports(SS, [], 22, '', ['68/tcp'])) == ['68/udp', '5432/tcp', '8080/tcp']


def test_a_change_names_only_ports_the_loaded_table_opens_today():
    today = live(('tcp', 22), ('tcp', 5432), ('udp', (60, 70)))
    # 8080 is published by Docker but the loaded table filters forwarded traffic already: closed today
    assert names(base_firewall_closed_ports(SS, [], 22, today, [])) == ['68/udp', '5432/tcp']
    assert names(base_firewall_closed_ports(SS, [rule('postgres', 5432), rule('dhcp', 68, proto='udp')], 22, today, [])) == []


def test_published_ports_are_open_today_under_a_table_without_forward_chain():
    today = live(('tcp', 22), forward=False)
    assert names(base_firewall_closed_ports(SS, [], 22, today, [])) == ['8080/tcp']


def test_a_moved_ssh_port_is_named():
    assert '22/tcp' in names(base_firewall_closed_ports(SS, [rule('postgres', 5432)], 2222, '', ['68/udp', 8080]))


def test_ct_original_and_sets_in_the_loaded_table_count():
    today = json.dumps({'nftables': [{'chain': {'name': 'forward', 'hook': 'forward'}}, {'rule': {'expr': [
        {'match': {'op': '==', 'left': {'meta': {'key': 'l4proto'}}, 'right': 'tcp'}},
        {'match': {'op': '==', 'left': {'ct': {'key': 'proto-dst', 'dir': 'original'}}, 'right': {'set': [5432, {'range': [8000, 8099]}]}}},
        {'accept': None}]}}]})
    assert names(base_firewall_closed_ports(SS, [], 22, today, [])) == ['5432/tcp', '8080/tcp']


def test_bad_acknowledgement_is_named():
    with pytest.raises(AnsibleFilterError, match='base_firewall_close_ports'):
        base_firewall_closed_ports(SS, [], 22, '', ['http/tcp'])
