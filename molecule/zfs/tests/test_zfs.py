"""zfs: datasets per flavor on zfs-fuse, sanoid snapshots and pruning, syncoid pulling to the
backup host over a restricted key, and staging clones refreshed without pulling data from
under a user; bad input refused before any change."""
import time

import pytest

from conftest import lab_host, recap_counts, run_playbook, wait_for

LAYER = '../../playbooks/zfs.yml'
STAGING = '../../playbooks/zfs_staging_refresh.yml'
UNIT = 'syncoid-zfs-prod-tank-off'   # syncoid_plan's name for zfs-prod:tank/off
TARGET = 'tank/zfs-prod/off'
TARGET_MOUNT = '/backup/zfs-prod/off'
KEY = '/root/.ssh/syncoid_ed25519'

testinfra_hosts = ['zfs-prod']


@pytest.fixture(scope='module')
def backup():
    return lab_host('zfs-backup')


def zget(host, prop, dataset):
    return host.check_output('zfs get -H -o value %s %s', prop, dataset)


def snapshots(host, dataset, kind=''):
    out = host.check_output('zfs list -H -o name -t snapshot -r %s', dataset)
    return [s for s in out.splitlines() if s.startswith(dataset + '@') and kind in s]


def checksums(host, path):
    """sha256 of every file under path, by relative name."""
    return host.check_output("cd %s && find . -type f -print0 | sort -z | xargs -0 -r sha256sum", path)


def write_data(host, path, name, mib=2):
    host.check_output('head -c %sM /dev/urandom > %s/%s', str(mib), path, name)


def test_datasets_have_the_requested_properties_and_mounts(host, backup):
    expected = {
        'tank/off': {'compression': 'on', 'recordsize': '64K', 'atime': 'off', 'quota': '200M', 'mountpoint': '/mnt/off'},
        'tank/obf': {'compression': 'gzip-9', 'recordsize': '128K', 'atime': 'off', 'quota': 'none', 'mountpoint': '/mnt/obf'},
        'tank/images': {'compression': 'lzjb', 'recordsize': '128K', 'atime': 'on', 'mountpoint': '/srv/images'},
    }
    for dataset, props in expected.items():
        for prop, value in props.items():
            assert zget(host, prop, dataset) == value, (dataset, prop)
        assert zget(host, 'mounted', dataset) == 'yes'
        mount = props['mountpoint']
        host.check_output('echo probe > %s/.probe && cat %s/.probe && rm %s/.probe', mount, mount, mount)
        # The data really lands in the dataset: its usage is what zfs accounts, not the container's disk.
    assert host.run('zfs list tank/False').rc != 0
    assert zget(backup, 'mounted', 'tank/zfs-prod') == 'yes'


def test_sanoid_takes_snapshots_on_its_timer_without_duplicates(host):
    assert host.service('sanoid.timer').is_running
    host.check_output('systemctl start sanoid.service')
    first = snapshots(host, 'tank/off', 'autosnap_')
    assert any(s.endswith('_hourly') for s in first) and any(s.endswith('_daily') for s in first), first
    assert snapshots(host, 'tank/obf', 'autosnap_')
    # zfs-fuse lacks `zfs get -t`; without the shim sanoid would take the same snapshots again.
    host.check_output('systemctl start sanoid.service')
    assert snapshots(host, 'tank/off', 'autosnap_') == first
    assert host.run('sanoid --monitor-snapshots').rc == 0


def test_sanoid_prunes_to_policy_and_the_monitor_sees_stale_snapshots(host):
    # Time is driven by sanoid's own runs under a faked clock (libfaketime): each run takes
    # the hourly snapshot due at its time; ZFS does the work for real. The timer is paused
    # so that its runs do not add snapshots meanwhile.
    host.check_output('systemctl stop sanoid.timer')
    try:
        for hours in range(1, 6):
            # sanoid orders snapshots by their creation property, which ZFS stamps with the real
            # clock (whole seconds): each run starts in a second of its own, so the order is sure.
            before = int(host.check_output('date +%s'))
            assert wait_for(lambda before=before: int(host.check_output('date +%s')) > before, 5, interval=0.1)
            host.check_output('faketime -f +%sh sanoid --take-snapshots --force-update' % hours)
        hourly = snapshots(host, 'tank/off', '_hourly')
        assert len(hourly) >= 6, hourly
        host.check_output('faketime -f +5h sanoid --prune-snapshots --force-update')
        kept = snapshots(host, 'tank/off', '_hourly')
        assert len(kept) == 3, kept                     # sanoid_datasets: tank/off hourly: 3
        assert kept == hourly[-3:]                      # the newest ones
        assert len(snapshots(host, 'tank/obf', '_hourly')) == 6   # template production: hourly 36
        stale = host.run('faketime -f +2d sanoid --monitor-snapshots')
        assert stale.rc == 2 and 'CRIT' in stale.stdout, stale.stdout
    finally:
        host.check_output('systemctl start sanoid.timer')


def pull(backup):
    return backup.run('systemctl start %s.service', UNIT)


def test_syncoid_replicates_then_sends_an_incremental(host, backup):
    write_data(host, '/mnt/off', 'full.bin')
    result = pull(backup)
    assert result.rc == 0, backup.run('journalctl -u %s.service -n 30 --no-pager', UNIT).stdout
    assert checksums(backup, TARGET_MOUNT) == checksums(host, '/mnt/off')
    write_data(host, '/mnt/off', 'incremental.bin', 1)
    host.check_output('echo changed >> /mnt/off/full.bin')
    since = backup.check_output('date "+%Y-%m-%d %H:%M:%S"')
    assert pull(backup).rc == 0
    log = backup.check_output('journalctl -u %s.service --since %s --no-pager', UNIT, since)
    assert 'incremental' in log.lower(), log
    assert checksums(backup, TARGET_MOUNT) == checksums(host, '/mnt/off')
    # The received snapshots include sanoid's: the backup host's prune-only sanoid sees them.
    assert snapshots(backup, TARGET, 'autosnap_')


def test_the_syncoid_key_can_only_read_its_dataset(host, backup):
    ssh = 'ssh -i %s -o UserKnownHostsFile=/root/.ssh/syncoid_known_hosts -o BatchMode=yes syncoid@zfs-prod ' % KEY
    for command in ('id', 'zfs destroy -r tank/off', 'zfs send tank/obf@x', "zfs rollback tank/off@x"):
        result = backup.run(ssh + "'%s'" % command)
        assert result.rc != 0 and 'refused' in result.stderr, (command, result.stderr)
    assert zget(host, 'mounted', 'tank/off') == 'yes'
    assert backup.run(ssh + "'zfs list -H -o name tank/off'").stdout.strip() == 'tank/off'


def test_a_write_on_the_target_does_not_silently_break_replication(host, backup):
    try:
        backup.check_output('echo rogue > %s/rogue.txt', TARGET_MOUNT)
        write_data(host, '/mnt/off', 'after-rogue.bin', 1)
        since = backup.check_output('date "+%Y-%m-%d %H:%M:%S"')
        result = pull(backup)
        assert result.rc != 0, 'replication over a modified target must fail, not roll it back'
        assert backup.service(UNIT).is_running is False
        assert backup.check_output('systemctl is-failed %s.service || true', UNIT) == 'failed'
        log = backup.check_output('journalctl -u %s.service --since %s --no-pager', UNIT, since)
        assert 'destination has been modified' in log or 'cannot receive' in log, log
        assert backup.file(TARGET_MOUNT + '/rogue.txt').exists, 'the target was rolled back silently'
    finally:
        # The operator's way back: drop the stray write. zfs-fuse rolls back but then
        # fails to drop caches in a container and exits 1; the pull below proves the rollback.
        newest = snapshots(backup, TARGET)[-1]
        backup.run('zfs rollback %s', newest)
        backup.run('systemctl reset-failed %s.service', UNIT)
    assert pull(backup).rc == 0
    assert checksums(backup, TARGET_MOUNT) == checksums(host, '/mnt/off')


def production_state(host):
    return checksums(host, '/mnt/off'), [zget(host, p, 'tank/off') for p in ('compression', 'recordsize', 'quota', 'mountpoint')]


def refresh():
    return run_playbook(STAGING, limit='zfs-prod')


def staging_clones(host):
    out = host.check_output('zfs list -H -o name -r tank/off-staging')
    return [n for n in out.splitlines() if n != 'tank/off-staging']


def test_staging_refresh_clones_production_and_replaces_the_clone(host):
    before = production_state(host)
    rc, out = refresh()
    assert rc == 0, out[-3000:]
    link = host.file('/mnt/off-staging')
    assert link.is_symlink
    first = link.linked_to
    assert checksums(host, '/mnt/off-staging/') == before[0]
    assert production_state(host) == before
    assert host.service('off-staging').is_running        # stopped for the refresh, started after
    clones = staging_clones(host)
    assert len(clones) == 1
    time.sleep(1)  # clones are named by the second
    rc, out = refresh()
    assert rc == 0, out[-3000:]
    second = host.file('/mnt/off-staging').linked_to
    assert second != first
    assert staging_clones(host) != clones and len(staging_clones(host)) == 1
    # The old clone's origin snapshot went with it; production keeps one, the new clone's.
    assert len(snapshots(host, 'tank/off', '@staging_')) == 1
    assert checksums(host, '/mnt/off-staging/') == before[0]
    assert production_state(host) == before


def test_a_refresh_refuses_while_a_process_holds_the_staging_mount(host):
    clones = staging_clones(host)
    link = host.file('/mnt/off-staging').linked_to
    prod_snaps = snapshots(host, 'tank/off')
    host.check_output('systemd-run --unit staging-reader --property WorkingDirectory=/mnt/off-staging sleep 600')
    try:
        rc, out = refresh()
        flat = ' '.join(out.split())
        assert rc != 0
        assert 'Refusing to refresh tank/off-staging' in flat and 'nothing was destroyed or changed' in flat, out[-3000:]
        assert '(sleep) uses cwd' in flat
        assert staging_clones(host) == clones
        assert host.file('/mnt/off-staging').linked_to == link
        assert snapshots(host, 'tank/off') == prod_snaps
        assert host.service('off-staging').is_running     # started again after the refusal
    finally:
        host.run('systemctl stop staging-reader')


# The zfs role lists every problem of its input in one message, so its three cases share a run.
@pytest.mark.parametrize('extra_vars, messages', [
    ({'zfs_datasets': [{'name': 'data/off'}, {'name': 'tank/off', 'compression': 'lz4'}],
      'zfs_staging': [{'name': 'tank/obf', 'production': 'tank/off'}]},
     ['zfs_datasets[0] (data/off): the dataset is outside its pool: pool data is not in zfs_pools',
      'zfs_datasets[1] (tank/off): compression lz4 needs pool version with feature flags (5000), but pool tank has version 23',
      'zfs_staging[0] (tank/obf): the staging name tank/obf is a production dataset']),
    ({'sanoid_datasets': [{'name': 'tank/off', 'daily': -1}]},
     ['sanoid_datasets[0] (tank/off).daily must not be negative, got -1']),
], ids=['zfs-outside-pool-compression-staging-name', 'sanoid-negative-count'])
def test_bad_input_is_refused_before_any_change(host, extra_vars, messages):
    before = host.check_output('zfs list -H -o name,compression -t all')
    rc, out = run_playbook(LAYER, extra_vars=extra_vars, limit='zfs-prod')
    assert rc != 0
    flat = ' '.join(out.split())
    for message in messages:
        assert message in flat, out[-3000:]
    assert recap_counts(out, 'zfs-prod')['changed'] == 0
    assert host.check_output('zfs list -H -o name,compression -t all') == before
