# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Solr filters: the JVM heap from usable memory (documentation in the .yml file of
each filter). Usable memory and whole numbers are memory.py's, shared with memcached
and postgres."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.six import string_types
from ansible_collections.commons.infra.plugins.filter.memory import usable_memory_mb, whole_number

# Above about 32 GiB the JVM loses compressed object pointers: a 33 GiB heap holds less than a 31 GiB one.
COMPRESSED_OOPS_MB = 31744


def solr_heap_mb(memory, fraction=0.25, cap_mb=COMPRESSED_OOPS_MB, reserve_mb=512, floor_mb=512, override_mb=None,
                 step_mb=64, prefix='solr_'):
    """Solr's heap: a fraction of usable memory, rounded down to a step, capped, never below a floor.

    What the heap does not take is the operating system's reserve and the page cache,
    which holds the index: Solr's own guidance is a heap as small as the load allows.
    A heap (computed or given) that does not fit in usable memory less the reserve is
    refused: such a JVM starts, and the OOM killer ends it under load.
    """
    usable = usable_memory_mb(memory)
    reserve = whole_number(reserve_mb, prefix + 'memory_reserve_mb')
    if reserve < 0:
        raise AnsibleFilterError('%smemory_reserve_mb must be at least 0, got %d' % (prefix, reserve))
    room = usable - reserve
    if override_mb is not None:
        heap = whole_number(override_mb, prefix + 'heap_mb')
        if heap < 1:
            raise AnsibleFilterError('%sheap_mb must be at least 1, got %d' % (prefix, heap))
        if heap > usable:
            raise AnsibleFilterError('%sheap_mb (%d MiB) is larger than the usable memory of the host (%d MiB)'
                                     % (prefix, heap, usable))
        if heap > room:
            raise AnsibleFilterError('%sheap_mb (%d MiB) leaves less than %smemory_reserve_mb (%d MiB) of the %d MiB '
                                     'usable memory to the operating system' % (prefix, heap, prefix, reserve, usable))
        return heap
    try:
        share = float(fraction)
    except (TypeError, ValueError):
        raise AnsibleFilterError('%sheap_fraction must be a number, got %r' % (prefix, fraction))
    if isinstance(fraction, bool) or not 0 < share <= 0.75:
        raise AnsibleFilterError('%sheap_fraction must be above 0 and at most 0.75 (the rest is the page cache\'s), '
                                 'got %r' % (prefix, fraction))
    cap = whole_number(cap_mb, prefix + 'heap_cap_mb')
    floor = whole_number(floor_mb, prefix + 'heap_floor_mb')
    step = whole_number(step_mb, prefix + 'heap_step_mb')
    if cap < 1 or floor < 1 or step < 1:
        raise AnsibleFilterError('%sheap_cap_mb, %sheap_floor_mb and %sheap_step_mb must be at least 1, got %d, %d, %d'
                                 % (prefix, prefix, prefix, cap, floor, step))
    heap = max(min(int(usable * share) // step * step, cap), floor)
    if heap > room:
        raise AnsibleFilterError('%d MiB usable memory is too little for Solr: the heap (%d MiB, at least %sheap_floor_mb) '
                                 'and %smemory_reserve_mb (%d MiB) do not fit' % (usable, heap, prefix, prefix, reserve))
    return heap


SHA512_RE = re.compile(r'^[0-9a-fA-F]{128}$')
CORE_NAME_RE = re.compile(r'^[A-Za-z0-9_][A-Za-z0-9_.-]*$')
VERSION_RE = re.compile(r'^[0-9]+\.[0-9]+\.[0-9]+$')


def _version_tuple(version):
    return tuple(int(part) for part in version.split('.'))


def solr_errors(settings):
    """Every problem of the solr role's settings, each naming its variable."""
    problems = []

    def has(name):
        return name in settings

    if has('solr_archive_sha512'):
        digest = settings['solr_archive_sha512']
        if not digest:
            problems.append('solr_archive_sha512 is missing: give the SHA-512 of the archive (Apache publishes it '
                            'beside each release as solr-<version>.tgz.sha512); nothing is unpacked without it')
        elif not isinstance(digest, string_types) or not SHA512_RE.match(digest.split()[0]):
            problems.append('solr_archive_sha512 must be 128 hexadecimal digits (a SHA-512), got %r' % (digest,))
    if has('solr_archive_url') and has('solr_archive_file'):
        url, path = settings['solr_archive_url'], settings['solr_archive_file']
        if not url and not path:
            problems.append('give solr_archive_url (the official archive) or solr_archive_file (a file on the controller)')
        if url and not path and not re.match(r'^https?://', str(url)):
            problems.append('solr_archive_url must be an http(s):// URL, got %r' % (url,))
    if has('solr_version'):
        version = settings['solr_version']
        if not isinstance(version, string_types) or not VERSION_RE.match(version):
            problems.append('solr_version must be a release number like 9.7.0 (quoted), got %r' % (version,))
        elif not _version_tuple('9.0.0') <= _version_tuple(version) < _version_tuple('10.0.0'):
            problems.append('solr_version %s is not a Solr 9 release (this role runs Solr 9 on Java 17)' % version)
    if has('solr_port'):
        port = settings['solr_port']
        if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
            problems.append('solr_port must be a port (1 to 65535), got %r' % (port,))
    for name in ('solr_home', 'solr_logs_dir', 'solr_install_dir', 'solr_var_dir'):
        if has(name) and not str(settings[name] or '').startswith('/'):
            problems.append('%s must be an absolute path, got %r' % (name, settings[name]))
    cores = settings.get('solr_cores', [])
    if not isinstance(cores, list):
        problems.append('solr_cores must be a list, got %r' % (cores,))
        cores = []
    names = []
    for index, core in enumerate(cores):
        where = 'solr_cores[%d]' % index
        if not isinstance(core, dict):
            problems.append('%s must be a dict with name and configset, got %r' % (where, core))
            continue
        name = core.get('name')
        if not isinstance(name, string_types) or not CORE_NAME_RE.match(name) or name in ('.', '..'):
            problems.append('%s.name must be a core name (letters, digits, _ . -; no slash, not starting with a dot), '
                            'got %r' % (where, name))
        names.append(name)
        configset = core.get('configset')
        if not isinstance(configset, string_types) or not configset.startswith('/') or '/../' in configset + '/':
            problems.append('%s.configset must be the absolute path of the core\'s conf directory on the host (the '
                            'config repository\'s checkout), got %r' % (where, configset))
        unknown = sorted(set(core) - set(['name', 'configset', 'properties']))
        if unknown:
            problems.append('%s: unknown keys %s' % (where, ', '.join(unknown)))
    repeated = sorted(set(n for n in names if isinstance(n, string_types) and names.count(n) > 1))
    if repeated:
        problems.append('solr_cores: names must be unique, repeated: %s' % ', '.join(repeated))
    return problems


class FilterModule(object):
    def filters(self):
        return {
            'solr_errors': solr_errors,
            'solr_heap_mb': solr_heap_mb,
        }
