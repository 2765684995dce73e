"""Staging refresh planning: what is destroyed, what is kept, and when it refuses."""
import os
import subprocess
import time

import pytest

from ansible_collections.commons.infra.plugins.module_utils.zfs_dataset import ZfsFailed
from ansible_collections.commons.infra.plugins.module_utils.zfs_staging import (Refused, default_clone_root,
                                                                                destroy_when_released, holders, plan)

PROD = 'tank/off'
NAME = 'tank/off-staging'
PATH = '/mnt/off-staging'
ROOT = '/mnt/.off-staging'
ROWS = [{'name': NAME, 'origin': None, 'mountpoint': 'none'},
        {'name': NAME + '/20261129T020000Z', 'origin': PROD + '@staging_20261129T020000Z',
         'mountpoint': ROOT + '/20261129T020000Z'}]


def make(rows=None, origin=None, link=ROOT + '/20261129T020000Z', busy=None, keep=(), stamp='20261130T020000Z'):
    return plan(PROD, NAME, PATH, ROOT, ROWS if rows is None else rows, origin, link, busy or {}, set(keep), stamp)


def test_first_refresh_creates_the_container_and_destroys_nothing():
    steps = make(rows=[], link=None)
    assert steps['create_container'] and steps['destroy'] == [] and steps['previous'] is None
    assert steps['snapshot'] == 'tank/off@staging_20261130T020000Z'
    assert steps['clone'] == 'tank/off-staging/20261130T020000Z'
    assert steps['mountpoint'] == '/mnt/.off-staging/20261130T020000Z'


def test_a_refresh_replaces_the_old_clone_and_its_origin():
    steps = make()
    assert steps['destroy'] == [NAME + '/20261129T020000Z']
    assert steps['destroy_snapshots'] == [PROD + '@staging_20261129T020000Z']
    assert steps['previous'] == ROOT + '/20261129T020000Z' and not steps['create_container']


def test_an_origin_replication_needs_is_kept():
    for keep in (PROD + '@staging_20261129T020000Z', 'staging_20261129T020000Z'):
        steps = make(keep=[keep])
        assert steps['destroy'] == [NAME + '/20261129T020000Z'] and steps['destroy_snapshots'] == []
        assert 'replication needs it' in steps['kept_snapshots'][0]['reason']


def test_a_busy_clone_refuses_naming_the_process():
    with pytest.raises(Refused) as refusal:
        make(busy={ROOT + '/20261129T020000Z': [(42, 'sleep', 'cwd')]})
    assert 'in use, nothing was destroyed or changed' in str(refusal.value)
    assert 'pid 42 (sleep) uses cwd' in str(refusal.value)


@pytest.mark.parametrize('kwargs, message', [
    ({'origin': NAME + '/20261129T020000Z@x'}, 'was a staging clone promoted?'),
    ({'link': False}, 'is not a symlink'),
    ({'rows': ROWS + [{'name': NAME + '/manual', 'origin': None, 'mountpoint': '/srv/x'}]}, 'not clones of tank/off'),
    ({'rows': ROWS + [{'name': NAME + '/20261130T020000Z', 'origin': PROD + '@staging_20261130T020000Z',
                       'mountpoint': '/x'}]}, 'already exists'),
])
def test_refusals(kwargs, message):
    with pytest.raises(Refused) as refusal:
        make(**kwargs)
    assert message in str(refusal.value)


def test_a_staging_name_equal_to_production_is_refused():
    with pytest.raises(Refused):
        plan(PROD, PROD, PATH, ROOT, [], None, None, {}, set(), 'x')


def test_clone_root_default():
    assert default_clone_root('/mnt/off-staging') == '/mnt/.off-staging'


def test_holders_finds_a_process_whose_cwd_is_inside(tmp_path):
    inside = tmp_path / 'clone' / 'deep'
    inside.mkdir(parents=True)
    proc = subprocess.Popen(['sleep', '30'], cwd=str(inside))
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not holders(str(tmp_path / 'clone')):
            time.sleep(0.05)
        found = holders(str(tmp_path / 'clone'))
        assert (proc.pid, 'sleep', 'cwd') in found
        assert holders(str(tmp_path / 'other')) == []
    finally:
        proc.kill()
        proc.wait()
    assert all(found[0] != proc.pid for found in holders(str(tmp_path / 'clone')))


def test_holders_finds_an_open_file(tmp_path):
    clone = tmp_path / 'clone'
    clone.mkdir()
    (clone / 'db').write_text('x')
    proc = subprocess.Popen(['sh', '-c', 'exec 3<"$0"; sleep 30', str(clone / 'db')], cwd='/')
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not holders(str(clone)):
            time.sleep(0.05)
        assert any(found[0] == proc.pid and 'fd 3' in found[2] for found in holders(str(clone)))
    finally:
        proc.kill()
        proc.wait()
    assert os.path.exists(str(clone / 'db'))


class BusyZfs(object):
    """zfs whose destroy says busy a given number of times, then succeeds."""

    def __init__(self, busy_times, message='cannot destroy: dataset is busy'):
        self.busy_times = busy_times
        self.message = message
        self.destroyed = []

    def destroy(self, name, recursive=False):
        if self.busy_times:
            self.busy_times -= 1
            raise ZfsFailed(self.message)
        self.destroyed.append(name)


class Clock(object):
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def pause(self, seconds):
        self.now += seconds


def test_a_clone_busy_for_a_moment_is_destroyed_once_released():
    zfs, clock = BusyZfs(3), Clock()
    assert destroy_when_released(zfs, 'tank/off-staging/a', 30, clock=clock, pause=clock.pause) is None
    assert zfs.destroyed == ['tank/off-staging/a'] and clock.now == 1.5


def test_a_clone_that_stays_busy_is_left_with_the_error():
    zfs, clock = BusyZfs(1000), Clock()
    error = destroy_when_released(zfs, 'tank/off-staging/a', 5, clock=clock, pause=clock.pause)
    assert 'busy' in error and zfs.destroyed == [] and clock.now == 5.0


def test_other_errors_are_not_waited_for():
    zfs, clock = BusyZfs(1, 'cannot destroy: filesystem has children'), Clock()
    assert 'children' in destroy_when_released(zfs, 'x', 30, clock=clock, pause=clock.pause) and clock.now == 0
