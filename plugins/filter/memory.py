# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Memory sizing filters (documentation in the .yml file of each filter)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_native


def whole_number(value, name, unit=' of MiB'):
    """value as an int, or a failure naming the variable (booleans and fractions too)."""
    message = '%s must be a whole number' + unit + ', got %r'
    if isinstance(value, bool):
        raise AnsibleFilterError(message % (name, value))
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise AnsibleFilterError(message % (name, to_native(value)))
    if number != float(value):
        raise AnsibleFilterError(message % (name, value))
    return number


def usable_memory_mb(memory):
    """The smaller of RAM and the cgroup limit, from memory_info's dict or a number."""
    if isinstance(memory, dict):
        if 'usable_mb' in memory:
            return whole_number(memory['usable_mb'], 'usable_mb')
        if 'total_mb' not in memory:
            raise AnsibleFilterError('memory must hold total_mb (and optionally cgroup_limit_mb), got keys %s' % sorted(memory))
        total = whole_number(memory['total_mb'], 'total_mb')
        limit = memory.get('cgroup_limit_mb')
        return total if limit is None else min(total, whole_number(limit, 'cgroup_limit_mb'))
    return whole_number(memory, 'memory')


def memcached_memory_mb(memory, reserve_mb=300, floor_mb=64, override_mb=None, step_mb=1):
    """memcached's -m: usable memory minus a reserve for the OS, rounded down to a
    step, never below a floor.

    The Open Library runbook: "use whatever resources are available on the
    machine (less perhaps 300mb for OS level memory needs)". MemTotal moves by a
    few MiB with kernel updates; the step keeps such a shift from changing -m,
    which would restart memcached and empty its cache.
    """
    if override_mb is not None:
        override = whole_number(override_mb, 'override_mb')
        if override < 1:
            raise AnsibleFilterError('override_mb must be at least 1, got %d' % override)
        return override
    usable = usable_memory_mb(memory)
    reserve = whole_number(reserve_mb, 'reserve_mb')
    floor = whole_number(floor_mb, 'floor_mb')
    if reserve < 0 or floor < 1:
        raise AnsibleFilterError('reserve_mb must be >= 0 and floor_mb >= 1, got %d and %d' % (reserve, floor))
    step = whole_number(step_mb, 'step_mb')
    if step < 1:
        raise AnsibleFilterError('step_mb must be at least 1, got %d' % step)
    if reserve >= usable:
        raise AnsibleFilterError(
            'reserve_mb (%d MiB) leaves nothing of the %d MiB usable memory for memcached' % (reserve, usable))
    return max((usable - reserve) // step * step, floor)


class FilterModule(object):
    def filters(self):
        return {
            'memcached_memory_mb': memcached_memory_mb,
        }
