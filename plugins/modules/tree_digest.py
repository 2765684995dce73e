#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: tree_digest
short_description: Prove that a copied directory tree is the same tree (content, links, owners, ACLs)
version_added: 0.1.0
description:
  - Walks a directory tree without following symlinks and records, per entry, what a faithful
    copy must keep - type, mode, numeric owner and group, extended attributes (ACLs included),
    symlink targets, and for regular files the size, sparseness, hard-link grouping and the
    SHA-256 of the content.
  - With O(compare_to), walks a second tree the same way and reports whether both are the same
    and, when not, the first differences by path.
  - Read-only. Used by C(playbooks/migrate_opt.yml) to verify a copy before switching to it.
options:
  path:
    description: The tree to describe (the source, when comparing).
    type: path
    required: true
  compare_to:
    description: A second tree (the copy) to compare with O(path).
    type: path
  checksum:
    description: Hash the content of regular files. Without it only metadata and sizes are compared.
    type: bool
    default: true
  checksum_sample:
    description:
      - Hash about one file in N, chosen by name (the same files on both sides). V(0) hashes every file.
    type: int
    default: 0
  max_differences:
    description: How many differences to report at most.
    type: int
    default: 20
attributes:
  check_mode:
    support: full
    description: Reads only; runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing is changed.
  platform:
    platforms: posix
    support: full
    description: Extended attributes are read where the platform has them.
author:
  - commons.infra maintainers (@commons-infra)
'''

EXAMPLES = r'''
- name: Verify the copy of /opt on the new volume before switching to it
  commons.infra.tree_digest:
    path: /opt/openlibrary
    compare_to: /1/opt/openlibrary
  register: opt_copy
  failed_when: not opt_copy.same
'''

RETURN = r'''
digest:
  description: SHA-256 over the manifest of O(path).
  returned: always
  type: str
entries:
  description: Number of entries below O(path), itself included.
  returned: always
  type: int
kinds:
  description: Entries of O(path) by type (dir, file, link, ...).
  returned: always
  type: dict
  sample: {dir: 12, file: 340, link: 3}
same:
  description: Whether O(compare_to) holds the same tree. Only with O(compare_to).
  returned: when compare_to is given
  type: bool
differences:
  description: The first differences, by path. Only with O(compare_to).
  returned: when compare_to is given
  type: list
  elements: str
'''

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.commons.infra.plugins.module_utils.tree_digest import compare, digest, manifest, summary


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='path', required=True),
            compare_to=dict(type='path'),
            checksum=dict(type='bool', default=True),
            checksum_sample=dict(type='int', default=0),
            max_differences=dict(type='int', default=20),
        ),
        supports_check_mode=True,
    )
    params = module.params
    for name in ('path', 'compare_to'):
        if params[name] is not None and not os.path.isdir(params[name]):
            module.fail_json(msg='%s: %s is not a directory' % (name, params[name]))
    if params['checksum_sample'] < 0:
        module.fail_json(msg='checksum_sample must be 0 (every file) or more, not %d' % params['checksum_sample'])
    try:
        source = manifest(params['path'], checksum=params['checksum'], sample=params['checksum_sample'])
        result = dict(changed=False, digest=digest(source), entries=len(source), kinds=summary(source))
        if params['compare_to'] is not None:
            copy = manifest(params['compare_to'], checksum=params['checksum'], sample=params['checksum_sample'])
            differences = compare(source, copy, limit=params['max_differences'])
            result.update(same=not differences, differences=differences)
    except (IOError, OSError) as exc:
        module.fail_json(msg='cannot read the tree: %s' % exc)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
