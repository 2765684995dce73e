"""nginx_plan: sites and zones filled in, and every bad input named."""
import copy

import pytest

from ansible_collections.commons.infra.plugins.filter.nginx import FilterModule, nginx_plan, parse_rate

ZONES = [{'name': 'pages', 'rate': '1r/s'}, {'name': 'api', 'rate': '180r/m', 'size': '20m'}]
SITES = [
    {'name': 'openlibrary', 'server_names': ['openlibrary.org', 'www.openlibrary.org'], 'upstream': ['127.0.0.1:8080'],
     'locations': [{'path': '/', 'limit': {'zone': 'pages', 'burst': 10}}, {'path': '/api/', 'limit': {'zone': 'api'}},
                   {'path': '/static/', 'root': '/var/www/ol'}],
     'includes': ['/etc/nginx/snippets/ol-*.conf']},
    {'name': 'covers', 'server_names': ['covers.openlibrary.org'], 'upstream': '10.0.0.5:8081', 'tls_mode': 'acme'},
]


def errors(sites=None, zones=None, **kwargs):
    kwargs.setdefault('acme_email', 'ops@example.org')
    return ' | '.join(nginx_plan(copy.deepcopy(SITES if sites is None else sites),
                                 copy.deepcopy(ZONES if zones is None else zones), **kwargs)['errors'])


def test_sites_are_filled_in():
    plan = nginx_plan(copy.deepcopy(SITES), copy.deepcopy(ZONES), acme_email='ops@example.org')
    assert plan['errors'] == []
    ol, covers = plan['sites']
    assert ol['tls'] and ol['redirect_http'] and ol['http_port'] == 80 and ol['https_port'] == 443
    assert ol['locations'][0] == {'path': '/', 'proxy': True, 'root': None, 'limit': {'zone': 'pages', 'burst': 10, 'nodelay': True},
                                  'auth_basic_user_file': None, 'includes': []}
    assert not ol['locations'][2]['proxy'] and ol['locations'][2]['root'] == '/var/www/ol'
    assert covers['upstream'] == ['10.0.0.5:8081'] and covers['locations'][0]['path'] == '/' and covers['tls_mode'] == 'acme'
    assert plan['zones'][0] == {'name': 'pages', 'rate': '1r/s', 'size': '10m', 'key': '$binary_remote_addr'}


@pytest.mark.parametrize('rate', ['5 per second', '1r/h', '0r/s', 'r/s', '1.5r/s', 10, None])
def test_rate_that_does_not_parse_is_named(rate):
    zones = copy.deepcopy(ZONES)
    zones[1]['rate'] = rate
    assert 'nginx_rate_zones[1] (api).rate must be a rate like 1r/s or 180r/m, got %r' % (rate,) in errors(zones=zones)


def test_parse_rate():
    assert parse_rate('180r/m') == 3.0 and parse_rate('1r/s') == 1.0 and parse_rate('1 r/s') is None


def test_two_sites_claiming_one_name_and_port_are_named():
    sites = copy.deepcopy(SITES)
    sites[1]['server_names'] = ['covers.openlibrary.org', 'WWW.openlibrary.org']
    message = errors(sites=sites)
    assert 'nginx_sites: server name www.openlibrary.org on port 80 is claimed by openlibrary, covers' in message
    assert 'on port 443 is claimed by openlibrary, covers' in message
    # the same name on other ports is fine
    sites[1].update(http_port=8080, https_port=8443)
    assert errors(sites=sites) == ''


def test_unknown_zone_and_location_problems_are_named():
    sites = copy.deepcopy(SITES)
    sites[0]['locations'][1]['limit'] = {'zone': 'search'}
    sites[0]['locations'].append({'path': 'static'})
    sites[0]['locations'].append({'path': '/x/', 'root': '/srv/../etc'})
    message = errors(sites=sites)
    assert "nginx_sites[0] (openlibrary).locations[1].limit.zone must name a zone of nginx_rate_zones (api, pages), got 'search'" in message
    assert "nginx_sites[0] (openlibrary).locations[3].path must be a prefix like /api/" in message
    assert 'locations[4].root must be an absolute directory' in message


@pytest.mark.parametrize('change, message', [
    ({'upstream': ['127.0.0.1']}, 'upstream must be "address:port"'),
    ({'upstream': ['10.0.0.300:80']}, 'upstream address must be an IP address or a host name'),
    ({'upstream': [':80']}, 'upstream must name an address'),
    ({'server_names': []}, 'server_names must list host names'),
    ({'server_names': ['bad name']}, 'server_names must list host names'),
    ({'https_port': 0}, 'https_port must be a port'),
    ({'tls_mode': 'letsencrypt'}, 'tls_mode must be one of selfsigned, acme'),
    ({'colour': 'red'}, 'has unknown keys: colour'),
])
def test_bad_site_keys_are_named(change, message):
    sites = copy.deepcopy(SITES)
    sites[0].update(change)
    assert 'nginx_sites[0] (openlibrary).' + message in errors(sites=sites) or 'nginx_sites[0] (openlibrary) ' + message in errors(sites=sites)


def test_acme_needs_an_address_and_proxy_needs_an_upstream():
    assert 'nginx_sites[1] (covers) uses ACME: nginx_acme_email must be set' in errors(acme_email='')
    sites = [{'name': 'static', 'server_names': ['s.example.org'], 'locations': [{'path': '/'}]}]
    assert 'nginx_sites[0] (static).locations[0] proxies, but the site has no upstream' in errors(sites=sites)


def test_registered():
    assert FilterModule().filters()['nginx_plan'] is nginx_plan
