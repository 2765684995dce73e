#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: zfs_dataset
short_description: A ZFS dataset with the given properties, changed only where a value differs
version_added: 0.1.0
description:
  - Creates the dataset (with C(zfs create -p)) when it is missing, with O(properties); otherwise sets each property
    whose value differs from the one asked for, or that is inherited rather than set on the dataset.
  - Values are compared as zfs means them - sizes in bytes (C(200M) equals C(209715200)), C(gzip) as C(gzip-6),
    booleans as C(on)/C(off) - so a second run changes nothing and a real change is reported as one.
    (M(community.general.zfs) reads the old value again after setting it and so reports no change for a property it
    changed.)
  - Never destroys anything; works with OpenZFS and zfs-fuse.
options:
  name:
    description: The dataset, e.g. C(tank/off).
    type: str
    required: true
  properties:
    description: ZFS properties to set, e.g. C(compression=lzjb), C(quota=50G), C(mountpoint=/mnt/off).
    type: dict
    default: {}
attributes:
  check_mode:
    support: full
    description: Reports what would be created or set.
  diff_mode:
    support: full
    description: The properties before and after.
  platform:
    platforms: linux
    support: full
    description: Needs the C(zfs) command.
author:
  - commons.infra maintainers (@commons-infra)
'''

EXAMPLES = r'''
- name: Open Food Facts' dataset
  commons.infra.zfs_dataset:
    name: tank/off
    properties:
      compression: "on"
      recordsize: 128K
      atime: "off"
      quota: 500G
      mountpoint: /mnt/off
'''

RETURN = r'''
name:
  description: The dataset.
  returned: always
  type: str
  sample: tank/off
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.commons.infra.plugins.module_utils.zfs_dataset import ZfsFailed, ensure


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type='str', required=True),
            properties=dict(type='dict', default={}),
        ),
        supports_check_mode=True,
    )
    try:
        changed, diff = ensure(module.run_command, module.get_bin_path('zfs', required=True), module.params['name'],
                               module.params['properties'], check_mode=module.check_mode)
    except ZfsFailed as error:
        module.fail_json(msg=str(error), name=module.params['name'])
    module.exit_json(changed=changed, diff=diff, name=module.params['name'])


if __name__ == '__main__':
    main()
