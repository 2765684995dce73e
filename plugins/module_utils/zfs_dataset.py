# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A ZFS dataset with the properties asked for, changed only where a value differs.

community.general.zfs reads the "before" value again after setting it, so it reports no
change for a property it did change, and compares 200M with 209715200 (so it sets quota on
every run). Here values are compared the way zfs means them: sizes in bytes, gzip as gzip-6,
booleans as on/off; a dataset is never destroyed.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

SIZE_PROPERTIES = ('quota', 'refquota', 'reservation', 'refreservation', 'recordsize', 'volsize', 'volblocksize')
UNITS = {'': 1, 'B': 1, 'K': 1 << 10, 'M': 1 << 20, 'G': 1 << 30, 'T': 1 << 40, 'P': 1 << 50}


class ZfsFailed(Exception):
    pass


def zfs_call(run, zfs, args):
    """stdout of `zfs ARGS`, or ZfsFailed with its message (run is AnsibleModule.run_command)."""
    rc, out, err = run([zfs] + list(args))
    if rc != 0:
        raise ZfsFailed('zfs %s failed (%d): %s' % (' '.join(args), rc, (err or out).strip()))
    return out


def normalize(prop, value):
    """value as zfs would compare it: sizes in bytes (none/0 alike), gzip as gzip-6, booleans as on/off."""
    if isinstance(value, bool):
        return 'on' if value else 'off'
    value = str(value).strip()
    if prop in SIZE_PROPERTIES:
        if value in ('none', '0', '-'):
            return 'none'
        match = re.match(r'^([0-9]+(?:\.[0-9]+)?)([BKMGTP]?)B?$', value.upper())
        if match:
            return str(int(round(float(match.group(1)) * UNITS[match.group(2)])))
        return value
    if prop == 'compression' and value == 'gzip':
        return 'gzip-6'
    return value


def differences(wanted, current):
    """{prop: (current, wanted)} for each wanted property whose value or source differs."""
    changes = {}
    for prop, value in sorted(wanted.items()):
        have = current.get(prop)
        if have is None or normalize(prop, have[0]) != normalize(prop, value) or have[1] not in ('local', 'received'):
            changes[prop] = (None if have is None else have[0], str(value))
    return changes


def parse_get(output):
    """{prop: (value, source)} from `zfs get -H -p -o property,value,source`."""
    props = {}
    for line in output.splitlines():
        fields = line.split('\t')
        if len(fields) == 3:
            props[fields[0]] = (fields[1], fields[2])
    return props


def ensure(run, zfs, name, wanted, check_mode=False):
    """Create name with wanted, or set the wanted properties that differ. Returns (changed, diff)."""
    def call(args):
        return zfs_call(run, zfs, args)

    wanted = dict((k, normalize_input(v)) for k, v in wanted.items())
    if run([zfs, 'list', '-H', '-o', 'name', name])[0] != 0:
        if not check_mode:
            args = ['create', '-p']
            for prop, value in sorted(wanted.items()):
                args += ['-o', '%s=%s' % (prop, value)]
            call(args + [name])
        return True, {'before': {'state': 'absent'}, 'after': dict(wanted, state='present')}
    if not wanted:
        return False, {'before': {}, 'after': {}}
    current = parse_get(call(['get', '-H', '-p', '-o', 'property,value,source', ','.join(sorted(wanted)), name]))
    changes = differences(wanted, current)
    if changes and not check_mode:
        for prop, change in sorted(changes.items()):
            call(['set', '%s=%s' % (prop, change[1]), name])
    return bool(changes), {'before': dict((prop, change[0]) for prop, change in changes.items()),
                           'after': dict((prop, change[1]) for prop, change in changes.items())}


def normalize_input(value):
    if isinstance(value, bool):
        return 'on' if value else 'off'
    return str(value)
