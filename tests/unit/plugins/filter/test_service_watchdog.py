import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.commons.infra.plugins.filter.service_watchdog import (
    duration_seconds, service_watchdog_errors, service_watchdog_plan)

DEFAULTS = {'interval': '60s', 'timeout': '3s', 'unhealthy_after': '4m', 'backoff': '10m', 'max_restarts': 3,
            'webhook_url': None}
SOLR = {'name': 'solr', 'url': 'http://127.0.0.1:8983/solr/openlibrary/admin/ping', 'unit': 'solr.service'}


@pytest.mark.parametrize('value,seconds', [(90, 90), ('90', 90), ('90s', 90), ('4m', 240), ('1h', 3600),
                                           ('1m30s', 90), ('2h 5m', 7500)])
def test_durations(value, seconds):
    assert duration_seconds(value, 'x') == seconds


@pytest.mark.parametrize('value', ['', '4 minutes', '5ms', -1, 0, True, None, '1.5s'])
def test_bad_durations_name_the_variable(value):
    with pytest.raises(AnsibleFilterError, match='service_watchdog_timeout'):
        duration_seconds(value, 'service_watchdog_timeout')


def test_plan_fills_defaults_in_seconds():
    plan = service_watchdog_plan([SOLR, dict(SOLR, name='off', enabled=False)], DEFAULTS)
    assert plan == [dict(SOLR, interval=60, timeout=3, unhealthy_after=240, backoff=600, max_restarts=3,
                         expect_status=[200])]


def test_item_overrides_win():
    plan = service_watchdog_plan([dict(SOLR, interval='5s', timeout=2, unhealthy_after='20s', webhook_url='http://h/x')],
                                 DEFAULTS)
    assert (plan[0]['interval'], plan[0]['timeout'], plan[0]['unhealthy_after'], plan[0]['webhook_url']) == (
        5, 2, 20, 'http://h/x')


def test_valid_services_have_no_problems():
    assert service_watchdog_errors([SOLR, {'name': 'infobase', 'port': 7000, 'compose_service': 'infobase',
                                           'compose_project_dir': '/opt/openlibrary'}], DEFAULTS) == []


@pytest.mark.parametrize('item,message', [
    (dict(SOLR, timeout='5s', interval='3s'),
     'service_watchdog_services[0] (solr): timeout (5s, service_watchdog_services[0].timeout) is longer than its '
     'interval (3s, service_watchdog_services[0].interval)'),
    (dict(SOLR, timeout='2m'), 'timeout (120s, service_watchdog_services[0].timeout) is longer than its interval '
                               '(60s, service_watchdog_interval)'),
    (dict(SOLR, name='so/lr'), 'service_watchdog_services[0].name must match'),
    (dict(SOLR, port=8983), 'give exactly one of url (an HTTP probe) or port'),
    (dict(SOLR, url=None), 'give exactly one of url (an HTTP probe) or port'),
    (dict(SOLR, url='ftp://x/'), 'url must be an http:// or https:// URL'),
    (dict(SOLR, compose_service='solr'), 'give exactly one of unit'),
    ({'name': 'x', 'port': 1, 'compose_service': 'x'}, 'compose_project_dir must be the absolute path'),
    (dict(SOLR, url=None, port=70000), 'port must be a port'),
    (dict(SOLR, max_restarts=0), 'service_watchdog_services[0].max_restarts must be a whole number of at least 1'),
    (dict(SOLR, backoff='soon'), 'service_watchdog_services[0].backoff must be a duration'),
    (dict(SOLR, unhealthy_after='10s'), 'unhealthy_after (10s) is shorter than the interval (60s)'),
    (dict(SOLR, expect_status=200), 'expect_status must be a list of HTTP status codes'),
    (dict(SOLR, probe='x'), 'unknown keys probe'),
])
def test_bad_items_name_the_variable(item, message):
    problems = service_watchdog_errors([item], DEFAULTS)
    assert any(message in p for p in problems), problems


def test_role_wide_defaults_are_named_when_they_are_at_fault():
    problems = service_watchdog_errors([SOLR], dict(DEFAULTS, timeout='90s'))
    assert any('service_watchdog_timeout' in p and 'service_watchdog_interval' in p for p in problems), problems


def test_names_are_unique_and_input_is_a_list():
    assert 'names must be unique, repeated: solr' in service_watchdog_errors([SOLR, SOLR], DEFAULTS)[0]
    assert 'must be a list' in service_watchdog_errors('solr', DEFAULTS)[0]


def test_plan_refuses_bad_input():
    with pytest.raises(AnsibleFilterError, match='longer than its interval'):
        service_watchdog_plan([dict(SOLR, timeout='2m')], DEFAULTS)
