"""The runbooks under load: rolling upgrade, zero-downtime deploy, memcached replacement.

A request loop (molecule/edge/files/edge_load.py, on rb-mem1) runs through the edge while each
runbook runs; every failed request fails the test. Tests run in file order: each starts from
the state the one before left (v1 -> upgraded hosts -> v2 -> v3 refused -> rb-mem2 in service).
Figures are printed (run with -s).
"""
import glob
import json
import os
import subprocess

import pytest

from conftest import (admin, lab_host, load_result, report, run_load, run_playbook, server_rows, wait_progress,
                      wait_status)

EDGE = 'rb-edge'
WEB = ('rb-web1', 'rb-web2')
URL = 'http://rb-edge/status'
REPORTS = os.path.join(os.environ.get('MOLECULE_EPHEMERAL_DIRECTORY', ''), 'reports')
ADMF_DRAIN_ANY = 0x08 | 0x10 | 0x80
PLAYBOOKS = os.path.join('..', '..', 'playbooks')


@pytest.fixture(scope='module')
def edge():
    return lab_host(EDGE)


@pytest.fixture(scope='module')
def client():
    return lab_host('rb-mem1')


def flat(text):
    return ' '.join(text.split())


def drained(edge, server):
    """True when haproxy holds server in drain (admin state) in the web backend."""
    for line in admin(edge, 'show servers state web').splitlines()[2:]:
        fields = line.split()
        if len(fields) > 6 and fields[3] == server:
            return bool(int(fields[6]) & ADMF_DRAIN_ANY)
    raise AssertionError('no server %s in the web backend' % server)


def canary(host):
    return lab_host(host).check_output("dpkg-query -W -f '${Version}' rb-canary")


def started_at(container):
    return subprocess.check_output(['docker', 'inspect', '-f', '{{.State.StartedAt}}', container], text=True).strip()


def status(host):
    return json.loads(lab_host(host).check_output('python3 -c %s', (
        'import urllib.request; print(urllib.request.urlopen("http://127.0.0.1:8080/status", timeout=5).read().decode())')))


def latest_report():
    """(records, markdown) of the newest rolling upgrade report."""
    newest = sorted(glob.glob(os.path.join(REPORTS, 'rolling_upgrade-*.json')), key=os.path.getmtime)[-1]
    with open(newest) as handle:
        records = json.load(handle)
    with open(newest[:-len('json')] + 'md') as handle:
        return records, handle.read()


def under_load(client, name, playbook, extra_vars=None, expect=()):
    """Run playbook while the request loop runs through the edge; (rc, output, load summary)."""
    done = '/tmp/%s.done' % name
    run_load(client, 100, URL, concurrency=2, until=done, name=name, wait=False, expect=expect, max_requests=100000,
             pause=0.01)
    wait_progress(client, name, 50)
    rc, out = run_playbook(os.path.join(PLAYBOOKS, playbook), extra_vars=extra_vars)
    client.run('touch %s', done)
    result = load_result(client, name)
    report(name, result)
    assert result['requests'] < 100000, 'the loop stopped before the runbook ended'
    return rc, out, result


def answered_between(result, host, start, end):
    return [t for t, answered_by in result['timeline'] if answered_by == host and start < t < end]


# ------------------------------------------------------------------ the site before

def test_the_site_answers_through_the_edge_from_both_web_hosts(client):
    result = run_load(client, 40, URL, name='before', expect=['cache=ok', 'version=1'])
    report('before', result)
    assert result['failures'] == 0, result['errors']
    assert set(result['hosts']) == set(WEB)


# ------------------------------------------------------------------ rolling upgrade

def test_rolling_upgrade_stops_at_a_host_failing_its_health_check(edge, client):
    # rb-canary 1.1's postinst stops the application where this marker exists.
    lab_host('rb-web1').check_output('mkdir -p /var/lib/rb-canary && touch /var/lib/rb-canary/break')
    rc, out, result = under_load(client, 'upgrade-stop', 'rolling_upgrade.yml')
    assert rc != 0, out[-3000:]
    assert 'rolling_upgrade_resume_from=rb-web1' in flat(out), out[-3000:]
    assert result['failures'] == 0, result['errors']
    # The order is the inventory's (rb-web2 first); the host after the failed one is untouched.
    assert canary('rb-web2') == '1.1' and canary('rb-web1') == '1.1' and canary('rb-edge') == '1.0'
    assert drained(edge, 'rb-web1') and not drained(edge, 'rb-web2')
    records, markdown = latest_report()
    print(markdown)
    assert [(r['host'], r['outcome']) for r in records] == [('rb-web2', 'ok'), ('rb-web1', 'failed')]
    assert records[0]['packages'] == ['rb-canary 1.0 -> 1.1']
    assert records[0]['enabled_at'] < records[1]['started']
    assert 'in its health stage' in records[1]['message']
    assert '| 2 | rb-web1 | failed | 1 | no | failed |' in markdown
    # No request reached rb-web1 once it was drained.
    assert not answered_between(result, 'rb-web1', records[1]['drained_at'], result['finished'] + 1)


def test_resume_reboots_the_host_and_finishes_the_run(edge, client):
    web1 = lab_host('rb-web1')
    web1.check_output('rm -f /var/lib/rb-canary/break && touch /run/reboot-required')
    before = started_at('rb-web1')
    rc, out, result = under_load(client, 'upgrade-resume', 'rolling_upgrade.yml',
                                 extra_vars={'rolling_upgrade_resume_from': 'rb-web1'})
    assert rc == 0, out[-3000:]
    assert result['failures'] == 0, result['errors']
    # The container was restarted (the lab's reboot) and came back: /run starts empty.
    assert started_at('rb-web1') != before
    assert not web1.file('/run/reboot-required').exists
    assert canary('rb-edge') == '1.1'
    records, markdown = latest_report()
    print(markdown)
    assert [(r['host'], r['outcome'], r['reboot']) for r in records] == [
        ('rb-web1', 'ok', 'yes (container)'), ('rb-edge', 'ok', 'no')]
    web1_record = records[0]
    # Drain, then health, then enable; nothing answered from rb-web1 while it was out.
    assert web1_record['drained_at'] < web1_record['healthy_at'] < web1_record['enabled_at']
    assert not answered_between(result, 'rb-web1', web1_record['drained_at'], web1_record['healthy_at'])
    assert 'rb-web1' in result['hosts'] and not drained(edge, 'rb-web1')
    wait_status(edge, 'rb-web1', 'UP')


def test_a_new_run_refuses_a_host_name_the_inventory_does_not_have():
    rc, out = run_playbook(os.path.join(PLAYBOOKS, 'rolling_upgrade.yml'),
                           extra_vars={'rolling_upgrade_order': ['rb-web1', 'rb-web9']})
    assert rc != 0 and 'rolling_upgrade_order names rb-web9, not in the inventory' in flat(out), out[-3000:]


# ------------------------------------------------------------------ zero-downtime deploy

def test_deploy_of_a_new_release_under_load_fails_no_request(edge, client):
    rc, out, result = under_load(client, 'deploy-v2', 'deploy.yml', extra_vars={'app_release_version': 'v2'})
    assert rc == 0, out[-3000:]
    assert result['failures'] == 0, result['errors']
    assert [status(host)['version'] for host in WEB] == ['2', '2']
    assert set(result['hosts']) == set(WEB)
    assert server_rows(edge)['rb-web1']['status'].startswith('UP') and not drained(edge, 'rb-web1')


def test_a_broken_release_is_rolled_back_on_the_first_host_and_never_reaches_the_second(edge, client):
    second = status('rb-web2')
    rc, out, result = under_load(client, 'deploy-v3', 'deploy.yml', extra_vars={'app_release_version': 'v3'})
    assert rc != 0, out[-3000:]
    assert 'The run stops here' in flat(out) and 'rolled back to' in flat(out), out[-3000:]
    assert result['failures'] == 0, result['errors']
    assert status('rb-web1')['version'] == '2'
    # The second host was never touched: same process, same release.
    assert status('rb-web2') == second
    # The first host, healthy on its old release, is back in rotation.
    wait_status(edge, 'rb-web1', 'UP')
    assert not drained(edge, 'rb-web1')


# ------------------------------------------------------------------ memcached replacement

def test_memcached_replacement_under_load_no_client_error(client):
    rc, out, result = under_load(client, 'memcached', 'memcached_replace.yml', expect=['cache=ok'], extra_vars={
        'memcached_replace_old': 'rb-mem1', 'memcached_replace_new': 'rb-mem2', 'app_release_version': 'v2'})
    assert rc == 0, out[-3000:]
    assert result['failures'] == 0, result['errors']
    for host in WEB:
        pid = status(host)['pid']
        environ = lab_host(host).check_output('tr "\\0" "\\n" < /proc/%s/environ', str(pid))
        assert 'MEMCACHED_SERVERS=rb-mem2:11211' in environ.splitlines()
        assert status(host)['cache'] == 'ok'
    old, new = lab_host('rb-mem1'), lab_host('rb-mem2')
    assert not old.service('memcached').is_running and not old.service('memcached').is_enabled
    assert new.service('memcached').is_running
    # Sized by the role: 512 MiB container - 300 MiB reserve = 212, in 64 MiB steps.
    assert '-m 192' in new.file('/etc/memcached.conf').content_string
