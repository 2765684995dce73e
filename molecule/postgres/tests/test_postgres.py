"""postgres: a primary and two streaming standbys (one synchronous), tuned to the
container's memory limit, reachable only by the web group, with bad input refused
before any change."""
import time
import uuid

import pytest
import testinfra

from conftest import host_address, recap_counts, run_playbook, tcp_connect, wait_for

# The layer playbook alone (converge.yml adds base's firewall): what an operator re-runs.
LAYER = '../../playbooks/postgres.yml'

testinfra_hosts = ['pg-db1']

DB_HOSTS = ['pg-db1', 'pg-db2', 'pg-db3']
SERVICE = 'postgresql@15-main'
DROPIN = '/etc/postgresql/15/main/conf.d/50-commons-infra.conf'
HBA = '/etc/postgresql/15/main/pg_hba.conf'
APP_PASSWORD = 'lab-openlibrary-secret'  # group_vars/all.yml
SYNC_WAIT_S = 5     # how long a commit must be seen waiting for the stopped sync standby
REPLAY_WAIT_S = 15  # bound for a row to appear on a standby / a waiting commit to finish


def psql(host, sql, db='postgres'):
    """Run sql as the postgres superuser on host; the CommandResult (rc, stdout, stderr)."""
    return host.run('runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -d %s -c %s', db, sql)


def query(host, sql, db='postgres'):
    result = psql(host, sql, db)
    assert result.rc == 0, result.stderr
    return result.stdout.strip()


def client_psql(client, address, sql, user='openlibrary', password=APP_PASSWORD, db='openlibrary'):
    return client.run('PGPASSWORD=%s PGCONNECT_TIMEOUT=5 psql -w -XAtq -h %s -U %s -d %s -c %s',
                      password, address, user, db, sql)


def main_pid(host):
    return host.check_output('systemctl show -p MainPID --value %s', SERVICE)


@pytest.fixture
def standbys(lab):
    return [lab('pg-db2'), lab('pg-db3')]


def test_both_standbys_stream_from_the_primary(host):
    rows = query(host, 'SELECT application_name, state, sync_state FROM pg_stat_replication ORDER BY 1')
    print('pg_stat_replication on pg-db1:', rows.replace('\n', '; '))
    assert rows.splitlines() == ['pg_db2|streaming|sync', 'pg_db3|streaming|async']
    slots = query(host, 'SELECT slot_name, active FROM pg_replication_slots ORDER BY 1')
    assert slots.splitlines() == ['pg_db2|t', 'pg_db3|t']


def test_roles_are_as_the_inventory_says(host, standbys):
    assert query(host, 'SELECT pg_is_in_recovery()') == 'f'
    for standby in standbys:
        assert query(standby, 'SELECT pg_is_in_recovery()') == 't'
        assert standby.file('/var/lib/postgresql/15/main/standby.signal').exists


def test_row_written_on_primary_is_read_on_each_standby(host, standbys):
    token = uuid.uuid4().hex
    query(host, 'CREATE TABLE IF NOT EXISTS replication_probe (token text PRIMARY KEY)', db='openlibrary')
    query(host, "INSERT INTO replication_probe VALUES ('%s')" % token, db='openlibrary')
    for standby in standbys:
        seen = wait_for(lambda: query(standby, "SELECT count(*) FROM replication_probe WHERE token = '%s'" % token,
                                      db='openlibrary') == '1', REPLAY_WAIT_S)
        assert seen, 'row %s not replayed on %s' % (token, standby.backend.host)


def test_a_write_on_a_standby_is_refused(standbys):
    for standby in standbys:
        result = psql(standby, "INSERT INTO replication_probe VALUES ('standby-write')", db='openlibrary')
        assert result.rc != 0
        assert 'cannot execute INSERT in a read-only transaction' in result.stderr


def test_memory_settings_follow_the_container_limit(host, standbys):
    # 768 MiB limit (molecule.yml); /proc/meminfo shows the whole machine.
    assert int(host.check_output("awk '/MemTotal/ {print $2}' /proc/meminfo")) // 1024 > 4 * 768
    for server in [host] + standbys:
        settings = dict(line.split('|') for line in query(server, (
            "SELECT name, setting || coalesce(unit, '') FROM pg_settings WHERE name IN "
            "('shared_buffers', 'effective_cache_size', 'maintenance_work_mem', 'work_mem', 'max_connections')")).splitlines())
        # 8kB pages: 192 MiB = 24576 pages; 576 MiB = 73728 pages
        assert settings == {'shared_buffers': '245768kB', 'effective_cache_size': '737288kB',
                            'maintenance_work_mem': '49152kB', 'work_mem': '1024kB', 'max_connections': '100'}


def test_the_web_client_logs_in_with_its_password_only(host, lab):
    client = lab('pg-client')
    address = host_address(host)
    ok = client_psql(client, address, 'SELECT current_user')
    assert ok.rc == 0 and ok.stdout.strip() == 'openlibrary', ok.stderr
    wrong = client_psql(client, address, 'SELECT 1', password='not-the-password')
    assert wrong.rc != 0 and 'password authentication failed for user "openlibrary"' in wrong.stderr
    # No rule lets the superuser (or any other database) in from the network.
    superuser = client_psql(client, address, 'SELECT 1', user='postgres', db='postgres')
    assert superuser.rc != 0 and 'no pg_hba.conf entry' in superuser.stderr


def test_hba_is_scram_only(host):
    methods = query(host, "SELECT DISTINCT auth_method FROM pg_hba_file_rules WHERE type <> 'local'")
    assert methods.splitlines() == ['scram-sha-256']


def test_5432_is_closed_to_hosts_outside_the_allowed_groups(host, lab):
    address = host_address(host)
    assert tcp_connect(lab('pg-client'), address, 5432)
    # The machine running the tests is on the scenario network but in no inventory group.
    outsider = testinfra.get_host('local://')
    assert not tcp_connect(outsider, address, 5432)


def test_a_reloadable_setting_reloads_without_restart(host):
    pid = main_pid(host)
    rc, out = run_playbook(LAYER, extra_vars={'postgres_work_mem_mb': 8}, limit='pg-db1')
    assert rc == 0, out[-3000:]
    assert query(host, 'SHOW work_mem') == '8MB'
    assert main_pid(host) == pid


def test_a_restart_setting_restarts_once(host, standbys):
    pid = main_pid(host)
    rc, out = run_playbook(LAYER, extra_vars={'postgres_shared_buffers_mb': 160}, limit='pg-db1')
    assert rc == 0, out[-3000:]
    assert query(host, 'SHOW shared_buffers') == '160MB'
    assert main_pid(host) != pid
    assert query(host, 'SELECT count(*) FROM pg_settings WHERE pending_restart') == '0'
    rc, out = run_playbook(LAYER, limit='pg-db1')
    assert rc == 0, out[-3000:]
    assert query(host, 'SHOW shared_buffers') == '192MB'
    assert query(host, 'SHOW work_mem') == '1MB'
    for standby in standbys:
        assert wait_for(lambda: query(host, "SELECT state FROM pg_stat_replication WHERE application_name = '%s'"
                                      % standby.backend.host.replace('-', '_')) == 'streaming', REPLAY_WAIT_S)


def test_a_setting_the_server_cannot_read_leaves_the_last_good_file(host):
    dropin_before = host.file(DROPIN).sha256sum
    pid = main_pid(host)
    rc, out = run_playbook(LAYER, extra_vars={'postgres_settings': {'work_mem': 'lots'}}, limit='pg-db1')
    assert rc != 0
    assert 'The server refused the new configuration' in ' '.join(out.split())
    assert host.file(DROPIN).sha256sum == dropin_before
    assert main_pid(host) == pid
    assert query(host, 'SHOW work_mem') == '1MB'


def test_sync_commit_waits_for_the_sync_standby_and_completes_when_it_returns(host, lab):
    sync_standby = lab('pg-db2')
    query(host, 'CREATE TABLE IF NOT EXISTS sync_probe (id int)', db='openlibrary')
    host.run('rm -f /tmp/sync-commit.rc')
    sync_standby.check_output('systemctl stop %s', SERVICE)
    try:
        started = time.monotonic()
        host.check_output('runuser -u postgres -- sh -c %s',
                          "(psql -XAtq -d openlibrary -c 'INSERT INTO sync_probe VALUES (42)'; "
                          "echo $? > /tmp/sync-commit.rc) >/dev/null 2>&1 &")
        time.sleep(SYNC_WAIT_S)
        assert not host.file('/tmp/sync-commit.rc').exists, 'the commit returned without its synchronous standby'
        assert query(host, "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'") == '1'
        # The asynchronous standby got the row but does not count as a confirmation.
        assert wait_for(lambda: query(lab('pg-db3'), 'SELECT count(*) FROM sync_probe', db='openlibrary') == '1',
                        REPLAY_WAIT_S)
    finally:
        sync_standby.check_output('systemctl start %s', SERVICE)
    returned = wait_for(lambda: host.file('/tmp/sync-commit.rc').exists, REPLAY_WAIT_S)
    waited = time.monotonic() - started
    assert returned, 'the commit did not complete after the synchronous standby came back'
    assert host.file('/tmp/sync-commit.rc').content_string.strip() == '0'
    assert query(sync_standby, 'SELECT count(*) FROM sync_probe', db='openlibrary') == '1'
    print('sync commit waited %.1f s (standby stopped for %d s, then started)' % (waited, SYNC_WAIT_S))
    query(host, 'DROP TABLE sync_probe', db='openlibrary')


def test_check_mode_on_the_converged_cluster_changes_nothing(host):
    started = time.monotonic()
    rc, out = run_playbook(LAYER, check=True)
    assert rc == 0, out[-3000:]
    for name in DB_HOSTS:
        assert recap_counts(out, name)['changed'] == 0, name
    print('--check --diff of the three db hosts: %.1f s, 0 changed' % (time.monotonic() - started))


BAD_INPUT = [
    pytest.param({'postgres_hba': [{'name': 'office', 'databases': ['openlibrary'], 'users': ['openlibrary'],
                                    'from_cidrs': ['10.0.0.300/24']}]},
                 ['postgres_hba[0] (office)', 'from_cidrs has entries that are not CIDRs or IP addresses: 10.0.0.300/24'],
                 id='bad-cidr'),
    pytest.param({'postgres_replication_role': 'standby'},
                 ['postgres_replication_role: pg-db1, pg-db2, pg-db3 are each a standby but no host of the cluster is primary'],
                 id='standby-without-primary'),
    pytest.param({'postgres_replication_role': 'primary'},
                 ['postgres_replication_role: a cluster has one primary, found 3: pg-db1, pg-db2, pg-db3'],
                 id='two-primaries'),
    pytest.param({'postgres_replication_password': ''},
                 ['postgres_replication_password must be set', 'postgres_replication_user=replicator'],
                 id='replication-user-without-password'),
    pytest.param({'postgres_shared_buffers_mb': 4096},
                 ['postgres_shared_buffers_mb (4096 MiB) is larger than the usable memory of the host (768 MiB)'],
                 id='tuning-above-memory'),
    pytest.param({'postgres_databases': [{'name': 'catalog', 'owner': 'nobody'}]},
                 ['postgres_databases: unknown owner(s) nobody'],
                 id='unknown-owner'),
]


@pytest.mark.parametrize('extra_vars,messages', BAD_INPUT)
def test_bad_input_fails_before_any_change(host, extra_vars, messages):
    files_before = (host.file(DROPIN).sha256sum, host.file(HBA).sha256sum)
    pid_before = main_pid(host)
    # On the primary alone: validation reads the whole cluster's layout from the inventory anyway.
    rc, out = run_playbook(LAYER, extra_vars=extra_vars, limit='pg-db1')
    assert rc != 0, out[-3000:]
    flat = ' '.join(out.split())
    for message in messages:
        assert message in flat, out[-3000:]
    assert recap_counts(out, 'pg-db1')['changed'] == 0
    assert (host.file(DROPIN).sha256sum, host.file(HBA).sha256sum) == files_before
    assert main_pid(host) == pid_before


# -- pgbouncer ---------------------------------------------------------------

CLIENTS = 500
SERVER_CONNECTION_LIMIT = 40
LOAD_SCRIPT = r'''
import sys, threading, time
import psycopg2
host, clients = sys.argv[1], int(sys.argv[2])
connected = threading.Barrier(clients + 1, timeout=120)
done = threading.Barrier(clients + 1, timeout=120)
ok = []
errors = []
def client():
    try:
        conn = psycopg2.connect(host=host, port=6432, dbname='openlibrary', user='openlibrary',
                                password=sys.argv[3], connect_timeout=60)
        conn.autocommit = True
    except Exception as exc:
        errors.append(str(exc).strip()); connected.abort(); return
    try:
        connected.wait()
        with conn.cursor() as cur:
            for _ in range(3):
                cur.execute('SELECT pg_sleep(0.02), 1')
                assert cur.fetchone()[1] == 1
        ok.append(1)
        done.wait()
    except Exception as exc:
        errors.append(str(exc).strip())
    finally:
        conn.close()
threads = [threading.Thread(target=client) for _ in range(clients)]
started = time.time()
for thread in threads:
    thread.start()
connected.wait()
print('connected', clients, round(time.time() - started, 1), flush=True)
done.wait()
for thread in threads:
    thread.join()
print('ok', len(ok), 'errors', len(errors), round(time.time() - started, 1), (errors or [''])[0])
'''


def pgbouncer_admin(host, command):
    return query_port(host, command, port=6432, db='pgbouncer')


def query_port(host, sql, port, db):
    result = host.run('runuser -u postgres -- psql -XAtq -h /var/run/postgresql -p %s -d %s -c %s', str(port), db, sql)
    assert result.rc == 0, result.stderr
    return result.stdout.strip()


def test_500_clients_share_at_most_40_server_connections(host, lab):
    client = lab('pg-client')
    client.check_output('cat > /tmp/pgbouncer_load.py <<\'EOF\'\n%s\nEOF' % LOAD_SCRIPT)
    sampler = ("for i in $(seq 1 400); do [ -e /tmp/sampler.stop ] && break; psql -XAtq -d postgres -c \"SELECT count(*) "
               "FROM pg_stat_activity WHERE datname = 'openlibrary' AND usename = 'openlibrary'\"; sleep 0.2; done "
               "> /tmp/server-conns.txt")
    host.run('rm -f /tmp/server-conns.txt /tmp/sampler.stop')
    host.check_output('runuser -u postgres -- sh -c %s', '(%s) >/dev/null 2>&1 &' % sampler)
    load = client.run('timeout 180 python3 /tmp/pgbouncer_load.py %s %s %s', host_address(host), str(CLIENTS), APP_PASSWORD)
    host.run('touch /tmp/sampler.stop')
    print(load.stdout)
    assert load.rc == 0, load.stdout + load.stderr
    assert 'connected %d' % CLIENTS in load.stdout
    assert 'ok %d errors 0' % CLIENTS in load.stdout
    samples = [int(n) for n in host.file('/tmp/server-conns.txt').content_string.split()]
    print('server connections of openlibrary during the load: max %d over %d samples' % (max(samples), len(samples)))
    assert 0 < max(samples) <= SERVER_CONNECTION_LIMIT


def test_pgbouncer_refuses_a_wrong_password(host, lab):
    client = lab('pg-client')
    wrong = client.run('PGPASSWORD=not-it PGCONNECT_TIMEOUT=5 psql -w -XAtq -h %s -p 6432 -U openlibrary -d openlibrary -c %s',
                       host_address(host), 'SELECT 1')
    # pgbouncer answers a failed SCRAM exchange with this, PostgreSQL with "password authentication failed"
    assert wrong.rc != 0 and 'SASL authentication failed' in wrong.stderr
    right = client.run('PGPASSWORD=%s PGCONNECT_TIMEOUT=5 psql -w -XAtq -h %s -p 6432 -U openlibrary -d openlibrary -c %s',
                       APP_PASSWORD, host_address(host), 'SELECT current_user')
    assert right.rc == 0 and right.stdout.strip() == 'openlibrary', right.stderr


def test_pgbouncer_keeps_no_password_and_its_console_is_local(host, lab):
    assert host.file('/etc/pgbouncer/userlist.txt').size == 0
    assert 'auth_query' in pgbouncer_admin(host, 'SHOW CONFIG')
    client = lab('pg-client')
    remote = client.run('PGPASSWORD=%s PGCONNECT_TIMEOUT=5 psql -w -XAtq -h %s -p 6432 -U openlibrary -d pgbouncer -c %s',
                        APP_PASSWORD, host_address(host), 'SHOW POOLS')
    assert remote.rc != 0


def test_6432_is_closed_to_hosts_outside_the_allowed_groups(host, lab):
    address = host_address(host)
    assert tcp_connect(lab('pg-client'), address, 6432)
    assert not tcp_connect(testinfra.get_host('local://'), address, 6432)


HELD_SESSION = r'''
import os, sys, time
import psycopg2
conn = psycopg2.connect(host=sys.argv[1], port=6432, dbname='openlibrary', user='openlibrary', password=sys.argv[2])
conn.autocommit = True
cur = conn.cursor()
cur.execute('SELECT pg_backend_pid()')
print('before', cur.fetchone()[0], flush=True)
deadline = time.monotonic() + 300
while not os.path.exists('/tmp/held.go') and time.monotonic() < deadline:
    time.sleep(0.2)
cur.execute('SELECT 2')
print('after', cur.fetchone()[0], flush=True)
'''


def test_pgbouncer_applies_a_changed_pool_size_by_reload_keeping_its_clients(host, lab):
    client = lab('pg-client')
    pid = host.check_output('systemctl show -p MainPID --value pgbouncer')
    # A client session open through pgbouncer across the change must still be served after it.
    client.check_output('cat > /tmp/held_session.py <<\'EOF\'\n%s\nEOF' % HELD_SESSION)
    client.run('rm -f /tmp/held.out /tmp/held.go')
    client.check_output('nohup python3 /tmp/held_session.py %s %s > /tmp/held.out 2>&1 &', host_address(host), APP_PASSWORD)
    assert wait_for(lambda: 'before' in client.run('cat /tmp/held.out').stdout, REPLAY_WAIT_S)
    rc, out = run_playbook(LAYER, extra_vars={'pgbouncer_databases': [{'name': 'openlibrary', 'pool_size': 25}]},
                           limit='pg-db1')
    client.run('touch /tmp/held.go')
    assert rc == 0, out[-3000:]
    assert 'RUNNING HANDLER [commons.infra.pgbouncer : Reload pgbouncer]' in out
    pool_sizes = {row.split('|')[0]: row.split('|')[5] for row in pgbouncer_admin(host, 'SHOW DATABASES').splitlines()}
    assert pool_sizes['openlibrary'] == '25'
    assert host.check_output('systemctl show -p MainPID --value pgbouncer') == pid
    assert wait_for(lambda: 'after 2' in client.run('cat /tmp/held.out').stdout, REPLAY_WAIT_S), \
        client.run('cat /tmp/held.out').stdout
