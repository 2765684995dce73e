#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: memory_info
short_description: Report the memory a host can give its services, cgroup limits included
version_added: 0.1.0
description:
  - Reads C(MemTotal) from C(/proc/meminfo) and the memory limit of the cgroup
    that holds a process (PID 1 by default) and of every cgroup above it, for
    cgroup v1 and v2.
  - Inside a container C(/proc/meminfo) and the C(ansible_memtotal_mb) fact show
    the whole machine; sizing a cache from them over-commits. C(usable_mb) is
    the smaller of the two figures.
  - Read-only; the sizing itself is done by filters such as
    R(commons.infra.memcached_memory_mb,ansible_collections.commons.infra.memcached_memory_mb_filter).
options:
  pid:
    description:
      - The process whose cgroup is read. PID 1 stands for the whole host or container.
    type: int
    default: 1
attributes:
  check_mode:
    support: full
    description: Reads only; runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing is changed, so there is nothing to diff.
  platform:
    platforms: linux
    support: full
    description: Needs C(/proc) and a cgroup filesystem under C(/sys/fs/cgroup).
author:
  - commons.infra maintainers (@commons-infra)
'''

EXAMPLES = r'''
- name: Read the usable memory
  commons.infra.memory_info:
  register: host_memory

- name: Size memcached from it
  ansible.builtin.debug:
    msg: "{{ host_memory.memory | commons.infra.memcached_memory_mb(reserve_mb=300) }}"
'''

RETURN = r'''
memory:
  description: Memory figures in MiB.
  returned: always
  type: dict
  contains:
    total_mb:
      description: C(MemTotal) from C(/proc/meminfo).
      type: int
      sample: 24032
    cgroup_limit_mb:
      description: The tightest cgroup memory limit over the process's cgroup and its ancestors, null when none is set.
      type: int
      sample: 512
    cgroup_version:
      description: C(v1), C(v2), or null when no cgroup information was found.
      type: str
      sample: v1
    usable_mb:
      description: The smaller of C(total_mb) and C(cgroup_limit_mb).
      type: int
      sample: 512
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.commons.infra.plugins.module_utils.memory import memory_info


def main():
    module = AnsibleModule(
        argument_spec=dict(pid=dict(type='int', default=1)),
        supports_check_mode=True,
    )
    try:
        info = memory_info(pid=module.params['pid'])
    except (IOError, OSError, ValueError) as exc:
        module.fail_json(msg='cannot read memory information: %s' % exc)
    module.exit_json(changed=False, memory=info)


if __name__ == '__main__':
    main()
