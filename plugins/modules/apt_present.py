#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: apt_present
short_description: Install Debian packages, asking dpkg first so a converged host costs no apt run
version_added: 0.1.0
description:
  - Ensures the named packages are installed, as M(ansible.builtin.apt) with C(state=present) does.
  - Asks C(dpkg-query) first, as one shell command over the existing connection (no module is sent).
    When dpkg has every package installed and healthy (and at the version asked for, for C(name=version)),
    the task reports ok without running apt. Otherwise it runs M(ansible.builtin.apt) with the same
    arguments, and its result is apt's.
  - M(ansible.builtin.apt) opens apt's whole cache (every package list) on each run, more than a second
    of CPU on a small host; a no-op converge of a site asks for packages on every host in every role,
    so this is where a converged site spends much of its time.
  - A name only apt can read (a wildcard, C(:arch), C(>=), a C(.deb) path) always goes to apt. A package
    that is half-installed, unpacked, or needs reinstalling goes to apt too.
  - This is an action plugin; the dpkg query runs as the login user (dpkg's status file is world-readable),
    apt runs with the task's C(become).
options:
  name:
    description:
      - Package names, each optionally C(name=version).
    type: list
    elements: str
    required: true
    aliases: [pkg]
  state:
    description:
      - Only C(present); upgrades and removals are M(ansible.builtin.apt)'s.
    type: str
    choices: [present]
    default: present
  update_cache:
    description:
      - Passed to M(ansible.builtin.apt) when apt runs (never when every package is installed).
    type: bool
    default: false
  cache_valid_time:
    description:
      - Passed to M(ansible.builtin.apt) when apt runs.
    type: int
    default: 0
  install_recommends:
    description:
      - Passed to M(ansible.builtin.apt) when apt runs; unset leaves apt's own default.
    type: bool
  default_release:
    description:
      - Passed to M(ansible.builtin.apt) when apt runs.
    type: str
attributes:
  check_mode:
    support: full
    description: The dpkg query runs in check mode too; apt, when it runs, reports what it would install.
  diff_mode:
    support: none
    description: Nothing to diff.
  platform:
    platforms: debian
    support: full
    description: Debian and its derivatives (dpkg and apt).
seealso:
  - module: ansible.builtin.apt
author:
  - commons.infra maintainers (@commons-infra)
'''

EXAMPLES = r'''
- name: Install haproxy and socat
  commons.infra.apt_present:
    name: [haproxy, socat]
    update_cache: true
    cache_valid_time: 86400
  register: haproxy_install

- name: Pin a version
  commons.infra.apt_present:
    name: [pgbouncer=1.18.0-1]
'''

RETURN = r'''
packages_missing:
  description: The packages dpkg did not have installed as asked; apt ran for the task when not empty.
  returned: always
  type: list
  elements: str
  sample: [socat]
apt_ran:
  description: Whether M(ansible.builtin.apt) ran. When it did, the rest of the result is apt's.
  returned: always
  type: bool
  sample: false
'''
