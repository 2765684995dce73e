"""pgbackrest_archive_command, pgbackrest_errors, pgbackrest_drill_errors: the command
the server archives with, and what the role and the restore drill refuse."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.commons.infra.plugins.filter.pgbackrest import (FilterModule, pgbackrest_archive_command,
                                                                         pgbackrest_drill_errors, pgbackrest_drill_figures,
                                                                         pgbackrest_errors)


def role_options(**changes):
    options = {
        'pgbackrest_stanza': 'main', 'pgbackrest_repo_path': '/var/lib/pgbackrest',
        'pgbackrest_pg_path': '/var/lib/postgresql/15/main', 'pgbackrest_pg_port': 5432,
        'pgbackrest_retention_full': 2, 'pgbackrest_retention_diff': 6, 'pgbackrest_process_max': 2,
        'pgbackrest_full_schedule': 'Sun *-*-* 01:15:00', 'pgbackrest_diff_schedule': 'Mon..Sat *-*-* 01:15:00',
        'pgbackrest_cipher_pass': '', 'pgbackrest_global_options': {},
    }
    options.update(changes)
    return options


def drill_options(**changes):
    options = {
        'postgres_restore_drill_host': 'db1', 'pgbackrest_stanza': 'main', 'postgres_restore_drill_port': 5499,
        'postgres_restore_drill_directory': '/var/lib/postgresql/restore-drill', 'postgres_restore_drill_target_time': '',
        'postgres_restore_drill_row_counts': {'public.books': 3}, 'postgres_restore_drill_queries': [],
    }
    options.update(changes)
    return options


ARCHIVING = {'archive_mode': 'on', 'archive_command': 'pgbackrest --stanza=main archive-push %p'}


def test_archive_command():
    assert pgbackrest_archive_command('main') == 'pgbackrest --stanza=main archive-push %p'
    assert pgbackrest_archive_command('ol', '/etc/pgbackrest/ol.conf') == \
        'pgbackrest --config=/etc/pgbackrest/ol.conf --stanza=ol archive-push %p'
    assert pgbackrest_archive_command('ol', '/etc/pgbackrest.conf') == 'pgbackrest --stanza=ol archive-push %p'
    with pytest.raises(AnsibleFilterError, match='stanza must be a name'):
        pgbackrest_archive_command('main; rm -rf /')


def test_good_settings_have_no_problem():
    assert pgbackrest_errors(role_options()) == []
    assert pgbackrest_errors(role_options(), ARCHIVING) == []
    assert pgbackrest_errors(role_options(pgbackrest_cipher_pass='x' * 32, pgbackrest_retention_full='3'), ARCHIVING) == []


@pytest.mark.parametrize('changes, message', [
    ({'pgbackrest_stanza': 'my stanza'}, 'pgbackrest_stanza must be a name'),
    ({'pgbackrest_repo_path': 'backups'}, 'pgbackrest_repo_path must be an absolute path'),
    ({'pgbackrest_repo_path': '/var/lib/postgresql/15/main/repo'}, 'must not be inside the data directory'),
    ({'pgbackrest_repo_path': '/var/lib'}, 'must not be inside the data directory or contain it'),
    ({'pgbackrest_retention_full': 0}, 'pgbackrest_retention_full must be at least 1, got 0'),
    ({'pgbackrest_retention_diff': 'many'}, "pgbackrest_retention_diff must be a whole number, got 'many'"),
    ({'pgbackrest_process_max': True}, 'pgbackrest_process_max must be a whole number'),
    ({'pgbackrest_full_schedule': ' '}, 'pgbackrest_full_schedule must be a systemd calendar expression'),
    ({'pgbackrest_cipher_pass': 'short'}, 'pgbackrest_cipher_pass must be a string of at least 20 characters'),
    ({'pgbackrest_global_options': ['archive-timeout=60']}, 'pgbackrest_global_options must be a dict'),
])
def test_bad_settings_name_the_variable(changes, message):
    problems = pgbackrest_errors(role_options(**changes))
    assert len(problems) == 1 and message in problems[0], problems


def test_the_cipher_pass_is_never_in_a_message():
    problems = pgbackrest_errors(role_options(pgbackrest_cipher_pass='secret'))
    assert problems and not any('secret' in p for p in problems)


def test_the_server_must_archive_through_the_stanza():
    assert pgbackrest_errors(role_options(), {'archive_mode': 'off', 'archive_command': ARCHIVING['archive_command']}) == [
        "postgres_settings.archive_mode must be 'on' to archive WAL to pgBackRest, got 'off'"]
    problems = pgbackrest_errors(role_options(pgbackrest_stanza='ol'), ARCHIVING)
    assert problems == ["postgres_settings.archive_command must be 'pgbackrest --stanza=ol archive-push %p' "
                        "(pgbackrest_stanza | commons.infra.pgbackrest_archive_command), "
                        "got 'pgbackrest --stanza=main archive-push %p'"]
    # Not managed through postgres_settings (e.g. Patroni): nothing to compare.
    assert pgbackrest_errors(role_options(), {}) == []


def test_a_good_drill_has_no_problem():
    assert pgbackrest_drill_errors(drill_options(), 5432, '/var/lib/postgresql/15/main', ['db1', 'db2']) == []
    assert pgbackrest_drill_errors(drill_options(
        postgres_restore_drill_target_time='2026-11-30 05:10:00.123456+00',
        postgres_restore_drill_row_counts={},
        postgres_restore_drill_queries=[{'query': 'SELECT 1', 'expect': 1}])) == []


@pytest.mark.parametrize('changes, message', [
    ({'postgres_restore_drill_host': ''}, 'postgres_restore_drill_host must name the host'),
    ({'postgres_restore_drill_host': 'db9'}, 'postgres_restore_drill_host: db9 is not a host of the inventory'),
    ({'postgres_restore_drill_port': 5432}, "postgres_restore_drill_port must differ from the live server's port 5432"),
    ({'postgres_restore_drill_port': 80}, 'postgres_restore_drill_port must be at least 1024'),
    ({'postgres_restore_drill_directory': '/var/lib/postgresql/15/main/drill'}, 'must not be inside the live data directory'),
    ({'postgres_restore_drill_directory': '/var/lib/postgresql'}, 'must not be inside the live data directory or contain it'),
    ({'postgres_restore_drill_directory': '/srv'}, 'must be a directory of its own'),
    ({'postgres_restore_drill_directory': 'drill'}, 'postgres_restore_drill_directory must be an absolute path'),
    ({'postgres_restore_drill_target_time': 'yesterday'}, 'postgres_restore_drill_target_time must be a timestamp'),
    ({'postgres_restore_drill_row_counts': {'books; DROP TABLE x': 1}}, 'is not a table name'),
    ({'postgres_restore_drill_row_counts': {'books': -1}}, 'postgres_restore_drill_row_counts[books] must be at least 0'),
    ({'postgres_restore_drill_row_counts': {}}, 'a drill that checks nothing proves nothing'),
    ({'postgres_restore_drill_queries': [{'query': 'SELECT 1'}]}, 'postgres_restore_drill_queries[0] needs a query and an expect'),
    ({'pgbackrest_stanza': ''}, 'pgbackrest_stanza must be a name'),
])
def test_a_bad_drill_names_the_variable(changes, message):
    problems = pgbackrest_drill_errors(drill_options(**changes), 5432, '/var/lib/postgresql/15/main', ['db1'])
    assert len(problems) == 1 and message in problems[0], problems


def test_filters_are_registered():
    assert set(FilterModule().filters()) == {'pgbackrest_archive_command', 'pgbackrest_errors', 'pgbackrest_drill_errors', 'pgbackrest_drill_figures'}


def test_drill_figures_compare_as_text():
    counts = [{'item': {'key': 'public.books', 'value': 3}, 'query_result': [{'value': 3}]},
              {'item': {'key': 'authors', 'value': 2}, 'query_result': [{'value': 5}]}]
    queries = [{'item': {'query': 'SELECT string_agg(note, \',\') FROM t', 'expect': 'first'}, 'query_result': [{'string_agg': 'first'}]},
               {'item': {'query': 'SELECT true', 'expect': 'true'}, 'query_result': [{'bool': True}]},
               {'item': {'query': 'SELECT 1 WHERE false', 'expect': 1}, 'query_result': []}]
    figures = pgbackrest_drill_figures(counts, queries)
    assert [(f['what'], f['found'], f['ok']) for f in figures] == [
        ('rows in public.books', '3', True), ('rows in authors', '5', False),
        ("SELECT string_agg(note, ',') FROM t", 'first', True), ('SELECT true', 'true', True),
        ('SELECT 1 WHERE false', 'no row', False)]
