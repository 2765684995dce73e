# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""service_watchdog filters: the checks of the watched services and their plan, with
every duration in seconds (documentation in the .yml file of each filter).

Durations are parsed here once; the program on the host reads seconds only.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.six import string_types

NAME_RE = re.compile(r'^[a-z0-9][a-z0-9_.-]*$')
DURATION_RE = re.compile(r'^\s*(?:(\d+)h)?\s*(?:(\d+)m(?!s))?\s*(?:(\d+)s)?\s*$')
DURATIONS = ('interval', 'timeout', 'unhealthy_after', 'backoff')
KNOWN_KEYS = frozenset(DURATIONS + (
    'name', 'url', 'host', 'port', 'expect_status', 'unit', 'compose_service', 'compose_project',
    'compose_project_dir', 'compose_files', 'compose_command', 'max_restarts', 'webhook_url', 'enabled'))
DEFAULT_KEYS = DURATIONS + ('max_restarts', 'webhook_url')


def duration_seconds(value, name):
    """Seconds from 90, '90', '90s', '4m', '1h', '1m30s'; a failure naming the variable otherwise."""
    if isinstance(value, bool):
        raise AnsibleFilterError('%s must be a duration like 60s, 4m or a number of seconds, got %r' % (name, value))
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, string_types) and value.strip().isdigit():
        seconds = int(value)
    else:
        match = DURATION_RE.match(value) if isinstance(value, string_types) else None
        if not match or not any(match.groups()):
            raise AnsibleFilterError('%s must be a duration like 60s, 4m or a number of seconds, got %r' % (name, value))
        hours, minutes, secs = (int(part or 0) for part in match.groups())
        seconds = hours * 3600 + minutes * 60 + secs
    if seconds < 1:
        raise AnsibleFilterError('%s must be at least 1 second, got %r' % (name, value))
    return seconds


def _item_problems(index, item, defaults, variable):
    path = where = '%s[%d]' % (variable, index)
    if not isinstance(item, dict):
        return ['%s must be a dict, got %r' % (where, item)]
    problems = []
    name = item.get('name')
    if not isinstance(name, string_types) or not NAME_RE.match(name):
        problems.append('%s.name must match [a-z0-9][a-z0-9_.-]* (it names a unit and a file), got %r' % (where, name))
    else:
        where = '%s[%d] (%s)' % (variable, index, name)
    unknown = sorted(set(item) - KNOWN_KEYS)
    if unknown:
        problems.append('%s: unknown keys %s' % (where, ', '.join(unknown)))
    if bool(item.get('url')) == bool(item.get('port')):
        problems.append('%s: give exactly one of url (an HTTP probe) or port (a TCP probe)' % where)
    if item.get('url') and not re.match(r'^https?://[^/\s]+', str(item['url'])):
        problems.append('%s: url must be an http:// or https:// URL of the service itself, got %r' % (where, item['url']))
    if item.get('port') and not (isinstance(item['port'], int) and not isinstance(item['port'], bool)
                                 and 1 <= item['port'] <= 65535):
        problems.append('%s: port must be a port (1 to 65535), got %r' % (where, item['port']))
    if bool(item.get('unit')) == bool(item.get('compose_service')):
        problems.append('%s: give exactly one of unit (a systemd unit) or compose_service (with compose_project_dir)' % where)
    if item.get('compose_service') and not str(item.get('compose_project_dir') or '').startswith('/'):
        problems.append('%s: compose_project_dir must be the absolute path of the compose project' % where)
    status = item.get('expect_status', [200])
    if not isinstance(status, list) or not status or not all(
            isinstance(code, int) and not isinstance(code, bool) and 100 <= code <= 599 for code in status):
        problems.append('%s: expect_status must be a list of HTTP status codes, got %r' % (where, status))
    seconds = {}
    for key in DURATIONS:
        value = item.get(key, defaults.get(key))
        source = '%s.%s' % (path, key) if key in item else 'service_watchdog_%s' % key
        try:
            seconds[key] = duration_seconds(value, source)
        except AnsibleFilterError as error:
            problems.append(str(error))
    if 'timeout' in seconds and 'interval' in seconds and seconds['timeout'] > seconds['interval']:
        problems.append('%s: timeout (%ds, %s) is longer than its interval (%ds, %s): probes would overlap' % (
            where, seconds['timeout'], '%s.timeout' % path if 'timeout' in item else 'service_watchdog_timeout',
            seconds['interval'], '%s.interval' % path if 'interval' in item else 'service_watchdog_interval'))
    if 'unhealthy_after' in seconds and 'interval' in seconds and seconds['unhealthy_after'] < seconds['interval']:
        problems.append('%s: unhealthy_after (%ds) is shorter than the interval (%ds): one failed probe would restart' % (
            where, seconds['unhealthy_after'], seconds['interval']))
    restarts = item.get('max_restarts', defaults.get('max_restarts'))
    if not isinstance(restarts, int) or isinstance(restarts, bool) or restarts < 1:
        problems.append('%s must be a whole number of at least 1, got %r' % (
            '%s.max_restarts' % path if 'max_restarts' in item else 'service_watchdog_max_restarts', restarts))
    webhook = item.get('webhook_url', defaults.get('webhook_url'))
    if webhook and not re.match(r'^https?://[^/\s]+', str(webhook)):
        problems.append('%s: webhook_url must be an http:// or https:// URL' % where)
    return problems


def service_watchdog_errors(services, defaults=None, variable='service_watchdog_services'):
    """Every problem of the watched services, each naming its variable."""
    defaults = defaults or {}
    if not isinstance(services, list):
        return ['%s must be a list of services to watch, got %r' % (variable, services)]
    problems = []
    for index, item in enumerate(services):
        problems.extend(_item_problems(index, item, defaults, variable))
    names = [item.get('name') for item in services if isinstance(item, dict)]
    duplicates = sorted(set(n for n in names if names.count(n) > 1 and n))
    if duplicates:
        problems.append('%s: names must be unique, repeated: %s' % (variable, ', '.join(duplicates)))
    return problems


def service_watchdog_plan(services, defaults=None):
    """The config file of each enabled service: defaults filled in, durations in seconds."""
    defaults = defaults or {}
    problems = service_watchdog_errors(services, defaults)
    if problems:
        raise AnsibleFilterError('; '.join(problems))
    plan = []
    for item in services:
        if not item.get('enabled', True):
            continue
        config = dict((key, value) for key, value in item.items() if key != 'enabled' and value is not None)
        for key in DEFAULT_KEYS:
            if key not in config and defaults.get(key) is not None:
                config[key] = defaults[key]
        for key in DURATIONS:
            config[key] = duration_seconds(config[key], key)
        config.setdefault('expect_status', [200])
        plan.append(config)
    return plan


class FilterModule(object):
    def filters(self):
        return {
            'service_watchdog_errors': service_watchdog_errors,
            'service_watchdog_plan': service_watchdog_plan,
        }
