# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""pgBackRest filters: the archive command every manager of the server sets (the
postgres role's postgres_settings, Patroni's postgresql.parameters), and the checks of
the pgbackrest role and of playbooks/postgres_restore_drill.yml (documentation in the
.yml file of each filter)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.six import string_types

STANZA_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]*$')
TABLE_RE = re.compile(r'^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$')
TARGET_TIME_RE = re.compile(r'^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}(:?\d{2})?|Z| ?UTC)?$')
DEFAULT_CONFIG = '/etc/pgbackrest.conf'


def _stanza_problem(stanza, name):
    if not isinstance(stanza, string_types) or not STANZA_RE.match(stanza):
        return '%s must be a name of letters, digits, _, . or - (starting with a letter or digit), got %r' % (name, stanza)
    return None


def pgbackrest_archive_command(stanza, config=DEFAULT_CONFIG):
    """The archive_command that pushes each WAL segment to the stanza's repository."""
    problem = _stanza_problem(stanza, 'stanza')
    if problem:
        raise AnsibleFilterError(problem)
    option = '' if config in (None, '', DEFAULT_CONFIG) else '--config=%s ' % config
    return 'pgbackrest %s--stanza=%s archive-push %%p' % (option, stanza)


def _whole_at_least(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            value = int(str(value), 10)
        except ValueError:
            return '%s must be a whole number, got %r' % (name, value)
    if value < minimum:
        return '%s must be at least %d, got %d' % (name, minimum, value)
    return None


def _absolute_path_problem(value, name):
    if not isinstance(value, string_types) or not value.startswith('/') or '..' in value.split('/'):
        return '%s must be an absolute path without "..", got %r' % (name, value)
    return None


def _inside(path, directory):
    path, directory = path.rstrip('/') + '/', directory.rstrip('/') + '/'
    return path.startswith(directory) or directory.startswith(path)


def pgbackrest_errors(options, postgres_settings=None):
    """Every problem of the pgbackrest role's settings (options: its variables by name),
    each naming the variable; [] when there is none.

    postgres_settings, when the inventory gives the postgres role any, must archive
    through this stanza (archive_mode on, archive_command as pgbackrest_archive_command)."""
    problems = []
    stanza = options.get('pgbackrest_stanza')
    for problem in (
            _stanza_problem(stanza, 'pgbackrest_stanza'),
            _absolute_path_problem(options.get('pgbackrest_repo_path'), 'pgbackrest_repo_path'),
            _absolute_path_problem(options.get('pgbackrest_pg_path'), 'pgbackrest_pg_path'),
            _whole_at_least(options.get('pgbackrest_retention_full'), 'pgbackrest_retention_full', 1),
            _whole_at_least(options.get('pgbackrest_retention_diff'), 'pgbackrest_retention_diff', 1),
            _whole_at_least(options.get('pgbackrest_process_max'), 'pgbackrest_process_max', 1),
            _whole_at_least(options.get('pgbackrest_pg_port'), 'pgbackrest_pg_port', 1)):
        if problem:
            problems.append(problem)
    repo, data = options.get('pgbackrest_repo_path'), options.get('pgbackrest_pg_path')
    if isinstance(repo, string_types) and isinstance(data, string_types) and repo.startswith('/') and _inside(repo, data):
        problems.append('pgbackrest_repo_path (%s) must not be inside the data directory or contain it (%s)' % (repo, data))
    for name in ('pgbackrest_full_schedule', 'pgbackrest_diff_schedule'):
        value = options.get(name)
        if not isinstance(value, string_types) or not value.strip():
            problems.append('%s must be a systemd calendar expression (OnCalendar=), got %r' % (name, value))
    cipher = options.get('pgbackrest_cipher_pass')
    if cipher and (not isinstance(cipher, string_types) or len(cipher) < 20):
        problems.append('pgbackrest_cipher_pass must be a string of at least 20 characters (from the vault), or empty')
    if not isinstance(options.get('pgbackrest_global_options', {}), dict):
        problems.append('pgbackrest_global_options must be a dict of option: value')
    if postgres_settings and not problems:
        command = pgbackrest_archive_command(stanza)
        if str(postgres_settings.get('archive_mode', '')).lower() not in ('on', 'always', 'true', 'yes', '1'):
            problems.append("postgres_settings.archive_mode must be 'on' to archive WAL to pgBackRest, got %r"
                            % postgres_settings.get('archive_mode'))
        if postgres_settings.get('archive_command') != command:
            problems.append("postgres_settings.archive_command must be %r (pgbackrest_stanza | "
                            "commons.infra.pgbackrest_archive_command), got %r" % (command, postgres_settings.get('archive_command')))
    return problems


def pgbackrest_drill_errors(options, live_port=None, live_data_directory=None, hosts=None):
    """Every problem of playbooks/postgres_restore_drill.yml's variables; [] when none."""
    problems = []
    host = options.get('postgres_restore_drill_host')
    if not host or not isinstance(host, string_types):
        problems.append('postgres_restore_drill_host must name the host to restore on')
    elif hosts is not None and host not in hosts:
        problems.append('postgres_restore_drill_host: %s is not a host of the inventory' % host)
    stanza_problem = _stanza_problem(options.get('pgbackrest_stanza'), 'pgbackrest_stanza')
    if stanza_problem:
        problems.append(stanza_problem)
    port = options.get('postgres_restore_drill_port')
    port_problem = _whole_at_least(port, 'postgres_restore_drill_port', 1024)
    if port_problem:
        problems.append(port_problem)
    elif live_port is not None and int(port) == int(live_port):
        problems.append('postgres_restore_drill_port must differ from the live server\'s port %s' % live_port)
    directory = options.get('postgres_restore_drill_directory')
    path_problem = _absolute_path_problem(directory, 'postgres_restore_drill_directory')
    if path_problem:
        problems.append(path_problem)
    elif directory.rstrip('/').count('/') < 2:
        problems.append('postgres_restore_drill_directory must be a directory of its own, not %s' % directory)
    elif live_data_directory and _inside(directory, live_data_directory):
        problems.append('postgres_restore_drill_directory (%s) must not be inside the live data directory or contain it (%s)'
                        % (directory, live_data_directory))
    target = options.get('postgres_restore_drill_target_time')
    if target and (not isinstance(target, string_types) or not TARGET_TIME_RE.match(target.strip())):
        problems.append('postgres_restore_drill_target_time must be a timestamp such as "2026-11-30 05:10:00+00", got %r'
                        % (target,))
    counts = options.get('postgres_restore_drill_row_counts') or {}
    queries = options.get('postgres_restore_drill_queries') or []
    if not isinstance(counts, dict):
        problems.append('postgres_restore_drill_row_counts must be a dict of table: expected row count')
        counts = {}
    if not isinstance(queries, list):
        problems.append('postgres_restore_drill_queries must be a list of {query, expect}')
        queries = []
    for table, count in sorted(counts.items()):
        if not TABLE_RE.match(str(table)):
            problems.append('postgres_restore_drill_row_counts: %r is not a table name (table or schema.table)' % (table,))
        count_problem = _whole_at_least(count, 'postgres_restore_drill_row_counts[%s]' % table, 0)
        if count_problem:
            problems.append(count_problem)
    for index, item in enumerate(queries):
        if not isinstance(item, dict) or not item.get('query') or 'expect' not in item:
            problems.append('postgres_restore_drill_queries[%d] needs a query and an expect (its single value)' % index)
    if not counts and not queries:
        problems.append('postgres_restore_drill_row_counts or postgres_restore_drill_queries must say what the restored '
                        'instance must answer (a drill that checks nothing proves nothing)')
    return problems


def _text(value):
    if isinstance(value, bool):
        return 'true' if value else 'false'
    return 'null' if value is None else str(value)


def pgbackrest_drill_figures(count_results, query_results=None):
    """What the restore drill found against what it expected: [{what, expected, found, ok}].

    count_results and query_results are the registered loop results of the drill's
    row counts (item: {key: table, value: count}) and queries (item: {query, expect});
    a query's figure is the first column of its first row; all are compared as text."""
    figures = []
    for result in count_results or []:
        rows = result.get('query_result') or []
        figures.append({'what': 'rows in %s' % result['item']['key'], 'expected': _text(result['item']['value']),
                        'found': _text(rows[0].get('value')) if rows else 'no row'})
    for result in query_results or []:
        rows = result.get('query_result') or []
        found = _text(list(rows[0].values())[0]) if rows and rows[0] else 'no row'
        figures.append({'what': result['item']['query'], 'expected': _text(result['item']['expect']), 'found': found})
    for figure in figures:
        figure['ok'] = figure['expected'] == figure['found']
    return figures


class FilterModule(object):
    def filters(self):
        return {
            'pgbackrest_archive_command': pgbackrest_archive_command,
            'pgbackrest_errors': pgbackrest_errors,
            'pgbackrest_drill_errors': pgbackrest_drill_errors,
            'pgbackrest_drill_figures': pgbackrest_drill_figures,
        }
