"""postgres runbooks, run last (they change the topology): a planned switchover
under write load loses no acknowledged row, a converge with the old inventory is
refused, a failover after a SIGKILL of the primary loses no synchronously
acknowledged row and fences the old primary, and rejoin rebuilds it.

Order: pg-db1 primary -> switchover to pg-db2 -> SIGKILL pg-db2, failover to
pg-db1 (its synchronous standby) -> rejoin pg-db2. The cluster ends with pg-db1
primary and both standbys streaming, as the inventory of an operator who updated it
after each runbook says (the overlay inventories below)."""
import time

from conftest import host_address, recap_counts, run_playbook, wait_for

LAYER = '../../playbooks/postgres.yml'
SWITCHOVER = '../../playbooks/postgres_switchover.yml'
FAILOVER = '../../playbooks/postgres_failover.yml'
REJOIN = '../../playbooks/postgres_rejoin.yml'

testinfra_hosts = ['pg-client']

DB_HOSTS = ['pg-db1', 'pg-db2', 'pg-db3']
SERVICE = 'postgresql@15-main'
APP_PASSWORD = 'lab-openlibrary-secret'  # group_vars/all.yml
LOAD_MAX_S = 300     # the load stops by itself after this, whatever happens to the test
ACKS_BEFORE = 30     # rows acknowledged before the fault, and again after the runbook
WAIT_S = 90

# Writes numbered rows through whichever member accepts writes (libpq's
# target_session_attrs=read-write), one INSERT a commit, and appends the number of
# each acknowledged commit to a file; a failed attempt reconnects. Stops on a file.
LOAD_SCRIPT = r'''
import sys, time
import psycopg2
hosts, table, acked_file, stop_file, password = sys.argv[1:6]
deadline = time.monotonic() + float(sys.argv[6])
dsn = ("host=%s dbname=openlibrary user=openlibrary password=%s connect_timeout=2 "
       "target_session_attrs=read-write" % (hosts, password))
conn, attempt, failures = None, 0, 0
with open(acked_file, 'w') as acked:
    while time.monotonic() < deadline:
        try:
            open(stop_file).close()
            break
        except OSError:
            pass
        attempt += 1
        try:
            if conn is None:
                conn = psycopg2.connect(dsn)
                conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute('INSERT INTO ' + table + ' (id) VALUES (%s)', (attempt,))
            acked.write('%d\n' % attempt)
            acked.flush()
        except Exception:
            failures += 1
            try:
                conn.close()
            except Exception:
                pass
            conn = None
            time.sleep(0.1)
print('attempts', attempt, 'failures', failures)
'''


def query(host, sql, db='openlibrary'):
    result = host.run('runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -d %s -c %s', db, sql)
    assert result.rc == 0, result.stderr
    return result.stdout.strip()


def overlay(tmp_path, roles, synchronous):
    """An inventory source whose host_vars say what the operator writes after a runbook."""
    (tmp_path / 'host_vars').mkdir(parents=True)
    (tmp_path / 'hosts.yml').write_text('all:\n  hosts:\n' + ''.join('    %s:\n' % name for name in roles))
    for name, role in roles.items():
        (tmp_path / 'host_vars' / ('%s.yml' % name)).write_text(
            'postgres_replication_role: %s\npostgres_synchronous_standbys: [%s]\n'
            % (role, ', '.join(synchronous) if role == 'primary' else ''))
    return tmp_path


class WriteLoad:
    def __init__(self, client, lab, table):
        self.client, self.table = client, table
        self.acked_file, self.stop_file = '/tmp/%s.acked' % table, '/tmp/%s.stop' % table
        addresses = ','.join(host_address(lab(name)) for name in DB_HOSTS)
        client.check_output('cat > /tmp/write_load.py <<\'EOF\'\n%s\nEOF' % LOAD_SCRIPT)
        client.run('rm -f %s %s /tmp/%s.out', self.acked_file, self.stop_file, table)
        client.check_output('nohup python3 /tmp/write_load.py %s %s %s %s %s %s > /tmp/%s.out 2>&1 &',
                            addresses, table, self.acked_file, self.stop_file, APP_PASSWORD, str(LOAD_MAX_S), table)

    def acked(self):
        return [int(n) for n in self.client.run('cat %s', self.acked_file).stdout.split()]

    def wait_for_more(self, count):
        start = len(self.acked())
        assert wait_for(lambda: len(self.acked()) >= start + count, WAIT_S), \
            'the load got %d more acknowledgements in %d s, not %d' % (len(self.acked()) - start, WAIT_S, count)

    def stop(self):
        self.client.run('touch %s', self.stop_file)
        assert wait_for(lambda: 'attempts' in self.client.run('cat /tmp/%s.out', self.table).stdout, 15)
        return self.acked(), self.client.run('cat /tmp/%s.out', self.table).stdout.strip()


def assert_every_acknowledged_row_is_on(primary, load, label):
    acked, summary = load.stop()
    present = set(int(n) for n in query(primary, 'SELECT id FROM %s' % load.table).split())
    lost = sorted(set(acked) - present)
    print('%s: acknowledged %d / present %d / lost %d (%s)' % (label, len(acked), len(set(acked) & present), len(lost), summary))
    assert acked and not lost, 'acknowledged rows missing on the new primary: %s' % lost[:20]


def streaming_standbys(primary):
    return query(primary, "SELECT application_name || ':' || sync_state FROM pg_stat_replication "
                          "WHERE state = 'streaming' ORDER BY 1", db='postgres').split()


def test_failover_refuses_while_the_primary_is_alive(host, lab):
    rc, out = run_playbook(FAILOVER)
    flat = ' '.join(out.split())
    assert rc != 0
    assert 'postgres_failover: refusing, pg-db1 is a live writable primary (found: pg-db1: primary at' in flat, out[-3000:]
    assert query(lab('pg-db1'), 'SELECT pg_is_in_recovery()') == 'f'


def test_switchover_under_write_load_loses_no_acknowledged_row(host, lab, tmp_path):
    db1, db2 = lab('pg-db1'), lab('pg-db2')
    query(db1, 'CREATE TABLE IF NOT EXISTS switchover_rows (id int PRIMARY KEY, at timestamptz DEFAULT now())')
    query(db1, 'GRANT INSERT, SELECT ON switchover_rows TO openlibrary')
    load = WriteLoad(host, lab, 'switchover_rows')
    load.wait_for_more(ACKS_BEFORE)
    started = time.monotonic()
    rc, out = run_playbook(SWITCHOVER)
    took = time.monotonic() - started
    assert rc == 0, out[-4000:]
    load.wait_for_more(ACKS_BEFORE)  # the load writes through the new primary
    assert_every_acknowledged_row_is_on(db2, load, 'switchover pg-db1 -> pg-db2')
    print('switchover runbook: %.1f s' % took)
    assert query(db2, 'SELECT pg_is_in_recovery()') == 'f'
    assert query(db1, 'SELECT pg_is_in_recovery()') == 't'
    # The old primary streams from the new one, as its synchronous standby.
    assert streaming_standbys(db2) == ['pg_db1:sync', 'pg_db3:async']
    assert query(db1, 'SELECT sender_host FROM pg_stat_wal_receiver') == host_address(db2)


def test_a_converge_with_the_old_inventory_is_refused_and_changes_nothing(host, lab):
    rc, out = run_playbook(LAYER, limit='pg-db1')
    flat = ' '.join(out.split())
    assert rc != 0
    assert ('the inventory says pg-db1 is the primary of group db, but its cluster is a standby '
            '(/var/lib/postgresql/15/main/standby.signal exists)') in flat, out[-3000:]
    assert recap_counts(out, 'pg-db1')['changed'] == 0
    # The standby the inventory leaves alone is not pointed back at pg-db1.
    rc, out = run_playbook(LAYER, limit='pg-db3')
    flat = ' '.join(out.split())
    assert rc != 0
    assert 'the inventory says pg-db1 is the primary of group db, but its cluster is a standby (or fenced)' in flat, out[-3000:]
    assert recap_counts(out, 'pg-db3')['changed'] == 0
    assert streaming_standbys(lab('pg-db2')) == ['pg_db1:sync', 'pg_db3:async']


def test_failover_after_sigkill_under_write_load(host, lab, tmp_path):
    db1, db2, db3 = lab('pg-db1'), lab('pg-db2'), lab('pg-db3')
    after_switchover = overlay(tmp_path / 'switchover', {'pg-db1': 'standby', 'pg-db2': 'primary', 'pg-db3': 'standby'},
                               ['pg-db1'])
    query(db2, 'CREATE TABLE IF NOT EXISTS failover_rows (id int PRIMARY KEY, at timestamptz DEFAULT now())')
    query(db2, 'GRANT INSERT, SELECT ON failover_rows TO openlibrary')
    load = WriteLoad(host, lab, 'failover_rows')
    load.wait_for_more(ACKS_BEFORE)
    # The runbook promotes the standby with the most WAL, the synchronous one on a tie. Under
    # load the asynchronous pg-db3 can have received a few more bytes than pg-db1 when pg-db2
    # dies (its loaded-machine run promoted pg-db3). So pg-db3 stops receiving first (empty
    # primary_conninfo stops its WAL receiver) and pg-db1, which must confirm every commit,
    # takes more rows before the kill: the most advanced standby is pg-db1, as the test needs.
    query(db3, "ALTER SYSTEM SET primary_conninfo = ''", db='postgres')
    query(db3, 'SELECT pg_reload_conf()', db='postgres')
    assert wait_for(lambda: query(db3, 'SELECT count(*) FROM pg_stat_wal_receiver', db='postgres') == '0', 30)
    load.wait_for_more(ACKS_BEFORE)
    db2.check_output('kill -KILL $(systemctl show -p MainPID --value %s)', SERVICE)
    assert wait_for(lambda: db2.run('systemctl is-active %s', SERVICE).stdout.strip() != 'active', 30)
    # pg-db3's own settings again (the runbook points it at the new primary through them).
    query(db3, 'ALTER SYSTEM RESET primary_conninfo', db='postgres')
    query(db3, 'SELECT pg_reload_conf()', db='postgres')
    started = time.monotonic()
    rc, out = run_playbook(FAILOVER, inventories=[after_switchover])
    took = time.monotonic() - started
    assert rc == 0, out[-4000:]
    assert 'Promoting pg-db1, fencing pg-db2' in ' '.join(out.split()), out[-3000:]
    load.wait_for_more(ACKS_BEFORE)  # the load writes through the new primary, confirmed by pg-db3
    assert_every_acknowledged_row_is_on(db1, load, 'failover pg-db2 (SIGKILL) -> pg-db1')
    print('failover runbook: %.1f s' % took)
    assert query(db1, 'SELECT pg_is_in_recovery()') == 'f'
    # The other standby streams from the new primary, and confirms its commits.
    assert streaming_standbys(db1) == ['pg_db3:sync']
    assert query(db3, 'SELECT sender_host FROM pg_stat_wal_receiver') == host_address(db1)
    # The old primary takes no writes and cannot be started, by systemd or pg_ctlcluster.
    assert db2.run('runuser -u postgres -- psql -XAtq -d openlibrary -c %s', 'INSERT INTO failover_rows VALUES (-1)').rc != 0
    assert db2.run('systemctl start %s', SERVICE).rc != 0
    assert db2.run('pg_ctlcluster 15 main start').rc != 0
    assert db2.run('systemctl is-active %s', SERVICE).stdout.strip() != 'active'
    assert db2.file('/var/lib/postgresql/15/main/standby.signal').exists
    # Nor converged as a primary by the role with the old inventory.
    rc, out = run_playbook(LAYER, limit='pg-db2', inventories=[after_switchover])
    assert rc != 0 and 'pg-db2 was fenced by playbooks/postgres_failover.yml' in ' '.join(out.split()), out[-3000:]


def test_rejoin_rebuilds_the_fenced_primary_as_a_standby(host, lab, tmp_path):
    db1, db2 = lab('pg-db1'), lab('pg-db2')
    after_failover = overlay(tmp_path / 'failover', {'pg-db1': 'primary', 'pg-db2': 'standby', 'pg-db3': 'standby'},
                             ['pg-db3'])
    rc, out = run_playbook(REJOIN, extra_vars={'postgres_rejoin_host': 'pg-db2'}, inventories=[after_failover])
    assert rc == 0, out[-4000:]
    assert streaming_standbys(db1) == ['pg_db2:async', 'pg_db3:sync']
    assert query(db2, 'SELECT pg_is_in_recovery()') == 't'
    assert not db2.file('/etc/postgresql/15/main/FENCED-by-commons-infra').exists
    # A row the failed primary wrote after its standbys last heard from it is gone (rewound);
    # rows written through pg-db1 arrive.
    count = query(db1, 'SELECT count(*) FROM failover_rows')
    assert wait_for(lambda: query(db2, 'SELECT count(*) FROM failover_rows') == count, 30)
    # A converge with the updated inventory keeps the new topology.
    rc, out = run_playbook(LAYER, inventories=[after_failover])
    assert rc == 0, out[-4000:]
    assert streaming_standbys(db1) == ['pg_db2:async', 'pg_db3:sync']
