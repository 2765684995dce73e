#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: zfs_staging_refresh
short_description: Replace a staging clone of a production ZFS dataset with a fresh one, atomically
version_added: 0.1.0
description:
  - Snapshots O(production) (C(@staging_<UTC stamp>)), clones the snapshot as a child of O(name) mounted
    under O(clone_root), and switches the symlink O(path) to the new clone in one rename, so a reader sees
    the old clone or the new one, never a gap.
  - Old clones under O(name) are destroyed after the switch (waiting up to 30 seconds while zfs calls one busy, since a FUSE
    mount stays busy a moment after its last process left; one still busy is left, with a warning, for the next
    refresh), each with its origin snapshot unless that
    snapshot is listed in O(keep_snapshots) (replication's newest common snapshot) or was not made by a refresh.
  - Refuses, before any change and with a message saying why, when a process holds an old clone (working
    directory, root, open file or mapping under its mount, read from C(/proc)), when O(path) exists and is
    not a symlink, when O(name) holds datasets a refresh did not make, when O(name) is or nests with
    O(production), or when production is itself a clone of a staging clone (a promoted clone).
  - The production dataset gets one snapshot and is otherwise untouched.
options:
  production:
    description: The production dataset, e.g. C(tank/off).
    type: str
    required: true
  name:
    description: The staging dataset that holds the clones, e.g. C(tank/off-staging); created with C(canmount=off) when missing.
    type: str
    required: true
  path:
    description: The staging path, a symlink to the current clone's mount, e.g. C(/mnt/off-staging).
    type: path
    required: true
  clone_root:
    description: Where clones are mounted (one directory per clone); defaults to C(.<basename>) beside O(path).
    type: path
  keep_snapshots:
    description: Snapshots (C(dataset@name) or just the name) that must survive, such as the newest one a backup host shares with production.
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
    description: Reads everything, refuses the same way, and reports the plan without changing anything.
  diff_mode:
    support: none
    description: The result lists the clone made and the clones and snapshots destroyed.
  platform:
    platforms: linux
    support: full
    description: Needs C(zfs) (zfsutils-linux or zfs-fuse) and C(/proc).
author:
  - commons.infra maintainers (@commons-infra)
'''

EXAMPLES = r'''
- name: Refresh Open Food Facts staging from production
  commons.infra.zfs_staging_refresh:
    production: tank/off
    name: tank/off-staging
    path: /mnt/off-staging
    keep_snapshots: [autosnap_2026-11-30_02:00:00_hourly]
'''

RETURN = r'''
clone:
  description: The clone made (the new target of O(path)).
  returned: success
  type: str
  sample: tank/off-staging/20261130T020000Z
snapshot:
  description: The production snapshot the clone was made from.
  returned: success
  type: str
  sample: tank/off@staging_20261130T020000Z
mountpoint:
  description: Where the new clone is mounted.
  returned: success
  type: str
  sample: /mnt/.off-staging/20261130T020000Z
previous:
  description: The mount O(path) pointed to before, if any.
  returned: success
  type: str
  sample: /mnt/.off-staging/20261129T020000Z
destroy:
  description: Old clones destroyed.
  returned: success
  type: list
  elements: str
  sample: [tank/off-staging/20261129T020000Z]
destroy_snapshots:
  description: Origin snapshots of the old clones destroyed with them.
  returned: success
  type: list
  elements: str
  sample: [tank/off@staging_20261129T020000Z]
left_behind:
  description: Old clones or origin snapshots that stayed busy after the switch, left (with a warning) for the next refresh.
  returned: success
  type: list
  elements: dict
  sample: [{dataset: tank/off-staging/20261129T020000Z, error: "cannot destroy: dataset is busy"}]
kept_snapshots:
  description: Origin snapshots of old clones kept, each with the reason.
  returned: success
  type: list
  elements: dict
  sample: [{snapshot: tank/off@staging_20261129T020000Z, reason: replication needs it (its newest common snapshot)}]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.commons.infra.plugins.module_utils.zfs_dataset import ZfsFailed
from ansible_collections.commons.infra.plugins.module_utils.zfs_staging import Refused, Zfs, refresh


def main():
    module = AnsibleModule(
        argument_spec=dict(
            production=dict(type='str', required=True),
            name=dict(type='str', required=True),
            path=dict(type='path', required=True),
            clone_root=dict(type='path'),
            keep_snapshots=dict(type='list', elements='str', default=[], no_log=False),
        ),
        supports_check_mode=True,
    )
    zfs = Zfs(module.run_command, module.get_bin_path('zfs', required=True))
    params = module.params
    try:
        steps = refresh(zfs, params['production'], params['name'], params['path'], params['clone_root'],
                        params['keep_snapshots'], check_mode=module.check_mode)
    except Refused as refusal:
        module.fail_json(msg='Refusing to refresh %s: %s' % (params['name'], refusal), refused=True)
    except (ZfsFailed, OSError) as error:
        module.fail_json(msg='Refresh of %s failed: %s' % (params['name'], error), refused=False)
    steps.pop('create_container', None)
    for item in steps.get('left_behind', []):
        module.warn('%s could not be destroyed after the switch and is left for the next refresh: %s'
                    % (item['dataset'], item['error']))
    module.exit_json(changed=True, **steps)


if __name__ == '__main__':
    main()
