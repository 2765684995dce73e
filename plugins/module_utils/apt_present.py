# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What apt_present decides before it runs apt: which of the packages asked for dpkg already has.

dpkg answers in milliseconds from its status file; apt opens its whole cache (every package
list) first, which costs more than a second of CPU on a small host. So a run where every
package is installed asks dpkg only, and anything dpkg cannot vouch for goes to apt.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

# name or name=version; anything else (wildcards, :arch, >=, .deb paths) is apt's to read.
SPEC_RE = re.compile(r'^(?P<name>[a-z0-9][a-z0-9+.-]+)(=(?P<version>[A-Za-z0-9.+:~-]+))?$')
QUERY_FORMAT = '${Package}\\t${db:Status-Abbrev}\\t${Version}\\n'


def split_spec(spec):
    """(name, version or None) for a plain spec, None for one only apt can read."""
    match = SPEC_RE.match(spec)
    if not match:
        return None
    return match.group('name'), match.group('version')


def query_argv(specs):
    """The dpkg-query call that reports the named packages (one line each that dpkg knows)."""
    names = []
    for spec in specs:
        parsed = split_spec(spec)
        if parsed and parsed[0] not in names:
            names.append(parsed[0])
    return ['dpkg-query', '-W', '-f=' + QUERY_FORMAT, '--'] + names


def parse_query(stdout):
    """{name: version} of the packages dpkg reports installed and healthy.

    ${db:Status-Abbrev} is three characters: wanted state, current state, error flag.
    Only current state 'i' (installed) with no error flag counts; half-installed,
    unpacked, config-files, triggers-pending or reinst-required go to apt.
    """
    installed = {}
    for line in stdout.splitlines():
        parts = line.split('\t')
        if len(parts) != 3:
            continue
        name, status, version = parts
        status = status.ljust(3)
        if status[1] == 'i' and status[2] == ' ':
            installed[name] = version
    return installed


def missing(specs, installed):
    """The specs dpkg's answer does not satisfy, in the order given."""
    result = []
    for spec in specs:
        parsed = split_spec(spec)
        if parsed is None:
            result.append(spec)
            continue
        name, version = parsed
        if name not in installed or (version is not None and installed[name] != version):
            result.append(spec)
    return result
