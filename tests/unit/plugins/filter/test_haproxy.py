"""haproxy_plan: sections filled in from inventory groups, and every bad input named."""
import copy

import pytest

from ansible_collections.commons.infra.plugins.filter.haproxy import FilterModule, address_problem, haproxy_plan

GROUPS = {'all': ['w1', 'w2', 's1'], 'web': ['w1', 'w2'], 'solr': ['s1'], 'empty': []}
HOSTVARS = {'w1': {'haproxy_address': '10.0.0.11'}, 'w2': {'ansible_host': '10.0.0.12'}, 's1': {}}

FRONTENDS = [
    {'name': 'web', 'mode': 'http', 'bind': ['127.0.0.1:8080'], 'default_backend': 'web'},
    {'name': 'pg', 'mode': 'tcp', 'bind': ['0.0.0.0:5000'], 'default_backend': 'primary'},
]
BACKENDS = [
    {'name': 'web', 'mode': 'http', 'balance': 'roundrobin', 'group': 'web', 'port': 8080,
     'check': {'path': '/health'},
     'server_options': {'inter': '2s', 'rise': 2, 'fall': 3, 'slowstart': '10s', 'maxconn': 100, 'weight': 100}},
    {'name': 'primary', 'mode': 'tcp', 'balance': 'first', 'group': 'solr', 'port': 5432,
     'check': {'method': 'GET', 'path': '/primary', 'expect_status': 200, 'port': 8008}},
    {'name': 'static', 'mode': 'http', 'servers': [{'name': 'cdn', 'address': 'cdn.example.org', 'port': 80}]},
]


def plan(frontends=None, backends=None, groups=None, listens=None):
    return haproxy_plan(copy.deepcopy(FRONTENDS if frontends is None else frontends),
                        copy.deepcopy(BACKENDS if backends is None else backends),
                        GROUPS if groups is None else groups, HOSTVARS, listens=listens)


def errors_with(**change):
    backends = copy.deepcopy(BACKENDS)
    backends[0].update(change)
    return ' | '.join(plan(backends=backends)['errors'])


def test_servers_come_from_the_group_at_their_address():
    result = plan()
    assert result['errors'] == []
    web = result['backends'][0]
    assert [(s['name'], s['address'], s['port']) for s in web['servers']] == [('w1', '10.0.0.11', 8080), ('w2', '10.0.0.12', 8080)]
    primary = result['backends'][1]
    assert primary['servers'][0]['address'] == 's1'
    assert primary['check'] == {'method': 'GET', 'path': '/primary', 'expect_status': 200, 'port': 8008, 'host': None, 'ssl': False}
    assert result['backends'][2]['servers'][0]['address'] == 'cdn.example.org'


def test_unknown_group_is_named():
    assert "haproxy_backends[0] (web).group: no inventory group 'webs'" in errors_with(group='webs')


def test_empty_group_is_named():
    assert "haproxy_backends[0] (web).group: inventory group 'empty' has no hosts" in errors_with(group='empty')


@pytest.mark.parametrize('address', ['10.0.0.300', 'web 1', 'web_1.example', '-web', '', '10.0.0.1:80'])
def test_malformed_server_address_is_named(address):
    backends = copy.deepcopy(BACKENDS)
    backends[2]['servers'][0]['address'] = address
    errors = ' | '.join(plan(backends=backends)['errors'])
    assert 'haproxy_backends[2] (static).servers[0].address must be an IP address or a host name' in errors


def test_malformed_group_member_address_is_named():
    hostvars = dict(HOSTVARS, w1={'haproxy_address': '10.0.0.256'})
    errors = haproxy_plan(FRONTENDS, BACKENDS, GROUPS, hostvars)['errors']
    assert any('server address of host w1' in e and "'10.0.0.256'" in e for e in errors), errors


@pytest.mark.parametrize('address', ['10.0.0.5', '::1', 'fe80::1', 'ol-web1', 'ol-web1.example.org'])
def test_good_addresses(address):
    assert address_problem(address) is None


def test_unknown_balance_is_named():
    assert "haproxy_backends[0] (web).balance must be one of" in errors_with(balance='fastest')
    assert "got 'fastest'" in errors_with(balance='fastest')


def test_group_and_servers_are_exclusive_and_port_required():
    assert 'needs either group' in errors_with(servers=[{'name': 'x', 'address': '10.0.0.1', 'port': 1}])
    assert 'port is required with group' in errors_with(port=None)


@pytest.mark.parametrize('change, message', [
    ({'mode': 'udp'}, '.mode must be one of http, tcp'),
    ({'check': {'path': 'health'}}, '.check.path must be a path starting with /'),
    ({'check': {'path': '/h', 'expect_status': 700}}, '.check.expect_status must be an HTTP status'),
    ({'check': {'path': '/h', 'port': 70000}}, '.check.port must be a port'),
    ({'server_options': {'inter': 'two seconds'}}, '.server_options.inter must be a time'),
    ({'server_options': {'weight': 300}}, '.server_options.weight must be a whole number 0-256'),
    ({'server_options': {'rise': 0}}, '.server_options.rise must be a whole number'),
    ({'server_options': {'sticky': True}}, 'server_options has unknown keys: sticky'),
    ({'colour': 'red'}, 'has unknown keys: colour'),
])
def test_bad_backend_keys_are_named(change, message):
    assert 'haproxy_backends[0] (web)' + message in errors_with(**change) or message in errors_with(**change)


def test_frontend_problems_are_named():
    frontends = copy.deepcopy(FRONTENDS)
    frontends[0]['default_backend'] = 'nope'
    frontends[1]['bind'] = ['0.0.0.0:99999']
    errors = ' | '.join(plan(frontends=frontends)['errors'])
    assert "haproxy_frontends[0] (web).default_backend: no backend 'nope'" in errors
    assert 'haproxy_frontends[1] (pg).bind must be "address:port"' in errors
    frontends = copy.deepcopy(FRONTENDS)
    frontends[0]['default_backend'] = 'primary'
    assert "mode http, but its default_backend 'primary' is in mode tcp" in ' '.join(plan(frontends=frontends)['errors'])


def test_names_and_binds_used_twice():
    frontends = copy.deepcopy(FRONTENDS) + [dict(FRONTENDS[0])]
    errors = ' | '.join(plan(frontends=frontends)['errors'])
    assert "haproxy_frontends: name 'web' appears twice" in errors
    assert 'bind 127.0.0.1:8080 is claimed by web, web' in errors


def test_listen_sections():
    listens = [{'name': 'stats2', 'bind': ['127.0.0.1:9000'], 'servers': [{'name': 'a', 'address': '127.0.0.1', 'port': 80}]}]
    result = plan(listens=listens)
    assert result['errors'] == []
    assert result['listens'][0]['bind'] == ['127.0.0.1:9000']
    listens[0]['bind'] = '127.0.0.1:8080'
    assert 'bind 127.0.0.1:8080 is claimed by web, stats2' in ' '.join(plan(listens=listens)['errors'])


def test_registered():
    assert FilterModule().filters()['haproxy_plan'] is haproxy_plan
