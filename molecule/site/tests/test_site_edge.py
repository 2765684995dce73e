"""The whole site as a user and an attacker see it.

- http://localhost:8080/status (ol-www0's nginx, published on the machine) is answered by
  both web heads in turn, each with the release app_release deployed and PostgreSQL
  (a real login and query) and memcached healthy as seen from that head;
- the database layer is Patroni on etcd: one leader, the other member streams from it, and
  each web head reaches the leader through its own router (haproxy on 127.0.0.1:5000 ->
  pgbouncer on the leader), which no outsider reaches;
- an outsider container on the lab network (the lab's eighth) finds only the edge's
  80/443 and every host's 22 open: the port scan of every lab host is printed as a table;
  the hosts the inventory allows do reach memcached, postgres and the app ports;
- `--check` on the converged site reports changed=0 on every host.
"""
import json
import os
import subprocess
import time
import urllib.request

import pytest
from conftest import recap_counts, run_playbook, server_rows, tcp_connect, wait_for

testinfra_hosts = ['ol-www0']
NETWORK = 'commons-infra-site'
OUTSIDER = 'ol-outsider'
LAB_HOSTS = {'ol-www0': '172.16.77.5', 'ol-web1': '172.16.77.21', 'ol-web2': '172.16.77.22',
             'ol-home0': '172.16.77.30', 'ol-db1': '172.16.77.41', 'ol-db2': '172.16.77.42',
             'ol-mem0': '172.16.77.10'}
# Every port a service of the site uses (5000/5001: the routers, on loopback).
PORTS = {22: 'ssh', 80: 'http', 443: 'https', 2379: 'etcd', 2380: 'etcd-peer', 5000: 'pg-router',
         5001: 'pg-router-ro', 5432: 'postgres', 6432: 'pgbouncer', 7000: 'infobase', 8008: 'patroni', 8080: 'app', 8081: 'covers',
         8404: 'haproxy-stats', 8983: 'solr', 8984: 'solr-haproxy', 11211: 'memcached', 31337: 'affiliate'}
SCAN = r'''
import socket, sys, json, concurrent.futures
hosts, ports = json.loads(sys.argv[1]), json.loads(sys.argv[2])
def probe(target):
    address, port = target
    s = socket.socket(); s.settimeout(1.5)
    try:
        s.connect((address, port)); return target, 'open'
    except socket.timeout:
        return target, 'filtered'
    except OSError:
        return target, 'closed'
    finally:
        s.close()
with concurrent.futures.ThreadPoolExecutor(64) as pool:
    found = dict(('%s:%d' % t, state) for t, state in pool.map(probe, [(h, p) for h in hosts for p in ports]))
print(json.dumps(found))
'''


def status_through_edge():
    with urllib.request.urlopen('http://127.0.0.1:8080/status', timeout=5) as reply:
        return reply.status, json.loads(reply.read())


def test_status_is_answered_by_both_web_heads_with_healthy_backends(lab):
    answers = []
    for dummy in range(6):
        code, status = status_through_edge()
        assert code == 200
        answers.append(status)
        print('%s  release %s  database %s  cache %s' % (status['host'], status['release'][:12],
                                                         status['database'], status['cache']))
    assert {a['host'] for a in answers} == {'ol-web1', 'ol-web2'}
    # round robin: the heads take turns
    assert all(a['host'] != b['host'] for a, b in zip(answers, answers[1:]))
    for status in answers:
        assert status['database'] == 'ok' and status['cache'] == 'ok', status
        deployed = lab(status['host']).check_output('readlink -f /opt/openlibrary/openlibrary')
        assert deployed.endswith(status['release']), (deployed, status)


# The deployed demo app's own PostgreSQL client, with the app's environment (/etc/default/openlibrary).
APP_LOGIN = 'import os, app; print(os.environ["PGHOST"], os.environ["PGPORT"], app.postgres_status(os.environ))'


def patroni_members(lab):
    """Patroni's view of the cluster, asked of ol-db1: {member: {'Role': ..., 'State': ...}}."""
    out = lab('ol-db1').check_output('patronictl -c /etc/patroni/config.yml list -f json')
    return {m['Member']: m for m in json.loads(out)}


def test_one_leader_and_the_other_member_streams_from_it(lab):
    # Patroni 3.0.2 (bookworm) says 'running' for a replica too; the replica's WAL receiver says streaming.
    assert wait_for(lambda: sorted((m['Role'], m['State']) for m in patroni_members(lab).values())
                    in ([('Leader', 'running'), ('Sync Standby', 'running')],
                        [('Leader', 'running'), ('Sync Standby', 'streaming')]), 30), patroni_members(lab)
    standby = next(name for name, m in patroni_members(lab).items() if m['Role'] != 'Leader')
    assert wait_for(lambda: lab(standby).check_output(
        "sudo -u postgres psql -XAtc 'select status from pg_stat_wal_receiver'") == 'streaming', 30)
    assert lab(standby).check_output("sudo -u postgres psql -XAtc 'select pg_is_in_recovery()'") == 't'


def test_a_web_head_reaches_the_leader_through_its_router(lab):
    web = lab('ol-web1')
    leader = next(name for name, m in patroni_members(lab).items() if m['Role'] == 'Leader')
    # The router sends writes to the leader's pgbouncer only: Patroni's /primary check decides.
    assert wait_for(lambda: {name: row['status'] for name, row in server_rows(web, 'postgres_primary').items()
                             if row['status'].startswith('UP')} == {leader: 'UP'}, 30), server_rows(web, 'postgres_primary')
    # A real login and query through 127.0.0.1:5000, with the app's own settings and client.
    login = web.run('set -a; . /etc/default/openlibrary; cd /opt/openlibrary/openlibrary && python3 -c %s', APP_LOGIN)
    assert login.stdout.split() == ['127.0.0.1', '5000', 'ok'], (login.stdout, login.stderr)
    # Nobody else reaches the router: it listens on loopback only.
    assert {line.split()[3] for line in web.check_output('ss -Htln sport = :5000').splitlines()} == {'127.0.0.1:5000'}


@pytest.fixture(scope='module')
def outsider():
    """A container on the lab network that is in no inventory group (removed afterwards;
    scripts/test/scenario.sh removes it too, by its label, if a run is cut short)."""
    subprocess.run(['docker', 'rm', '-f', OUTSIDER], capture_output=True, check=False)
    subprocess.run(['docker', 'run', '-d', '--name', OUTSIDER, '--network', NETWORK, '--ip', '172.16.77.99',
                    '--label', 'org.commons-infra.scenario=site', '--label', 'owner=molecule',
                    'commons-infra/debian:bookworm', 'sleep', 'infinity'], check=True, capture_output=True)
    yield OUTSIDER
    subprocess.run(['docker', 'rm', '-f', OUTSIDER], capture_output=True, check=False)


def test_an_outsider_finds_only_the_edge_and_ssh_open(outsider):
    proc = subprocess.run(['docker', 'exec', outsider, 'python3', '-c', SCAN, json.dumps(list(LAB_HOSTS.values())),
                           json.dumps(sorted(PORTS))], capture_output=True, text=True, check=True, timeout=120)
    found = json.loads(proc.stdout)
    names = sorted(LAB_HOSTS)
    print('\nport scan from %s (open / - for filtered or closed)' % outsider)
    print('%-20s' % 'port' + ''.join('%-10s' % n for n in names))
    for port in sorted(PORTS):
        row = ['open' if found['%s:%d' % (LAB_HOSTS[n], port)] == 'open' else '-' for n in names]
        print('%-20s' % ('%d %s' % (port, PORTS[port])) + ''.join('%-10s' % cell for cell in row))
    opened = sorted(key for key, state in found.items() if state == 'open')
    expected = sorted(['%s:22' % a for a in LAB_HOSTS.values()] + ['172.16.77.5:80', '172.16.77.5:443'])
    assert opened == expected


@pytest.mark.parametrize('client, server, port', [
    ('ol-web1', 'ol-db1', 5432), ('ol-home0', 'ol-db1', 5432), ('ol-web2', 'ol-mem0', 11211),
    ('ol-www0', 'ol-web1', 8080), ('ol-www0', 'ol-web2', 8080), ('ol-web1', 'ol-home0', 7000),
    ('ol-db2', 'ol-db1', 5432), ('ol-web1', 'ol-db1', 6432), ('ol-web2', 'ol-db2', 8008),
    ('ol-db2', 'ol-db1', 8008), ('ol-home0', 'ol-db1', 2379), ('ol-home0', 'ol-db2', 2380)])
def test_the_allowed_clients_get_through(lab, client, server, port):
    assert tcp_connect(lab(client), LAB_HOSTS[server], port)


@pytest.mark.parametrize('client, server, port', [
    ('ol-www0', 'ol-db1', 5432), ('ol-mem0', 'ol-db1', 5432), ('ol-db1', 'ol-mem0', 11211),
    ('ol-home0', 'ol-web1', 8080), ('ol-db1', 'ol-home0', 7000), ('ol-www0', 'ol-db1', 6432),
    ('ol-mem0', 'ol-db1', 8008), ('ol-web1', 'ol-db1', 2379), ('ol-web1', 'ol-db2', 2380)])
def test_other_hosts_do_not(lab, client, server, port):
    assert not tcp_connect(lab(client), LAB_HOSTS[server], port)


def test_check_mode_on_the_converged_site_changes_nothing():
    started = time.monotonic()
    # The lab's hosts.yml too: molecule's inventory has only the groups with a container,
    # and the contracts also name the lab's empty covers group.
    lab_hosts = os.path.join(os.environ['MOLECULE_PROJECT_DIRECTORY'], 'inventory', 'lab', 'hosts.yml')
    rc, out = run_playbook('converge.yml', check=True, inventories=[lab_hosts])
    assert rc == 0, out[-3000:]
    print('--check of the whole site: %.0f s' % (time.monotonic() - started))
    for name in LAB_HOSTS:
        assert recap_counts(out, name)['changed'] == 0, name
