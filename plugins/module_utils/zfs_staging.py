# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Staging clones of a production dataset, refreshed without pulling anything from under a user.

Layout: the staging dataset (say tank/off-staging) is a container (canmount=off) whose
children are clones named by the time they were made, each mounted under a hidden
directory beside the staging path (/mnt/.off-staging/<stamp>); the staging path
(/mnt/off-staging) is a symlink switched atomically (atomic_link) to the newest clone.

A refresh reads everything first and refuses, before any change, when a process still
holds an old clone (cwd, root, open file or mapping under its mount), when the staging path
is not a link the refresh made, or when production itself depends on the staging clones (a
promoted clone). Old clones are destroyed only after the switch; an old clone's origin
snapshot is destroyed with it unless replication still needs it (keep_snapshots) or it is
not one the refresh made.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import time

from ansible_collections.commons.infra.plugins.module_utils.atomic_link import read_link, replace_symlink
from ansible_collections.commons.infra.plugins.module_utils.zfs_dataset import ZfsFailed, zfs_call

SNAPSHOT_PREFIX = 'staging_'


class Refused(Exception):
    """The refresh would pull data from under someone or break production; nothing was changed."""


def holders(path, proc='/proc'):
    """Processes using path or anything below it: [(pid, command, what)], read from /proc."""
    path = os.path.realpath(path)
    found = []

    def under(target):
        target = target.split(' (deleted)')[0]
        return target == path or target.startswith(path.rstrip('/') + '/')

    for pid in os.listdir(proc):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        base = os.path.join(proc, pid)
        uses = []
        for what in ('cwd', 'root', 'exe'):
            try:
                if under(os.readlink(os.path.join(base, what))):
                    uses.append(what)
            except OSError:
                pass
        try:
            for fd in os.listdir(os.path.join(base, 'fd')):
                try:
                    if under(os.readlink(os.path.join(base, 'fd', fd))):
                        uses.append('fd %s' % fd)
                except OSError:
                    pass
        except OSError:
            pass
        try:
            with open(os.path.join(base, 'maps')) as maps:
                if any(under(line.split(None, 5)[5].strip()) for line in maps if len(line.split(None, 5)) == 6):
                    uses.append('mapped file')
        except (OSError, IndexError):
            pass
        if uses:
            try:
                with open(os.path.join(base, 'comm')) as comm:
                    command = comm.read().strip()
            except OSError:
                command = '?'
            found.append((int(pid), command, ', '.join(sorted(set(uses)))))
    return sorted(found)


class Zfs(object):
    """The zfs commands a refresh runs; `run` is AnsibleModule.run_command or a stand-in."""

    def __init__(self, run, zfs='zfs'):
        self.run = run
        self.zfs = zfs

    def _ok(self, args):
        return zfs_call(self.run, self.zfs, args)

    def exists(self, name):
        return self.run([self.zfs, 'list', '-H', '-o', 'name', name])[0] == 0

    def filesystems(self, name):
        """[{name, origin, mountpoint}] of name and its children (empty when it does not exist)."""
        if not self.exists(name):
            return []
        out = self._ok(['list', '-H', '-o', 'name,origin,mountpoint', '-r', '-t', 'filesystem', name])
        rows = []
        for line in out.splitlines():
            fields = line.split('\t')
            if len(fields) == 3:
                rows.append({'name': fields[0], 'origin': None if fields[1] == '-' else fields[1], 'mountpoint': fields[2]})
        return rows

    def origin(self, name):
        out = self._ok(['get', '-H', '-o', 'value', 'origin', name]).strip()
        return None if out in ('', '-') else out

    def snapshot(self, name):
        self._ok(['snapshot', name])

    def create_container(self, name):
        self._ok(['create', '-o', 'canmount=off', '-o', 'mountpoint=none', name])

    def clone(self, snapshot, name, mountpoint):
        self._ok(['clone', '-o', 'mountpoint=%s' % mountpoint, snapshot, name])

    def destroy(self, name, recursive=False):
        self._ok(['destroy'] + (['-r'] if recursive else []) + [name])


def default_clone_root(path):
    directory, base = os.path.split(path.rstrip('/'))
    return os.path.join(directory, '.' + base)


def plan(production, name, path, clone_root, rows, production_origin, link_target, busy, keep_snapshots, stamp):
    """What a refresh does, from what was read; raises Refused. Pure, for unit tests."""
    if name == production or name.startswith(production + '/') or production.startswith(name + '/'):
        raise Refused('the staging name %s is (or nests with) the production dataset %s' % (name, production))
    if production_origin and (production_origin == name or production_origin.startswith(name + '/')):
        raise Refused('production %s is now a clone of %s (was a staging clone promoted?); destroying the staging '
                      'clones would take production with it. Promote %s back before refreshing.'
                      % (production, production_origin, production))
    if link_target is False:
        raise Refused('%s exists and is not a symlink; the refresh switches a link there. Move it away first.' % path)
    children = [r for r in rows if r['name'] != name]
    foreign = [r['name'] for r in children if r['name'].count('/') != name.count('/') + 1
               or not (r['origin'] or '').startswith(production + '@')]
    if foreign:
        raise Refused('%s holds datasets that are not clones of %s made by a refresh: %s; nothing was changed'
                      % (name, production, ', '.join(foreign)))
    if busy:
        raise Refused('the staging clones are in use, nothing was destroyed or changed: %s. Stop these processes '
                      '(or list their services in the refresh\'s services) and refresh again.'
                      % '; '.join('%s: pid %d (%s) uses %s' % (mount, pid, command, what)
                                  for mount, found in sorted(busy.items()) for pid, command, what in found))
    new_clone = '%s/%s' % (name, stamp)
    if any(r['name'] == new_clone for r in children):
        raise Refused('a clone named %s already exists; refresh again in a second' % new_clone)
    destroy, drop_snapshots, kept = [], [], []
    for row in children:
        destroy.append(row['name'])
        origin = row['origin']
        snap = origin.split('@', 1)[1]
        if not snap.startswith(SNAPSHOT_PREFIX):
            kept.append({'snapshot': origin, 'reason': 'not made by a staging refresh'})
        elif origin in keep_snapshots or snap in keep_snapshots:
            kept.append({'snapshot': origin, 'reason': 'replication needs it (its newest common snapshot)'})
        else:
            drop_snapshots.append(origin)
    return {
        'snapshot': '%s@%s%s' % (production, SNAPSHOT_PREFIX, stamp),
        'create_container': not rows,
        'clone': new_clone,
        'mountpoint': os.path.join(clone_root, stamp),
        'destroy': destroy,
        'destroy_snapshots': drop_snapshots,
        'kept_snapshots': kept,
        'previous': link_target or None,
    }


def destroy_when_released(zfs, name, wait, recursive=False, clock=time.monotonic, pause=time.sleep):
    """Destroy name, waiting up to wait seconds while zfs says it is busy: a FUSE mount stays
    busy for a moment after the last process left it (seen on zfs-fuse after a service stop).
    Returns None, or the last error when it stayed busy."""
    deadline = clock() + wait
    while True:
        try:
            zfs.destroy(name, recursive=recursive)
            return None
        except ZfsFailed as error:
            if 'busy' not in str(error) or clock() >= deadline:
                return str(error)
        pause(0.5)


def refresh(zfs, production, name, path, clone_root=None, keep_snapshots=(), check_mode=False, proc='/proc', now=None,
            busy_wait=30):
    clone_root = clone_root or default_clone_root(path)
    stamp = time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(now))
    if not zfs.exists(production):
        raise Refused('production dataset %s does not exist' % production)
    rows = zfs.filesystems(name)
    if os.path.islink(path):
        link_target = read_link(path)
    elif os.path.lexists(path):
        link_target = False
    else:
        link_target = None
    busy = {}
    for row in rows:
        if row['name'] != name and row['mountpoint'].startswith('/') and os.path.isdir(row['mountpoint']):
            found = holders(row['mountpoint'], proc=proc)
            if found:
                busy[row['mountpoint']] = found
    steps = plan(production, name, path, clone_root, rows, zfs.origin(production), link_target, busy,
                 set(keep_snapshots or ()), stamp)
    if check_mode:
        return steps
    zfs.snapshot(steps['snapshot'])
    if steps['create_container']:
        zfs.create_container(name)
    if not os.path.isdir(clone_root):
        os.makedirs(clone_root, 0o755)
    zfs.clone(steps['snapshot'], steps['clone'], steps['mountpoint'])
    parent = os.path.dirname(path.rstrip('/'))
    if not os.path.isdir(parent):
        os.makedirs(parent, 0o755)
    replace_symlink(steps['mountpoint'], path)
    # The switch is done: an old clone that cannot go now is left for the next refresh (which
    # plans it again), with its origin, rather than failing a refresh that succeeded.
    steps['left_behind'] = []
    for old in steps['destroy']:
        error = destroy_when_released(zfs, old, busy_wait, recursive=True)
        if error:
            steps['left_behind'].append({'dataset': old, 'error': error})
    left = set(item['dataset'] for item in steps['left_behind'])
    origins = dict((row['name'], row['origin']) for row in rows)
    for snap in steps['destroy_snapshots']:
        if any(origins.get(old) == snap for old in left):
            continue
        error = destroy_when_released(zfs, snap, busy_wait)
        if error:
            steps['left_behind'].append({'dataset': snap, 'error': error})
    return steps
