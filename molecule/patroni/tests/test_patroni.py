"""patroni: three members on a three-member etcd, strict synchronous replication; the client
writes numbered rows through haproxy while the leader is killed, cut off the network or
switched over, and etcd loses one then two members. Every acknowledged commit must survive,
and no two members may be writable at once. Figures are printed (run with -s)."""
import json
import os
import shlex
import subprocess
import time

import pytest

from conftest import assert_refused, lab_host, run_playbook, tcp_connect

LAYER = '../../playbooks/patroni.yml'
SWITCHOVER = '../../playbooks/patroni_switchover.yml'
ROLLING = '../../playbooks/patroni_rolling_restart.yml'
REINIT = '../../playbooks/patroni_reinit.yml'
DATA = '/var/lib/postgresql/15/main'          # postgres_data_directory (the postgres role's default)
DB_HOSTS = ['pt-db1', 'pt-db2', 'pt-db3']
CLIENT = 'pt-client'
NETWORK = 'commons-infra-patroni'
APP_PASSWORD = 'lab-app-secret'             # group_vars/all.yml
ETCD_ROOT = 'root:lab-etcd-root-secret'     # group_vars/all.yml
TTL_S = 12                                  # group_vars/db.yml: patroni_ttl
FAILOVER_BOUND_S = 60                       # a new leader well within this (ttl 12 s + promotion)
LOOP = '/var/tmp/writeloop.py'  # docker cp cannot write into the container's /tmp (a tmpfs)
WRITE_DSN = 'host=127.0.0.1 port=5000 dbname=app user=app password=%s' % APP_PASSWORD

testinfra_hosts = [CLIENT]


def docker(*args, check=True, timeout=120):
    try:
        proc = subprocess.run(['docker'] + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired as expired:
        # A member cut off the network keeps etcdctl/patronictl waiting: that is an answer too.
        proc = subprocess.CompletedProcess(expired.cmd, 124, stdout='timed out after %s s' % timeout)
    if check:
        assert proc.returncode == 0, proc.stdout
    return proc


def on(host, command, check=True, timeout=60):
    return docker('exec', host, 'sh', '-c', command, check=check, timeout=timeout)


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, 'not within %d s: %s' % (timeout, what)
        time.sleep(0.5)


def members(hosts=None):
    """patronictl list as JSON, from the first member that answers (None when none does)."""
    for host in hosts or DB_HOSTS:
        proc = on(host, 'patronictl -c /etc/patroni/config.yml list -f json 2>/dev/null', check=False, timeout=20)
        if proc.returncode == 0:
            try:
                return json.loads(proc.stdout)
            except ValueError:
                continue
    return None


def leader(hosts=None):
    found = [m['Member'] for m in members(hosts) or [] if m['Role'] == 'Leader']
    return found[0] if len(found) == 1 else None


def new_leader(old):
    """A leader other than old, asked of the other members (None while old still holds the key)."""
    found = leader([h for h in DB_HOSTS if h != old])
    return found if found and found != old else None


def healthy_cluster(expected=3):
    """One leader, the others running replicas that stream, one of them synchronous."""
    listed = members() or []
    roles = sorted(m['Role'] for m in listed)
    if len(listed) != expected or roles.count('Leader') != 1 or 'Sync Standby' not in roles:
        return None
    if any(m['State'] not in ('running', 'streaming') for m in listed):
        return None
    for m in listed:
        if m['Role'] != 'Leader' and receiver_status(m['Member']) != 'streaming':
            return None
    return listed


def receiver_status(host):
    proc = on(host, "runuser -u postgres -- psql -XAtq -c 'SELECT status FROM pg_stat_wal_receiver'", check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def address(host):
    return docker('inspect', '-f', '{{(index .NetworkSettings.Networks "%s").IPAddress}}' % NETWORK, host).stdout.strip()


@pytest.fixture(scope='module')
def addresses():
    return {host: address(host) for host in DB_HOSTS}


@pytest.fixture(scope='module')
def client(addresses):
    docker('cp', os.path.join(os.path.dirname(__file__), 'writeloop.py'), '%s:%s' % (CLIENT, LOOP))
    wait_for(healthy_cluster, 180, 'a healthy cluster before the tests')
    return lab_host(CLIENT)


def start_loop(client, addresses, name, seconds):
    """Start a loop; its run id (rows of earlier runs of the scenario stay in the table)."""
    run = '%s-%d' % (name, time.time())
    member_dsns = ['host=%s port=5432 dbname=app user=app password=%s' % (a, APP_PASSWORD) for a in addresses.values()]
    command = ['python3', LOOP, run, str(seconds), WRITE_DSN] + member_dsns
    docker('exec', '-d', CLIENT, 'sh', '-c', '%s > /tmp/%s.json 2> /tmp/%s.err' % (shlex.join(command), run, run))
    # The loop is running once its first row is acknowledged.
    wait_for(lambda: count_rows(client, run) > 0, 30, 'the first acknowledged row of %s' % run)
    return run


def count_rows(client, run):
    out = client.run("PGPASSWORD=%s psql -w -XAtq -h 127.0.0.1 -p 5000 -U app -d app -c \"SELECT count(*) FROM ha_rows WHERE run = '%s'\"",
                     APP_PASSWORD, run)
    return int(out.stdout.strip()) if out.rc == 0 and out.stdout.strip().isdigit() else 0


def finish_loop(client, run, seconds):
    def result():
        return client.run('cat /tmp/%s.json', run).stdout.strip()

    return json.loads(wait_for(result, seconds + 60, 'the end of %s' % run))


def check_no_loss(client, result, label):
    """Every acknowledged row is on the leader; prints acknowledged / present / lost and the gap."""
    acked = set(result['acknowledged'])
    new_leader = wait_for(leader, FAILOVER_BOUND_S, 'a leader to read the rows from')
    out = on(new_leader, "runuser -u postgres -- psql -XAtq -d app -c \"SELECT n FROM ha_rows WHERE run = '%s'\"" % result['run'])
    present = {int(n) for n in out.stdout.split()}
    lost = acked - present
    print('\n%s: acknowledged %d, present %d, lost %d; longest time without an acknowledged write %.1f s; '
          'failed attempts %d; moments with two writable members %d'
          % (label, len(acked), len(present & acked), len(lost), result['longest_gap_s'], result['errors'],
             len(result['split_brain'])))
    assert not lost, 'acknowledged rows missing on %s: %s' % (new_leader, sorted(lost)[:20])
    assert not result['split_brain'], result['split_brain'][:5]
    assert len(acked) > 0


def test_cluster_forms_with_one_leader_two_streaming_replicas_one_synchronous(client):
    listed = wait_for(healthy_cluster, 60, 'one leader, two streaming replicas, one synchronous')

    def etcd_health():
        return on('pt-db1', 'ETCDCTL_USER=%s etcdctl --cacert /etc/etcd/tls/ca.crt --endpoints https://127.0.0.1:2379 '
                  'endpoint health --cluster -w json 2>/dev/null' % ETCD_ROOT, check=False).stdout.strip()
    health = wait_for(etcd_health, 60, 'etcd to report its members\' health')
    endpoints = json.loads(health)
    assert len(endpoints) == 3 and all(e['health'] for e in endpoints), health
    print('\ncluster: %s; etcd: %d healthy members'
          % (', '.join('%s %s %s' % (m['Member'], m['Role'], m['State']) for m in listed), len(endpoints)))


def test_ports_are_closed_to_outsiders(client, addresses):
    """The machine is in no group: etcd, Patroni's API and PostgreSQL refuse it; the client
    (web) reaches PostgreSQL and the API (for haproxy's checks) but not etcd."""
    target = addresses['pt-db2']
    for port in (2379, 2380, 8008, 5432):
        probe = subprocess.run(['python3', '-c', 'import socket,sys; s=socket.socket(); s.settimeout(2); '
                                'sys.exit(s.connect_ex((sys.argv[1], int(sys.argv[2]))) != 0)', target, str(port)],
                               check=False)
        assert probe.returncode != 0, 'port %d open to the machine' % port
    assert not tcp_connect(client, target, 2379) and not tcp_connect(client, target, 2380)
    assert tcp_connect(client, target, 5432) and tcp_connect(client, target, 8008)


def test_etcd_refuses_patroni_outside_its_prefix(client):
    def attempt(key):
        return on('pt-db1', "ETCDCTL_USER=patroni:lab-etcd-patroni-secret etcdctl --cacert /etc/etcd/tls/ca.crt "
                  "--endpoints https://127.0.0.1:2379 put %s x" % key, check=False)
    # Patroni's user writes under /service/ (answered at all, so etcd is up), nowhere else.
    wait_for(lambda: attempt('/service/lab-test-key').returncode == 0, 60, "a write under Patroni's prefix")
    proc = attempt('/other/key')
    assert proc.returncode != 0 and 'permission denied' in proc.stdout, proc.stdout


def crash(host):
    """SIGKILL Patroni and every PostgreSQL process of the member at once (the unit's whole
    cgroup), with systemd told not to restart it: a crashed member that stays down."""
    on(host, "mkdir -p /run/systemd/system/patroni.service.d && printf '[Service]\\nRestart=no\\n' "
             "> /run/systemd/system/patroni.service.d/crash-test.conf && systemctl daemon-reload "
             "&& systemctl kill --signal=SIGKILL patroni")


def recover(host):
    on(host, 'rm -f /run/systemd/system/patroni.service.d/crash-test.conf && systemctl daemon-reload '
             '&& systemctl reset-failed patroni; systemctl start patroni')


def test_failover_when_the_leader_crashes(client, addresses):
    old = leader()
    run = start_loop(client, addresses, 'crash', 45)
    wait_for(lambda: count_rows(client, run) >= 20, 30, 'rows written before the fault')
    started = time.monotonic()
    crash(old)
    try:
        wait_for(lambda: on(old, 'pgrep -u postgres -x postgres', check=False).returncode != 0, 10,
                 'every postgres process of %s gone' % old)
        new = wait_for(lambda: new_leader(old), FAILOVER_BOUND_S, 'a new leader after killing %s' % old)
        print('\ncrash: Patroni and PostgreSQL of %s killed, %s elected after %.1f s (no playbook run)'
              % (old, new, time.monotonic() - started))
        assert new != old
        check_no_loss(client, finish_loop(client, run, 45), 'leader crashed')
    finally:
        recover(old)
    wait_for(healthy_cluster, 240, '%s back as a streaming replica' % old)
    assert leader() == new
    print('crash: %s rejoined as a streaming replica' % old)


def writable(host):
    """True while host's PostgreSQL accepts a session that is not in recovery (a primary that takes
    writes); a standby, a server shutting down or one that is stopped is not writable."""
    proc = subprocess.run(['docker', 'exec', host, 'runuser', '-u', 'postgres', '--', 'psql', '-XAtq', '-c',
                           'SELECT pg_is_in_recovery()'], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          text=True, timeout=30, check=False)
    return proc.returncode == 0 and proc.stdout.strip() == 'f'


def test_failover_when_the_leader_is_cut_off_the_network(client, addresses):
    old = leader()
    run = start_loop(client, addresses, 'cut', 45)
    wait_for(lambda: count_rows(client, run) >= 20, 30, 'rows written before the fault')
    # The cut is made inside the member (its link down): it reaches neither the other etcd
    # members nor their Patroni and PostgreSQL, and haproxy's checks of it fail. docker network
    # disconnect/connect would hand it another address, which etcd's member list would not know.
    route = on(old, 'ip route show default').stdout.strip()
    assert writable(old)
    started = time.monotonic()
    on(old, 'ip link set eth0 down')
    try:
        # The cut-off leader cannot renew its key in etcd: it must stop taking writes by itself,
        # and before another member is promoted (never two writable primaries).
        wait_for(lambda: not writable(old), 2 * TTL_S, '%s to stop being writable' % old)
        demoted = time.monotonic() - started
        new = wait_for(lambda: new_leader(old), FAILOVER_BOUND_S, 'a new leader after cutting %s off' % old)
        elected = time.monotonic() - started
        promoted = wait_for(lambda: writable(new), FAILOVER_BOUND_S, '%s to take writes' % new) and time.monotonic() - started
        print('\ncut: %s off the network; it stopped taking writes after %.1f s, %s was elected after %.1f s '
              'and took writes after %.1f s (no playbook run)' % (old, demoted, new, elected, promoted))
        assert demoted < promoted, 'the old leader was writable until %.1f s, the new one from %.1f s' % (demoted, promoted)
        assert not writable(old)
    finally:
        on(old, 'ip link set eth0 up && (ip route replace %s || true)' % route, check=False)
    check_no_loss(client, finish_loop(client, run, 45), 'leader cut off')
    wait_for(healthy_cluster, 240, '%s back as a streaming replica' % old)
    assert leader() == new, 'the leader changed when %s came back: %s' % (old, leader())
    timelines = {m['Member']: m.get('TL') for m in members()}
    print('cut: %s rejoined as a streaming replica; timelines %s' % (old, timelines))


def test_losing_one_etcd_member_changes_nothing(client, addresses):
    current = leader()
    other = [h for h in DB_HOSTS if h != current][0]
    on(other, 'systemctl stop etcd')
    try:
        run = start_loop(client, addresses, 'etcd1', 2 * TTL_S)
        result = finish_loop(client, run, 2 * TTL_S)
        assert leader() == current
        check_no_loss(client, result, 'one etcd member down')
        assert result['longest_gap_s'] < 5, result['longest_gap_s']
    finally:
        on(other, 'systemctl start etcd')


def test_losing_two_etcd_members_makes_the_cluster_read_only_until_they_return(client, addresses):
    current = leader()
    stopped = [h for h in DB_HOSTS if h != current]
    run = start_loop(client, addresses, 'etcd2', 50)
    started = time.monotonic()
    for host in stopped:
        on(host, 'systemctl stop etcd')
    try:
        wait_for(lambda: not any(writable(h) for h in DB_HOSTS), TTL_S * 4, 'the leader to demote without etcd quorum')
        print('\netcd quorum lost: every member read-only after %.1f s' % (time.monotonic() - started))
    finally:
        for host in stopped:
            on(host, 'systemctl start etcd')
    back = time.monotonic()
    wait_for(leader, FAILOVER_BOUND_S * 2, 'a writable leader after etcd recovers')
    print('etcd back: a leader again after %.1f s' % (time.monotonic() - back))
    check_no_loss(client, finish_loop(client, run, 50), 'etcd quorum lost and back')
    wait_for(healthy_cluster, 180, 'a healthy cluster after etcd recovers')


def test_switchover_runbook_loses_nothing(client, addresses):
    listed = wait_for(healthy_cluster, 120, 'a healthy cluster')
    old = [m['Member'] for m in listed if m['Role'] == 'Leader'][0]
    candidate = [m['Member'] for m in listed if m['Role'] == 'Sync Standby'][0]
    run = start_loop(client, addresses, 'switchover', 40)
    rc, out = run_playbook(SWITCHOVER, extra_vars={'patroni_switchover_candidate': candidate})
    assert rc == 0, out[-3000:]
    assert leader() == candidate
    check_no_loss(client, finish_loop(client, run, 40), 'switchover %s -> %s' % (old, candidate))


def test_rolling_restart_runbook_loses_nothing(client, addresses):
    listed = wait_for(healthy_cluster, 120, 'a healthy cluster')
    old = [m['Member'] for m in listed if m['Role'] == 'Leader'][0]
    before = {h: on(h, "runuser -u postgres -- psql -XAtq -c 'SELECT pg_postmaster_start_time()'").stdout.strip()
              for h in DB_HOSTS}
    run = start_loop(client, addresses, 'rolling', 60)
    started = time.monotonic()
    rc, out = run_playbook(ROLLING)
    assert rc == 0, out[-3000:]
    print('\nrolling restart: %.1f s for three members, leader %s -> %s' % (time.monotonic() - started, old, leader()))
    after = {h: on(h, "runuser -u postgres -- psql -XAtq -c 'SELECT pg_postmaster_start_time()'").stdout.strip()
             for h in DB_HOSTS}
    assert all(before[h] != after[h] for h in DB_HOSTS), (before, after)
    assert leader() != old
    check_no_loss(client, finish_loop(client, run, 60), 'rolling restart')


def test_reinit_runbook_rebuilds_a_replica_from_the_leader(client):
    listed = wait_for(healthy_cluster, 120, 'a healthy cluster')
    current = [m['Member'] for m in listed if m['Role'] == 'Leader'][0]
    replica = [m['Member'] for m in listed if m['Role'] == 'Replica'][0]
    # A file only this replica's data directory holds: a rebuilt directory no longer has it.
    on(replica, 'touch %s/reinit-marker' % DATA)
    started = time.monotonic()
    rc, out = run_playbook(REINIT, extra_vars={'patroni_reinit_member': replica})
    assert rc == 0, out[-3000:]
    assert on(replica, 'test -e %s/reinit-marker' % DATA, check=False).returncode != 0
    wait_for(healthy_cluster, 120, '%s streaming again' % replica)
    assert leader() == current and receiver_status(replica) == 'streaming'
    print('\nreinit: %s cloned again from %s and streaming after %.1f s' % (replica, current, time.monotonic() - started))


@pytest.mark.parametrize('playbook, extra_vars, message, host', [
    (LAYER, {'etcd_group': 'etcd_pair'},
     'etcd_group: 2 members (pt-db1, pt-db2); etcd needs an odd number', 'pt-db1'),
    (LAYER, {'patroni_cluster_group': 'patroni_single'},
     'patroni_synchronous_mode_strict: the cluster has 1 member(s) (pt-db1)', 'pt-db1'),
    (LAYER, {'patroni_cluster_group': 'patroni_wide', 'patroni_etcd_client_groups': []},
     "patroni_cluster_group: pt-client is outside the etcd cluster's reach", 'pt-db1'),
    (SWITCHOVER, {'patroni_switchover_candidate': 'pt-nowhere'},
     'patroni_switchover_candidate: pt-nowhere is not a member of the cluster', 'pt-db1'),
    (REINIT, {'patroni_reinit_member': 'pt-nowhere'},
     'patroni_reinit_member: pt-nowhere is not a member of the cluster', 'pt-db1'),
])
def test_bad_input_is_refused_before_any_change(client, playbook, extra_vars, message, host):
    assert_refused(playbook, extra_vars, [message], host)
