"""service_watchdog against real services under systemd (molecule/solr/prepare.yml):
demo-web is frozen with SIGSTOP, demo-steady stays healthy; every decision the
watchdog takes must reach the webhook listener on solr-hook.

Lab timings (group_vars/solr.yml): probe every 1 s with a 1 s timeout, restart after
5 s unhealthy, at most once per 20 s, give up after 2 restarts that did not help.
The tests run in file order: each starts from the state the one before left.
"""
import json
import time

import pytest

from conftest import assert_refused, lab_host

testinfra_hosts = ['solr-host']

UNHEALTHY_AFTER = 5
BACKOFF = 20
MAX_RESTARTS = 2
# A decision lands at most one probe (interval + timeout) after it is due; 3 s more for a
# loaded machine (the lab runs several scenarios at once).
LATENESS = 1 + 1 + 3


def now(host):
    return float(host.check_output('date +%s.%N'))


def main_pid(host, unit):
    return int(host.check_output('systemctl show -p MainPID --value %s', unit))


def freeze(host, unit='demo-web'):
    """SIGSTOP the unit's process; returns (pid, the host's time right after the signal)."""
    pid = main_pid(host, unit)
    return pid, float(host.check_output('kill -STOP %s && date +%%s.%%N', str(pid)))


def events(service, since=0.0):
    """The decisions the webhook listener received for service, oldest first."""
    out = lab_host('solr-hook').run('cat /var/lib/webhook/events.jsonl').stdout
    found = [json.loads(line) for line in out.splitlines() if line.strip()]
    return [e for e in found if e['service'] == service and e['time'] >= since]


def wait_for_decision(service, decision, since, timeout):
    deadline = time.monotonic() + timeout
    while True:
        found = [e for e in events(service, since) if e['decision'] == decision]
        if found:
            return found[0]
        assert time.monotonic() < deadline, 'no %s of %s within %ss; got %s' % (
            decision, service, timeout, [(e['decision'], e['time']) for e in events(service, since)])
        time.sleep(0.5)


def answers(host, port):
    return host.run('python3 -c %s', 'import urllib.request; urllib.request.urlopen('
                    '"http://127.0.0.1:%d/", timeout=2)' % port).rc == 0


def test_frozen_service_is_restarted_after_the_unhealthy_time_and_not_before(host):
    assert answers(host, 8081)
    frozen_pid, frozen_at = freeze(host)
    restart = wait_for_decision('demo-web', 'restart', frozen_at, UNHEALTHY_AFTER + LATENESS + 10)
    assert UNHEALTHY_AFTER <= restart['time'] - frozen_at <= UNHEALTHY_AFTER + LATENESS, restart
    recovered = wait_for_decision('demo-web', 'recovered', restart['time'], 15)
    assert main_pid(host, 'demo-web') != frozen_pid
    assert answers(host, 8081)
    assert [e['decision'] for e in events('demo-web', frozen_at)] == ['unhealthy', 'restart', 'recovered']
    assert recovered['probe'] == 'HTTP 200'


def test_second_freeze_within_the_backoff_window_waits_for_the_window(host):
    first_restart = [e for e in events('demo-web') if e['decision'] == 'restart'][-1]
    frozen_at = freeze(host)[1]
    assert frozen_at - first_restart['time'] < BACKOFF - UNHEALTHY_AFTER - LATENESS, 'too late to test the window'
    backoff = wait_for_decision('demo-web', 'backoff', frozen_at, UNHEALTHY_AFTER + LATENESS + 5)
    # Unhealthy long enough here, yet not restarted: the window of the first restart holds.
    assert backoff['time'] - frozen_at >= UNHEALTHY_AFTER
    restart = wait_for_decision('demo-web', 'restart', frozen_at, BACKOFF + LATENESS + 5)
    assert BACKOFF <= restart['time'] - first_restart['time'] <= BACKOFF + LATENESS, (first_restart, restart)
    wait_for_decision('demo-web', 'recovered', restart['time'], 15)
    assert [e['decision'] for e in events('demo-web', frozen_at)] == ['unhealthy', 'backoff', 'restart', 'recovered']


def test_gives_up_after_restarts_that_do_not_help_and_says_so(host):
    # From now on demo-web comes up frozen after every restart.
    host.check_output('touch /run/demo-web.wedged')
    try:
        frozen_at = freeze(host)[1]
        give_up = wait_for_decision('demo-web', 'give_up', frozen_at, 3 * (BACKOFF + LATENESS) + 10)
        decisions = [e['decision'] for e in events('demo-web', frozen_at)]
        assert decisions.count('restart') == MAX_RESTARTS, decisions
        assert decisions[-1] == 'give_up' and 'recovered' not in decisions, decisions
        assert 'giving up: 2 restarts did not help' in give_up['message']
        journal = host.check_output('journalctl -u service-watchdog@demo-web -o cat --no-pager')
        assert 'decision=give_up demo-web: giving up: 2 restarts did not help' in journal
        state = json.loads(host.check_output('cat /var/lib/service-watchdog/demo-web.json'))
        assert state['gave_up'] and state['failed_restarts'] == MAX_RESTARTS
        # Given up means no more restarts, even after a back-off window.
        pid = main_pid(host, 'demo-web')
        time.sleep(BACKOFF + LATENESS)
        assert main_pid(host, 'demo-web') == pid
        assert [e['decision'] for e in events('demo-web', give_up['time'])] == ['give_up']
    finally:
        host.check_output('rm -f /run/demo-web.wedged')
    # A person fixes it: the watchdog says the service is back and watches it again.
    fixed_at = now(host)
    host.check_output('systemctl restart demo-web')
    wait_for_decision('demo-web', 'recovered', fixed_at, 10)
    state = json.loads(host.check_output('cat /var/lib/service-watchdog/demo-web.json'))
    assert not state['gave_up'] and state['failed_restarts'] == 0


def test_every_decision_is_in_the_journal_and_reached_the_webhook(host):
    journal = host.check_output('journalctl -u service-watchdog@demo-web -o cat --no-pager')
    logged = [line.split(' (probe: ')[0] for line in journal.splitlines() if line.startswith('decision=')]
    posted = ['decision=%s %s' % (event['decision'], event['message']) for event in events('demo-web')]
    assert len(posted) >= 10
    assert posted == logged


def test_healthy_service_is_never_restarted_during_the_soak(host):
    """demo-steady was watched for the whole run (about a minute and a half): probed, never restarted."""
    assert main_pid(host, 'demo-steady') == int(host.check_output('cat /root/demo-steady.pid'))
    assert events('demo-steady') == []
    watched_since = host.check_output(
        'systemctl show -p ActiveEnterTimestamp --value service-watchdog@demo-steady')
    probes = host.check_output(
        "journalctl -u demo-steady -o cat --no-pager --since %s | grep -c 'GET / '", watched_since)
    assert int(probes) >= 60, 'demo-steady was probed only %s times' % probes
    journal = host.check_output('journalctl -u service-watchdog@demo-steady -o cat --no-pager')
    assert 'decision=' not in journal


@pytest.mark.parametrize('service,message', [
    ({'timeout': '5s', 'interval': '2s'},
     'service_watchdog_services[0] (bad): timeout (5s, service_watchdog_services[0].timeout) is longer than its '
     'interval (2s, service_watchdog_services[0].interval)'),
    ({'name': 'so/lr'}, 'service_watchdog_services[0].name must match'),
    ({'backoff': 'ten minutes'}, 'service_watchdog_services[0].backoff must be a duration'),
])
def test_bad_input_fails_before_any_change_naming_the_variable(service, message):
    item = dict({'name': 'bad', 'url': 'http://127.0.0.1:8081/', 'unit': 'demo-web.service'}, **service)
    assert_refused('watchdog.yml', {'service_watchdog_services': [item]}, [message], 'solr-host')
