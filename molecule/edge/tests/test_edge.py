"""The edge: nginx -> haproxy -> two web hosts, a Solr backend, fail2ban on base's nftables.

Figures (requests, failures, p50/p99) are printed; run with -s to see them. Tests run in file
order: the ban tests come last, since they lock the outsider out (and let it back in).
"""
import json
import os
import re
import subprocess
import sys
import time

import pytest

from conftest import (admin, assert_refused, host_address, http_get, lab_host, load_result, recap_counts, report,
                      run_playbook, server_rows, start_playbook, tcp_connect, tcp_listeners, wait_progress,
                      wait_status)
from conftest import run_load as run_load_from

EDGE = 'ed-edge'
WEB = ('ed-web1', 'ed-web2')
URL = 'https://ed-edge/'
SOCKET = '/run/haproxy/admin.sock'


def run_load(client, count, url=URL, **options):
    """The shared request loop, aimed at the edge's site by default."""
    return run_load_from(client, count, url, **options)


@pytest.fixture(scope='module')
def edge():
    return lab_host(EDGE)


@pytest.fixture(scope='module', autouse=True)
def every_server_in_rotation(edge):
    """Admin states survive reloads and restarts (the state file): start from every server ready."""
    for line in admin(edge, 'show servers state').splitlines()[2:]:
        fields = line.split()
        if len(fields) > 3:
            admin(edge, 'set server %s/%s state ready' % (fields[1], fields[3]))
    for server in WEB:
        wait_status(edge, server, 'UP')


@pytest.fixture(scope='module')
def outsider():
    return lab_host('ed-outsider')


def set_server(server, state, timeout=30):
    started = time.monotonic()
    rc, out = run_playbook('server_state.yml', extra_vars={'server': server, 'state': state, 'timeout': timeout})
    return rc, out, time.monotonic() - started


def drain_report(out):
    """The figures server_state.yml's debug task prints (in-flight sessions before, seconds waited)."""
    match = re.search(r'server_state before_scur=(\d+) waited=([0-9.]+)', out)
    assert match, 'no server_state figures in:\n' + out[-3000:]
    return {'before_scur': int(match.group(1)), 'waited': float(match.group(2))}


# ------------------------------------------------------------------ routing

def test_requests_through_nginx_and_haproxy_reach_both_web_hosts(outsider):
    result = run_load(outsider, 60, name='both')
    report('through the edge', result)
    assert result['failures'] == 0 and result['statuses'] == {'200': 60}
    assert set(result['hosts']) == set(WEB)


def test_http_redirects_to_https_with_headers_and_no_version(outsider):
    out = outsider.check_output('python3 -c %s', (
        'import http.client as h\n'
        'c=h.HTTPConnection("ed-edge",80); c.request("GET","/x?y=1"); r=c.getresponse()\n'
        'print(r.status, r.getheader("Location"), r.getheader("Server"))'))
    assert out.split() == ['301', 'https://ed-edge/x?y=1', 'nginx']
    headers = outsider.check_output('python3 -c %s', (
        'import http.client as h, ssl, json\n'
        'c=h.HTTPSConnection("ed-edge",443,context=ssl._create_unverified_context()); c.request("GET","/static/hello.txt")\n'
        'r=c.getresponse(); print(json.dumps({"status": r.status, "body": r.read().decode(), "headers": dict(r.getheaders())}))'))
    reply = json.loads(headers)
    assert reply['status'] == 200 and reply['body'] == 'static from the edge\n'
    assert reply['headers']['Server'] == 'nginx'
    assert reply['headers']['X-Content-Type-Options'] == 'nosniff'
    assert reply['headers']['Strict-Transport-Security'].startswith('max-age=')


def test_tls_is_modern_only(outsider):
    probe = ('import socket, ssl, sys\n'
             'c=ssl._create_unverified_context(); c.minimum_version=c.maximum_version=getattr(ssl.TLSVersion, sys.argv[1])\n'
             'try:\n c.wrap_socket(socket.create_connection(("ed-edge",443),timeout=5), server_hostname="ed-edge").close(); print("ok")\n'
             'except (ssl.SSLError, OSError) as e: print("refused")\n')
    assert outsider.check_output('python3 -c %s TLSv1_2', probe) == 'ok'
    assert outsider.check_output('python3 -c %s TLSv1_1', probe) == 'refused'


def test_solr_backend_routes_to_the_solr_host(edge, lab, outsider):
    status, body = http_get(lab('ed-web1'), 'http://ed-edge:8984/solr/openlibrary/select?q=x')
    assert status == 200 and json.loads(body) == {'host': 'ed-web2', 'solr': True}
    config = edge.file('/etc/haproxy/haproxy.cfg').content_string
    assert 'balance leastconn' in config and 'http-check send meth GET uri /solr/openlibrary/admin/ping' in config
    assert server_rows(edge, 'solr')['ed-web2']['status'].startswith('UP')
    # base's firewall: the Solr frontend is open to the web group only.
    assert not tcp_connect(outsider, 'ed-edge', 8984)


def test_stats_and_admin_socket_stay_local(edge, outsider):
    assert not tcp_connect(outsider, 'ed-edge', 8404)
    assert tcp_listeners(edge, 8404) == {'127.0.0.1'}
    assert http_get(edge, 'http://127.0.0.1:8404/stats')[0] == 401
    authed = edge.run('python3 -c %s', (
        'import urllib.request as u, base64\n'
        'r=u.Request("http://127.0.0.1:8404/stats;csv", headers={"Authorization": "Basic " + base64.b64encode(b"admin:lab-stats-password").decode()})\n'
        'print(u.urlopen(r).status)'))
    assert authed.stdout.strip() == '200'
    sock = edge.file(SOCKET)
    assert sock.is_socket and sock.mode == 0o660 and sock.user == 'root'
    assert 'lab-stats-password' not in edge.file('/etc/haproxy/haproxy.cfg').content_string


# ------------------------------------------------------------------ zero failed requests

def test_stopping_one_web_app_during_load_fails_no_request(edge, lab, outsider):
    web1 = lab('ed-web1')
    run_load(outsider, 1000, name='stop', wait=False)
    wait_progress(outsider, 'stop', 150)
    web1.check_output('systemctl stop edge-web')
    wait_status(edge, 'ed-web1', 'DOWN')
    web1.check_output('systemctl start edge-web')
    wait_status(edge, 'ed-web1', 'UP')
    result = load_result(outsider, 'stop')
    report('one web app stopped and started during the loop', result)
    assert result['requests'] >= 1000 and result['failures'] == 0, result['errors']
    back = run_load(outsider, 60, name='back')
    assert back['failures'] == 0 and back['hosts'].get('ed-web1', 0) > 0, back['hosts']


def test_drain_lets_in_flight_requests_finish_then_sends_none(edge, outsider):
    try:
        drain_and_check(edge, outsider)
    finally:
        rc, out, dummy = set_server('ed-web1', 'enable')
    assert rc == 0, out[-3000:]
    back = run_load(outsider, 60, name='enabled')
    assert back['failures'] == 0 and back['hosts'].get('ed-web1', 0) > 0, back['hosts']


def drain_and_check(edge, outsider):
    # Six 20-second requests, three on each web host by round robin.
    run_load(outsider, 6, url=URL + 'slow?s=20', concurrency=6, name='inflight', wait=False, timeout=40)
    deadline = time.monotonic() + 20
    while server_rows(edge)['ed-web1']['scur'] == 0:
        assert time.monotonic() < deadline, 'no request in flight on ed-web1'
        time.sleep(0.1)
    rc, out, took = set_server('ed-web1', 'drain')
    assert rc == 0, out[-3000:]
    state = drain_report(out)
    print('\ndrain of ed-web1: %d sessions in flight when it began, waited %.1f s for them' % (
        state['before_scur'], state['waited']))
    assert state['before_scur'] > 0 and state['waited'] > 1, state
    assert server_rows(edge)['ed-web1'] == {'status': 'DRAIN', 'scur': 0}
    inflight = load_result(outsider, 'inflight')
    report('requests in flight during the drain (took %.1f s)' % took, inflight)
    assert inflight['failures'] == 0 and inflight['statuses'] == {'200': 6} and inflight['hosts'].get('ed-web1')
    after = run_load(outsider, 60, name='drained')
    assert after['failures'] == 0 and set(after['hosts']) == {'ed-web2'}, after['hosts']
    # A reload keeps the drain (server states are saved before it).
    edge.check_output('systemctl reload haproxy')
    assert server_rows(edge)['ed-web1']['status'] == 'DRAIN'


def test_drain_of_a_server_already_down_does_not_hang(edge, lab):
    web2 = lab('ed-web2')
    web2.check_output('systemctl stop edge-web')
    try:
        wait_status(edge, 'ed-web2', 'DOWN')
        rc, out, took = set_server('ed-web2', 'drain', timeout=20)
        print('\ndrain of a server already down: rc %d in %.1f s (bound 20 s)' % (rc, took))
        assert rc == 0, out[-3000:]
        assert 'not verified' not in out
        rc, out, dummy = set_server('ed-web2', 'disable', timeout=20)
        assert rc == 0 and server_rows(edge)['ed-web2']['status'] == 'MAINT', out[-3000:]
    finally:
        web2.check_output('systemctl start edge-web')
    rc, out, dummy = set_server('ed-web2', 'enable')
    assert rc == 0, out[-3000:]
    wait_status(edge, 'ed-web2', 'UP')


def test_reloads_with_a_changed_config_during_load_fail_no_request(edge, outsider):
    """haproxy and nginx reloaded twice (a changed config, then back) while the loop runs."""
    nginx_master = edge.check_output('systemctl show -p MainPID --value nginx')
    haproxy_master = edge.check_output('systemctl show -p MainPID --value haproxy')
    run_load(outsider, 1000, name='reload', until='/tmp/reload.done', wait=False)
    wait_progress(outsider, 'reload', 50)
    changed = {'haproxy_hard_stop_after': '4m', 'nginx_keepalive_timeout': '30s'}
    window = []
    try:
        for extra in (changed, None):
            started = time.time()
            proc = start_playbook('edge_only.yml', extra, directory=True)
            out = proc.communicate(timeout=600)[0]
            window.append((started, time.time()))
            assert proc.returncode == 0, out[-3000:]
            counts = recap_counts(out, EDGE)
            assert counts['changed'] >= 2, out[-3000:]
            assert 'RUNNING HANDLER [commons.infra.haproxy : Reload haproxy]' in out
            assert 'RUNNING HANDLER [commons.infra.nginx : Reload nginx after its check]' in out
    finally:
        outsider.check_output('touch /tmp/reload.done')
    result = load_result(outsider, 'reload')
    report('two reloads of haproxy and nginx during the loop', result)
    during = [t for t in result['timeline'] if window[0][0] <= t[0] <= window[-1][1]]
    print('requests answered while the playbooks ran: %d' % len(during))
    assert result['requests'] >= 1000 and result['failures'] == 0, result['errors']
    assert result['started'] < window[0][0] and result['finished'] > window[-1][1]
    assert during
    # Reloads, not restarts: the masters are the same processes.
    assert edge.check_output('systemctl show -p MainPID --value nginx') == nginx_master
    assert edge.check_output('systemctl show -p MainPID --value haproxy') == haproxy_master


def test_rate_limit_answers_429_past_the_rate_and_not_below(lab):
    client = lab('ed-web1')
    # 2 r/s with a burst of 5: six requests at once pass, then the burst is spent.
    below = run_load(client, 6, url=URL + 'api/x', concurrency=1, name='below')
    past = run_load(client, 20, url=URL + 'api/x', concurrency=1, name='past')
    print('\nrate limit 2r/s burst 5: first 6 -> %s; next 20 at once -> %s' % (below['statuses'], past['statuses']))
    assert below['statuses'] == {'200': 6}
    assert past['statuses'].get('429', 0) >= 10
    # After a second at the rate, requests pass again.
    time.sleep(1.1)
    again = run_load(client, 1, url=URL + 'api/x', name='again')
    assert again['statuses'] == {'200': 1}


# ------------------------------------------------------------------ refused input and config

def refused(extra_vars, messages):
    """The edge playbook with bad input fails, saying every message, and changes nothing."""
    assert_refused('edge_only.yml', extra_vars, messages, EDGE, directory=True)


def test_bad_input_fails_before_any_change_naming_the_variable(edge):
    config = edge.file('/etc/haproxy/haproxy.cfg').content_string
    backends = [
        {'name': 'gone', 'group': 'solr_hosts', 'port': 8983},
        {'name': 'empty', 'group': 'solr_replicas', 'port': 8983},
        {'name': 'typo', 'servers': [{'name': 'a', 'address': '10.0.0.300', 'port': 80}]},
        {'name': 'fast', 'balance': 'fastest', 'group': 'web', 'port': 8080},
    ]
    refused({'haproxy_backends': backends}, [
        "haproxy_backends[0] (gone).group: no inventory group 'solr_hosts'",
        "haproxy_backends[1] (empty).group: inventory group 'solr_replicas' has no hosts",
        "haproxy_backends[2] (typo).servers[0].address must be an IP address or a host name, got '10.0.0.300'",
        "haproxy_backends[3] (fast).balance must be one of",
    ])
    sites = [
        {'name': 'one', 'server_names': ['ed-edge'], 'upstream': ['127.0.0.1:8080']},
        {'name': 'two', 'server_names': ['ed-edge'], 'upstream': ['127.0.0.1:8080']},
    ]
    refused({'nginx_sites': sites, 'nginx_rate_zones': [{'name': 'api', 'rate': '2 per second'}]}, [
        "nginx_rate_zones[0] (api).rate must be a rate like 1r/s or 180r/m, got '2 per second'",
        'nginx_sites: server name ed-edge on port 80 is claimed by one, two',
    ])
    assert edge.file('/etc/haproxy/haproxy.cfg').content_string == config


def test_a_config_the_daemons_refuse_leaves_the_last_good_one(edge, outsider):
    haproxy_cfg = edge.file('/etc/haproxy/haproxy.cfg').sha256sum
    nginx_files = edge.check_output('cat /etc/nginx/nginx.conf /etc/nginx/commons-infra/sites/*.conf | sha256sum')
    rc, out = run_playbook('edge_only.yml', extra_vars={'haproxy_global_options': ['no-such-directive 1']})
    assert rc != 0 and 'failed to validate' in out, out[-3000:]
    rc, out = run_playbook('edge_only.yml', extra_vars={'nginx_sites': [
        {'name': 'edge', 'server_names': ['ed-edge'], 'upstream': ['127.0.0.1:8080'], 'client_max_body_size': 'lots'}]})
    assert rc != 0 and 'Test the candidates together with nginx -t' in out, out[-3000:]
    assert edge.file('/etc/haproxy/haproxy.cfg').sha256sum == haproxy_cfg
    assert edge.check_output('cat /etc/nginx/nginx.conf /etc/nginx/commons-infra/sites/*.conf | sha256sum') == nginx_files
    assert run_load(outsider, 20, name='still')['statuses'] == {'200': 20}
    # the stage is left with the refused candidate: the next good run puts it right
    rc, out = run_playbook('edge_only.yml')
    assert rc == 0, out[-3000:]


def test_check_diff_and_a_second_run_change_nothing():
    rc, out = run_playbook('edge_only.yml', check=True)
    assert rc == 0, out[-3000:]
    assert recap_counts(out, EDGE)['changed'] == 0, out[-5000:]
    rc, out = run_playbook('edge_only.yml')
    assert rc == 0 and recap_counts(out, EDGE)['changed'] == 0, out[-5000:]


def test_gixy_finds_nothing_in_the_generated_config(tmp_path):
    subprocess.run(['docker', 'cp', '%s:/etc/nginx' % EDGE, str(tmp_path)], check=True)
    gixy = os.path.join(os.path.dirname(sys.executable), 'gixy')
    proc = subprocess.run([gixy, '-f', 'json', str(tmp_path / 'nginx' / 'nginx.conf')],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    print('\ngixy-ng: %s' % proc.stdout[-2000:])
    findings = json.loads(proc.stdout or '[]')
    assert findings == [], proc.stdout


# ------------------------------------------------------------------ fail2ban (last: it bans the outsider)

def test_bots_are_banned_and_the_manual_jail_bans_and_unbans(edge, lab, outsider):
    address = host_address(outsider)
    web1 = lab('ed-web1')
    assert tcp_connect(outsider, 'ed-edge', 443)
    for path in ('wp-login.php', '.env', 'blog/wp-admin/setup-config.php'):
        http_get(outsider, 'http://ed-edge/' + path)
    deadline = time.monotonic() + 30
    while address not in edge.check_output('fail2ban-client status commons-nginx-bots'):
        assert time.monotonic() < deadline, edge.check_output('fail2ban-client status commons-nginx-bots')
        time.sleep(0.3)
    assert 'addr-set-commons-nginx-bots' in edge.check_output('nft list table inet f2b-table')
    assert not tcp_connect(outsider, 'ed-edge', 443) and not tcp_connect(outsider, 'ed-edge', 80)
    assert tcp_connect(web1, 'ed-edge', 443)
    # base's own table is untouched by the bans
    assert address not in edge.check_output('nft list table inet commons_infra')
    edge.check_output('fail2ban-client set commons-nginx-bots unbanip %s', address)
    assert tcp_connect(outsider, 'ed-edge', 443)

    edge.check_output('fail2ban-client set commons-manual banip %s', address)
    assert not tcp_connect(outsider, 'ed-edge', 443) and not tcp_connect(outsider, 'ed-edge', 80)
    assert tcp_connect(web1, 'ed-edge', 443)
    edge.check_output('fail2ban-client set commons-manual unbanip %s', address)
    assert tcp_connect(outsider, 'ed-edge', 443)
