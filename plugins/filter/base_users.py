# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""User filters of the base role (documentation in the .yml file of each filter)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def base_group_removals(record, admins, group_members):
    """Memberships the role gave on its last run (record: {user: [groups]}) that admins no longer lists.

    Only memberships the host still has are returned, as [{user, group}]; groups a user got
    elsewhere (not in the record) are never touched.
    """
    wanted = {}
    for admin in admins or []:
        if admin.get('state', 'present') == 'present':
            wanted[admin['name']] = set(admin.get('groups') or [])
    removals = []
    for user in sorted(record or {}):
        for group in sorted(record[user] or []):
            if group in wanted.get(user, set()):
                continue
            if user in (group_members or {}).get(group, []):
                removals.append({'user': user, 'group': group})
    return removals


class FilterModule(object):
    def filters(self):
        return {
            'base_group_removals': base_group_removals,
        }
