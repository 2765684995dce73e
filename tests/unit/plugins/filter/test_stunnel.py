"""stunnel_plan and stunnel_firewall_contract: who serves, who connects, and what is refused."""
import copy

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.commons.infra.plugins.filter.stunnel import (FilterModule, stunnel_firewall_contract,
                                                                      stunnel_plan)

KEY_A = 'a' * 64
KEY_B = 'b' * 64

GROUPS = {'all': ['srv', 'c1', 'c2', 'out'], 'ungrouped': [], 'stunnel_clients': ['c1', 'c2'], 'web': ['c1']}


def services():
    return [
        {'name': 'memcached', 'server': 'srv', 'accept_port': 11212, 'connect': '127.0.0.1:11211',
         'client_groups': ['stunnel_clients']},
        {'name': 'redis', 'server': 'c1', 'accept_port': 6380, 'connect': 6379, 'client_hosts': ['c2']},
    ]


def inventory(svc=None, **per_host):
    """hostvars where every host sees the same stunnel_services, unless per_host overrides one."""
    svc = services() if svc is None else svc
    hostvars = {h: {'stunnel_services': copy.deepcopy(svc)} for h in GROUPS['all']}
    for host, extra in per_host.items():
        hostvars[host].update(extra)
    return hostvars


def plan(host, svc=None, hostvars=None, **kwargs):
    svc = services() if svc is None else svc
    return stunnel_plan(svc, host, hostvars or inventory(svc), GROUPS, **kwargs)


def errors_of(svc=None, hostvars=None, host='srv', **kwargs):
    return ' | '.join(plan(host, svc, hostvars, **kwargs)['errors'])


def test_registered_under_documented_names():
    filters = FilterModule().filters()
    assert filters['stunnel_plan'] is stunnel_plan
    assert filters['stunnel_firewall_contract'] is stunnel_firewall_contract


def test_server_side_lists_one_identity_per_client():
    result = plan('srv')
    assert result['errors'] == []
    assert result['client'] == []
    assert result['server'] == [{
        'name': 'memcached', 'mode': 'server', 'instance': 'server-memcached', 'accept': '0.0.0.0:11212',
        'connect': '127.0.0.1:11211', 'identities': ['memcached@c1', 'memcached@c2'],
        'clients': ['c1', 'c2'], 'given': [], 'rotate': []}]


def test_host_can_be_server_of_one_service_and_client_of_another():
    result = plan('c1')
    assert [s['name'] for s in result['server']] == ['redis']
    assert result['server'][0]['connect'] == '6379'
    assert result['client'] == [{
        'name': 'memcached', 'mode': 'client', 'instance': 'client-memcached', 'accept': '127.0.0.1:11211',
        'connect': 'srv:11212', 'server': 'srv', 'identity': 'memcached@c1', 'given': False, 'rotate': False}]


def test_client_of_two_services_gets_one_identity_each():
    result = plan('c2')
    assert sorted(c['identity'] for c in result['client']) == ['memcached@c2', 'redis@c2']


def test_outsider_has_nothing_to_do():
    assert plan('out') == {'errors': [], 'server': [], 'client': [], 'keys': [], 'key_dirs': []}


def test_keys_are_made_on_the_server_for_server_and_client_alike():
    assert plan('srv')['keys'] == [
        {'server': 'srv', 'service': 'memcached', 'identity': 'memcached@c1', 'file': 'memcached/memcached@c1.psk',
         'given': False, 'rotate': False},
        {'server': 'srv', 'service': 'memcached', 'identity': 'memcached@c2', 'file': 'memcached/memcached@c2.psk',
         'given': False, 'rotate': False}]
    assert plan('c2', rotate=['redis@c2'])['keys'] == [
        {'server': 'srv', 'service': 'memcached', 'identity': 'memcached@c2', 'file': 'memcached/memcached@c2.psk',
         'given': False, 'rotate': False},
        {'server': 'c1', 'service': 'redis', 'identity': 'redis@c2', 'file': 'redis/redis@c2.psk',
         'given': False, 'rotate': True}]
    assert plan('c2')['key_dirs'] == [{'server': 'srv', 'service': 'memcached'}, {'server': 'c1', 'service': 'redis'}]
    assert plan('srv')['key_dirs'] == [{'server': 'srv', 'service': 'memcached'}]


def test_client_accept_and_server_address_override():
    svc = services()
    svc[0].update(client_accept='127.0.0.1:21211', server_address='10.0.0.5')
    client = plan('c2', svc)['client'][0]
    assert client['accept'] == '127.0.0.1:21211'
    assert client['connect'] == '10.0.0.5:11212'


def test_identity_names_client_name_when_set():
    hostvars = inventory(c1={'stunnel_client_name': 'web-1'})
    assert plan('c1', hostvars=hostvars)['client'][0]['identity'] == 'memcached@web-1'


def test_given_and_rotated_keys_are_marked_without_their_values():
    result = plan('srv', psks={'memcached@c1': KEY_A}, rotate=['memcached@c2'])
    assert result['server'][0]['given'] == ['memcached@c1']
    assert result['server'][0]['rotate'] == ['memcached@c2']
    assert KEY_A not in repr(result)


# The checks the issue names: each refused, naming the entry.

def test_psk_reused_between_two_connections_is_refused_without_printing_it():
    message = errors_of(psks={'memcached@c1': KEY_A, 'memcached@c2': KEY_A.upper()})
    assert 'stunnel_psks: memcached@c1 and memcached@c2 share one key' in message
    assert KEY_A not in message.lower()


def test_client_unknown_to_the_server_is_refused():
    # c2's group_vars add it to memcached; the server's own inventory does not list it.
    theirs = services()
    theirs[0]['client_groups'] = ['web']
    hostvars = inventory(srv={'stunnel_services': theirs})
    message = errors_of(hostvars=hostvars, host='c2')
    assert ('stunnel_services[0] (memcached): client(s) c2 listed for memcached, '
            'but server srv does not know them (its stunnel_services list c1)') in message


def test_service_unknown_to_the_server_is_refused():
    hostvars = inventory(srv={'stunnel_services': services()[1:]})
    assert 'stunnel_services[0] (memcached): server srv does not know service memcached' in errors_of(hostvars=hostvars)


def test_identity_collision_is_refused():
    hostvars = inventory(c1={'stunnel_client_name': 'web'}, c2={'stunnel_client_name': 'web'})
    message = errors_of(hostvars=hostvars)
    assert 'stunnel_services[0] (memcached): identity collision: c1 and c2 both get identity memcached@web' in message


@pytest.mark.parametrize('change,expected', [
    ({'accept_port': 70000}, 'stunnel_services[0] (memcached): accept_port must be a port 1-65535, got 70000'),
    ({'accept_port': 0}, 'accept_port must be a port 1-65535, got 0'),
    ({'accept_port': True}, 'accept_port must be a port 1-65535, got True'),
    ({'connect': '127.0.0.1:99999'}, 'connect port must be a port 1-65535'),
    ({'connect': 'no port here'}, 'connect must be a port 1-65535'),
    ({'client_groups': ['nosuch']}, 'client_groups names unknown inventory group(s) nosuch'),
    ({'client_groups': ['all']}, 'client_groups names unknown inventory group(s) all'),
    ({'client_hosts': ['ghost']}, 'client_hosts names unknown inventory host(s) ghost'),
    ({'client_groups': 'stunnel_clients'}, 'client_groups and client_hosts must be lists'),
    ({'client_groups': []}, 'has no clients'),
    ({'client_hosts': ['srv']}, 'server srv cannot be a client of its own service'),
    ({'server': 'ghost'}, "server 'ghost' is not an inventory host"),
    ({'name': 'Mem cached'}, "name must be lowercase letters"),
    ({'acept_port': 1}, 'unknown keys acept_port'),
    ({'client_accept': '127.0.0.1:0'}, 'client_accept port must be a port 1-65535'),
])
def test_bad_service_names_the_entry(change, expected):
    svc = services()
    svc[0].update(change)
    assert expected in errors_of(svc, inventory(svc))


def test_not_a_list_is_refused():
    assert 'stunnel_services must be a list' in errors_of('memcached', inventory([]))


def test_two_services_on_one_port_are_refused():
    svc = services()
    svc.append(dict(svc[0], name='memcached2'))
    message = errors_of(svc, inventory(svc))
    assert 'stunnel_services[2] (memcached2): srv port 11212 is taken by stunnel_services[0] (memcached)' in message
    assert 'client c1 already listens on port 11211 for stunnel_services[0] (memcached)' in message


def test_duplicate_names_are_refused():
    svc = services()
    svc.append(dict(svc[0], accept_port=11213, client_accept='127.0.0.1:11311'))
    assert 'stunnel_services[2] (memcached): name memcached is used by stunnel_services[0]' in errors_of(svc, inventory(svc))


def test_identity_too_long_is_refused():
    hostvars = inventory(c1={'stunnel_client_name': 'x' * 130})
    assert 'is longer than 128 characters' in errors_of(hostvars=hostvars)


@pytest.mark.parametrize('psks,rotate,expected', [
    ({'memcached@c1': 'short'}, [], 'stunnel_psks[memcached@c1]: the key must be 32 to 256 hexadecimal digits'),
    ({'memcached@c1': 'z' * 64}, [], 'stunnel_psks[memcached@c1]: the key must be'),
    ({'memcached@c9': KEY_A}, [], 'stunnel_psks: no service uses identity memcached@c9'),
    ({}, ['memcached@c9'], 'stunnel_rotate: no service uses identity memcached@c9'),
    ({'memcached@c1': KEY_A}, ['memcached@c1'], 'stunnel_rotate: memcached@c1 has its key in stunnel_psks'),
    ('key', [], 'stunnel_psks must be a dict'),
    ({}, 'memcached@c1', 'stunnel_rotate must be a list'),
])
def test_bad_keys_and_rotations(psks, rotate, expected):
    message = errors_of(psks=psks, rotate=rotate)
    assert expected in message
    assert 'zzzz' not in message


def test_errors_leave_the_plan_empty():
    svc = services()
    svc[0]['accept_port'] = 0
    result = plan('srv', svc, inventory(svc))
    assert result['server'] == [] and result['client'] == []


def test_firewall_contract_opens_accept_port_to_clients_only():
    hostvars = inventory(c2={'ansible_host': '10.0.0.2'})
    assert stunnel_firewall_contract(services(), 'srv', hostvars, GROUPS) == [
        {'name': 'stunnel memcached', 'port': 11212, 'proto': 'tcp', 'from_groups': ['stunnel_clients'], 'from_cidrs': []}]
    assert stunnel_firewall_contract(services(), 'c1', hostvars, GROUPS) == [
        {'name': 'stunnel redis', 'port': 6380, 'proto': 'tcp', 'from_groups': [], 'from_cidrs': ['10.0.0.2']}]
    assert stunnel_firewall_contract(services(), 'out', hostvars, GROUPS) == []


def test_firewall_contract_resolves_client_hosts():
    by_fact = inventory(c2={'ansible_facts': {'default_ipv4': {'address': '172.18.0.3'}}})
    assert stunnel_firewall_contract(services(), 'c1', by_fact, GROUPS)[0]['from_cidrs'] == ['172.18.0.3']
    explicit = inventory(c2={'base_firewall_address': ['192.0.2.7'], 'ansible_host': '10.0.0.2'})
    assert stunnel_firewall_contract(services(), 'c1', explicit, GROUPS)[0]['from_cidrs'] == ['192.0.2.7']


def test_firewall_contract_refuses_client_without_address():
    with pytest.raises(AnsibleFilterError, match='no address known for client c2'):
        stunnel_firewall_contract(services(), 'c1', inventory(c2={'ansible_host': 'c2.example'}), GROUPS)


def test_firewall_contract_refuses_bad_services():
    svc = services()
    svc[0]['accept_port'] = 70000
    with pytest.raises(AnsibleFilterError, match=r'stunnel_services\[0\] \(memcached\): accept_port'):
        stunnel_firewall_contract(svc, 'srv', inventory(svc), GROUPS)
