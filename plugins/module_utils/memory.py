# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How much memory a host can really give its services.

/proc/meminfo shows the whole machine even inside a container, so sizing a
cache from it alone over-commits: the memory cgroup that holds PID 1 (and
every cgroup above it) may set a lower limit.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

MIB = 1024 * 1024
# cgroup v1 reports "no limit" as the page counter maximum (~8 EiB); anything
# this large is not a real limit.
UNLIMITED_THRESHOLD = 1 << 60


def meminfo_total_mb(meminfo_text):
    """MemTotal from /proc/meminfo text, in MiB (rounded down)."""
    for line in meminfo_text.splitlines():
        if line.startswith('MemTotal:'):
            fields = line.split()
            kib = int(fields[1])
            return kib // 1024
    raise ValueError('MemTotal not found in meminfo')


def parse_proc_cgroup(text):
    """Map controller -> cgroup path from /proc/<pid>/cgroup; v2 is key ''."""
    paths = {}
    for line in text.splitlines():
        parts = line.strip().split(':', 2)
        if len(parts) != 3:
            continue
        _hier, controllers, path = parts
        if controllers == '':
            paths[''] = path
        for controller in controllers.split(','):
            if controller:
                paths[controller] = path
    return paths


def _ancestors(path):
    """The path and every parent up to the root: /a/b -> /a/b, /a, /."""
    path = '/' + path.strip('/')
    result = [path]
    while path != '/':
        path = os.path.dirname(path)
        result.append(path)
    return result


def _read_limit(limit_file):
    try:
        with open(limit_file) as handle:
            raw = handle.read().strip()
    except (IOError, OSError):
        return None
    if raw in ('', 'max'):
        return None
    try:
        value = int(raw)
    except ValueError:
        return None
    if value >= UNLIMITED_THRESHOLD:
        return None
    return value


def cgroup_memory_limit(proc_cgroup_text, cgroup_root='/sys/fs/cgroup'):
    """The tightest memory limit (bytes) over the cgroup of a process and its
    ancestors, and the cgroup version it came from: (bytes or None, version).

    Ancestors matter: systemd inside a container moves itself to init.scope,
    while the container's limit sits on the parent.
    """
    paths = parse_proc_cgroup(proc_cgroup_text)
    candidates = []
    if 'memory' in paths:
        for path in _ancestors(paths['memory']):
            limit = _read_limit(os.path.join(cgroup_root, 'memory', path.lstrip('/'), 'memory.limit_in_bytes'))
            if limit is not None:
                candidates.append((limit, 'v1'))
    if '' in paths and os.path.exists(os.path.join(cgroup_root, 'cgroup.controllers')):
        for path in _ancestors(paths['']):
            limit = _read_limit(os.path.join(cgroup_root, path.lstrip('/'), 'memory.max'))
            if limit is not None:
                candidates.append((limit, 'v2'))
    if not candidates:
        version = 'v1' if 'memory' in paths else ('v2' if '' in paths else None)
        return None, version
    return min(candidates)


def memory_info(proc_root='/proc', cgroup_root='/sys/fs/cgroup', pid=1):
    """total_mb, cgroup_limit_mb (None without a limit), cgroup_version, usable_mb."""
    with open(os.path.join(proc_root, 'meminfo')) as handle:
        total_mb = meminfo_total_mb(handle.read())
    try:
        with open(os.path.join(proc_root, str(pid), 'cgroup')) as handle:
            limit, version = cgroup_memory_limit(handle.read(), cgroup_root)
    except (IOError, OSError):
        limit, version = None, None
    limit_mb = None if limit is None else limit // MIB
    usable_mb = total_mb if limit_mb is None else min(total_mb, limit_mb)
    return {
        'total_mb': total_mb,
        'cgroup_limit_mb': limit_mb,
        'cgroup_version': version,
        'usable_mb': usable_mb,
    }
