# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import shlex

from ansible.module_utils.six import string_types
from ansible.plugins.action import ActionBase
from ansible_collections.commons.infra.plugins.module_utils.apt_present import missing, parse_query, query_argv

ARGUMENT_SPEC = dict(
    name=dict(type='list', elements='str', required=True, aliases=['pkg']),
    state=dict(type='str', default='present', choices=['present']),
    update_cache=dict(type='bool', default=False),
    cache_valid_time=dict(type='int', default=0),
    install_recommends=dict(type='bool'),
    default_release=dict(type='str'),
)


class ActionModule(ActionBase):
    """Ask dpkg (one shell command, no module) which packages are missing; run apt only for a run that needs it."""

    TRANSFERS_FILES = False
    _requires_connection = True

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        specs = [spec.strip() for spec in args['name'] if isinstance(spec, string_types) and spec.strip()]

        query = self._low_level_execute_command(' '.join(shlex.quote(part) for part in query_argv(specs)),
                                                sudoable=False)
        # dpkg-query exits 1 when it knows one of the names not at all; its other lines still count.
        if query['rc'] not in (0, 1):
            result.update(failed=True, msg='dpkg-query failed (rc %s): %s' % (query['rc'], query['stderr'].strip()))
            return result
        wanted = missing(specs, parse_query(query['stdout']))
        result['packages_missing'] = wanted
        if not wanted:
            result.update(changed=False, apt_ran=False, msg='dpkg has every package installed; apt not run')
            return result

        apt_args = dict(name=specs, state='present', update_cache=args['update_cache'],
                        cache_valid_time=args['cache_valid_time'])
        for key in ('install_recommends', 'default_release'):
            if args.get(key) is not None:
                apt_args[key] = args[key]
        try:
            apt_result = self._execute_module(module_name='ansible.builtin.apt', module_args=apt_args,
                                              task_vars=task_vars)
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        result.update(apt_result)
        result['apt_ran'] = True
        return result
