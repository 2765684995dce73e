#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: haproxy_server
short_description: Drain, disable or enable one haproxy server in every backend that holds it, and verify it
version_added: 0.1.0
description:
  - Finds every backend that holds a server of the given name (C(show servers state) on the admin
    socket), sets its admin state (C(set server <backend>/<server> state drain|maint|ready)) where it
    differs, then polls the socket until the state is verified or O(timeout) passes.
  - Verified means C(drain) - the server is in DRAIN and its current sessions (C(scur)) reached 0, so
    in-flight requests have finished; C(disable) - in MAINT with no current session; C(enable) - neither
    in MAINT nor DRAIN and, with O(wait_up), serving (its health checks pass).
  - A server that is already DOWN has no session, so its drain is verified at once instead of waiting
    for a state it cannot reach.
  - Unlike M(community.general.haproxy), whose drain waits for a status it does not reach and whose
    guard for servers already down does not match, the admin state is read from its bit field.
options:
  server:
    description: The server name as written in the configuration (the inventory name for group backends).
    type: str
    required: true
  state:
    description: C(drain) - no new sessions, in-flight ones finish; C(disable) - maintenance; C(enable) - back in rotation.
    type: str
    required: true
    choices: [drain, disable, enable]
  backends:
    description: Only these backends; all that hold the server when empty.
    type: list
    elements: str
    default: []
  socket:
    description: The admin socket (C(stats socket ... level admin)).
    type: path
    default: /run/haproxy/admin.sock
  timeout:
    description: Seconds to wait for the state to be verified.
    type: float
    default: 60
  wait_up:
    description: With C(enable), also wait until the server's health checks put it back in service.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: Reads the state and reports whether a command would be sent.
  diff_mode:
    support: none
    description: The before and after states are returned instead.
  platform:
    platforms: posix
    support: full
    description: Runs on the haproxy host (the admin socket is a unix socket).
author:
  - commons.infra maintainers (@commons-infra)
'''

EXAMPLES = r'''
- name: Drain ol-web1 in every backend before its deploy
  commons.infra.haproxy_server:
    server: ol-web1
    state: drain
    timeout: 120

- name: Put it back
  commons.infra.haproxy_server:
    server: ol-web1
    state: enable
'''

RETURN = r'''
backends:
  description: The backends that hold the server.
  returned: success
  type: list
  elements: str
  sample: [web, api]
before:
  description: The server's row in each backend before (admin and operational state, current sessions, status).
  returned: success
  type: list
  elements: dict
  sample: [{backend: web, server: ol-web1, status: UP, scur: 3, drain: false, maint: false, up: true}]
after:
  description: The same rows once the state was verified.
  returned: success
  type: list
  elements: dict
  sample: [{backend: web, server: ol-web1, status: DRAIN, scur: 0, drain: true, maint: false, up: true}]
waited:
  description: Seconds spent waiting for the state.
  returned: success
  type: float
  sample: 1.4
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.commons.infra.plugins.module_utils.haproxy_admin import HaproxyAdminError, set_state


def main():
    module = AnsibleModule(
        argument_spec=dict(
            server=dict(type='str', required=True),
            state=dict(type='str', required=True, choices=['drain', 'disable', 'enable']),
            backends=dict(type='list', elements='str', default=[]),
            socket=dict(type='path', default='/run/haproxy/admin.sock'),
            timeout=dict(type='float', default=60),
            wait_up=dict(type='bool', default=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        result = set_state(params['socket'], params['server'], params['state'], backends=params['backends'],
                           timeout=params['timeout'], wait_up=params['wait_up'], check_mode=module.check_mode)
    except HaproxyAdminError as error:
        module.fail_json(msg=str(error))
    module.exit_json(**result)


if __name__ == '__main__':
    main()
