"""pgbackrest: WAL archiving and timed backups on the primary (local repository), and
playbooks/postgres_restore_drill.yml restoring a real backup (full + archived WAL) into a
scratch instance on pg-db1, latest and to a point in time, without touching the live
cluster. Runs before test_postgres.py and test_runbooks.py, on the converged cluster."""
import json
import re
import time

import pytest

from conftest import lab_host, recap_counts, run_playbook, wait_for

LAYER = '../../playbooks/postgres.yml'
DRILL = '../../playbooks/postgres_restore_drill.yml'
SERVICE = 'postgresql@15-main'
SCRATCH = '/var/lib/postgresql/restore-drill'
SCRATCH_SOCKET = '/var/run/postgresql/.s.PGSQL.5499'
TABLE = 'public.drill_rows'

testinfra_hosts = ['pg-db1']


def query(host, sql, db='openlibrary'):
    result = host.run('runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -d %s -c %s', db, sql)
    assert result.rc == 0, result.stderr
    return result.stdout.strip()


def main_pid(host):
    return host.check_output('systemctl show -p MainPID --value %s', SERVICE)


def drill(**extra_vars):
    variables = {'postgres_restore_drill_host': 'pg-db1', 'postgres_restore_drill_database': 'openlibrary'}
    variables.update(extra_vars)
    started = time.monotonic()
    rc, out = run_playbook(DRILL, extra_vars=variables)
    return rc, out, time.monotonic() - started


def figures(out):
    """The drill's printed figures line."""
    found = re.findall(r'"msg": "(Restore drill on [^"]*)"', out)
    assert found, out[-3000:]
    return ' '.join(found[-1].split())


def assert_scratch_gone(host):
    assert not host.file(SCRATCH).exists
    assert not host.file(SCRATCH_SOCKET).exists


@pytest.fixture(scope='module')
def backed_up():
    """A full backup by the role's own unit, then two inserts with a timestamp between
    them, their WAL archived: {'between': timestamp}."""
    host = lab_host('pg-db1')
    query(host, 'DROP TABLE IF EXISTS %s' % TABLE)
    query(host, 'CREATE TABLE %s (note text, at timestamptz DEFAULT clock_timestamp())' % TABLE)
    started = time.monotonic()
    backup = host.run('systemctl start pgbackrest-backup@full.service')
    took = time.monotonic() - started
    assert backup.rc == 0, host.run('journalctl -u pgbackrest-backup@full.service -n 30 --no-pager').stdout
    info = host.check_output('runuser -u postgres -- pgbackrest --stanza=main info')
    print('full backup by pgbackrest-backup@full.service: %.1f s; %s' % (
        took, ' '.join(line.strip() for line in info.splitlines() if 'backup:' in line or 'database size' in line)))
    # pgBackRest keeps a backup's stop time in whole seconds and picks, for a time target, a
    # backup that stopped before it: let the clock leave the second the backup stopped in.
    stopped = json.loads(host.check_output('runuser -u postgres -- pgbackrest --stanza=main --output=json info'))[0]
    stop = stopped['backup'][-1]['timestamp']['stop']
    assert wait_for(lambda: float(query(host, 'SELECT extract(epoch FROM clock_timestamp())')) >= stop + 1, 5)
    query(host, "INSERT INTO %s (note) VALUES ('first')" % TABLE)
    between = query(host, 'SELECT clock_timestamp()')
    query(host, "INSERT INTO %s (note) VALUES ('second')" % TABLE)
    # check switches WAL and waits until the segment with both inserts is in the repository.
    host.check_output('runuser -u postgres -- pgbackrest --stanza=main check')
    return {'between': between}


def test_the_primary_archives_every_wal_segment_and_the_timers_are_set(host):
    # Segments written between the restart for archive_mode and the stanza's creation
    # (first converge) failed and were pushed after it; nothing fails since.
    stats = query(host, "SELECT archived_count > 0, last_archived_time > coalesce(last_failed_time, '-infinity') "
                        "FROM pg_stat_archiver", db='postgres')
    assert stats == 't|t'
    assert query(host, 'SHOW archive_command', db='postgres') == 'pgbackrest --stanza=main archive-push %p'
    for timer in ('pgbackrest-full.timer', 'pgbackrest-diff.timer'):
        assert host.service(timer).is_enabled and host.service(timer).is_running
    config = host.file('/etc/pgbackrest.conf')
    assert (config.user, config.group, config.mode) == ('root', 'postgres', 0o640)


def test_a_standby_skips_the_backup(lab):
    standby = lab('pg-db3')
    assert standby.run('systemctl start pgbackrest-backup@diff.service').rc == 0
    log = standby.run('journalctl -u pgbackrest-backup@diff.service --no-pager -o cat').stdout
    assert "Skipped due to 'exec-condition'" in log, log
    assert 'backup command begin' not in log


def test_the_drill_restores_the_latest_backup_and_wal(host, backed_up):
    pid = main_pid(host)
    rc, out, took = drill(postgres_restore_drill_row_counts={TABLE: 2})
    assert rc == 0, out[-4000:]
    line = figures(out)
    print('%s [drill %.1f s]' % (line, took))
    assert 'rows in public.drill_rows = 2 (expected 2)' in line
    assert_scratch_gone(host)
    assert main_pid(host) == pid
    assert query(host, 'SELECT count(*) FROM %s' % TABLE) == '2'


def test_the_drill_restores_to_a_point_in_time_between_two_inserts(host, backed_up):
    rc, out, took = drill(postgres_restore_drill_target_time=backed_up['between'],
                          postgres_restore_drill_row_counts={TABLE: 1},
                          postgres_restore_drill_queries=[{'query': "SELECT string_agg(note, ',') FROM %s" % TABLE,
                                                           'expect': 'first'}])
    assert rc == 0, out[-4000:]
    line = figures(out)
    print('%s [PITR to %s, drill %.1f s]' % (line, backed_up['between'], took))
    assert "= first (expected first)" in line
    assert_scratch_gone(host)


def test_a_drill_that_finds_other_figures_fails_and_cleans_up(host, backed_up):
    rc, out, _took = drill(postgres_restore_drill_row_counts={TABLE: 3})
    assert rc != 0
    assert 'rows in public.drill_rows = 2, expected 3' in ' '.join(out.split()), out[-3000:]
    assert_scratch_gone(host)


@pytest.mark.parametrize('extra_vars, message', [
    ({'postgres_restore_drill_host': ''}, 'postgres_restore_drill_host must name the host to restore on'),
    ({'postgres_restore_drill_port': 5432}, "postgres_restore_drill_port must differ from the live server's port 5432"),
    ({'postgres_restore_drill_directory': '/var/lib/postgresql/15'},
     'postgres_restore_drill_directory (/var/lib/postgresql/15) must not be inside the live data directory or contain it'),
])
def test_a_drill_with_bad_input_fails_before_touching_the_host(host, extra_vars, message):
    rc, out, _took = drill(postgres_restore_drill_row_counts={TABLE: 2}, **extra_vars)
    assert rc != 0
    assert message in ' '.join(out.split()), out[-3000:]
    assert 'pg-db1 ' not in out.rsplit('PLAY RECAP', maxsplit=1)[-1]


def test_bad_backup_settings_fail_before_any_change_naming_the_variable(host):
    rc, out = run_playbook(LAYER, limit='pg-db1', extra_vars={
        'pgbackrest_retention_full': 0, 'pgbackrest_repo_path': '/var/lib/postgresql/15/main/backups'})
    flat = ' '.join(out.split())
    assert rc != 0
    assert 'pgbackrest_retention_full must be at least 1, got 0' in flat, out[-3000:]
    assert 'pgbackrest_repo_path (/var/lib/postgresql/15/main/backups) must not be inside the data directory' in flat
    assert recap_counts(out, 'pg-db1')['changed'] == 0
    assert not host.file('/var/lib/postgresql/15/main/backups').exists
