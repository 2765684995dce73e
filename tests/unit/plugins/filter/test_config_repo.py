"""config_repo filters: changed files -> /etc paths -> the services to validate, reload or restart."""
import os

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.commons.infra.plugins.filter.config_repo import (
    FilterModule,
    config_repo_errors,
    config_repo_link_paths,
    config_repo_plan,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))


def role_defaults():
    with open(os.path.join(ROOT, 'roles', 'config_repo', 'defaults', 'main.yml')) as handle:
        return yaml.safe_load(handle)


DEFAULT_ACTIONS = role_defaults()['config_repo_actions']
# What a host whose repository (not the memcached role) owns /etc/memcached.conf adds.
MEMCACHED_ACTION = {'service': 'memcached', 'paths': ['memcached.conf'], 'action': 'restart'}


def services(plan):
    return [(s['service'], s['action']) for s in plan['services']]


def test_registered_under_documented_names():
    filters = FilterModule().filters()
    assert filters['config_repo_plan'] is config_repo_plan
    assert filters['config_repo_link_paths'] is config_repo_link_paths
    assert filters['config_repo_errors'] is config_repo_errors
    for name in filters:
        assert os.path.exists(os.path.join(ROOT, 'plugins', 'filter', name + '.yml')), name


# ---------------------------------------------------------------- config_repo_plan

def test_nginx_file_reloads_nginx_only_after_validation():
    plan = config_repo_plan(['/etc/nginx/sites-enabled/default'], DEFAULT_ACTIONS)
    assert services(plan) == [('nginx', 'reload')]
    assert plan['services'][0]['validate'] == [['nginx', '-t', '-q']]
    assert plan['validations'] == [{'service': 'nginx', 'command': ['nginx', '-t', '-q'],
                                    'paths': ['/etc/nginx/sites-enabled/default']}]
    assert plan['daemon_reload'] is False
    assert plan['unmatched'] == []


def test_memcached_restarts_without_validation():
    plan = config_repo_plan(['/etc/memcached.conf'], DEFAULT_ACTIONS + [MEMCACHED_ACTION])
    assert services(plan) == [('memcached', 'restart')]
    assert plan['validations'] == []


def test_files_other_roles_own_concern_no_default_action():
    # memcached.conf is the memcached role's, sshd's drop-ins and jail.local are base's (docs/ownership.md)
    plan = config_repo_plan(['/etc/memcached.conf', '/etc/ssh/sshd_config.d/00-commons-infra.conf',
                             '/etc/fail2ban/jail.local'], DEFAULT_ACTIONS)
    assert plan['services'] == []


def test_unit_files_and_drop_ins_need_daemon_reload_only():
    plan = config_repo_plan(['/etc/systemd/system/hello.service',
                             '/etc/systemd/system/memcached.service.d/olsystem.conf'], DEFAULT_ACTIONS)
    assert plan['daemon_reload'] is True
    assert plan['daemon_reload_paths'] == ['/etc/systemd/system/hello.service',
                                           '/etc/systemd/system/memcached.service.d/olsystem.conf']
    assert plan['services'] == []
    assert plan['unmatched'] == []


def test_files_nobody_reads_need_nothing():
    plan = config_repo_plan(['/etc/motd', '/etc/cron.d/backup'], DEFAULT_ACTIONS)
    assert plan['services'] == [] and plan['daemon_reload'] is False
    assert plan['unmatched'] == ['/etc/cron.d/backup', '/etc/motd']


def test_ssh_client_config_does_not_reload_sshd():
    assert config_repo_plan(['/etc/ssh/ssh_config'], DEFAULT_ACTIONS)['services'] == []
    plan = config_repo_plan(['/etc/ssh/sshd_config'], DEFAULT_ACTIONS)
    assert services(plan) == [('ssh', 'reload')]
    assert plan['validations'][0]['command'] == ['sshd', '-t']


def test_haproxy_validate_string_is_split_into_words():
    plan = config_repo_plan(['/etc/haproxy/errors/503.http'], DEFAULT_ACTIONS)
    assert plan['validations'][0]['command'] == ['haproxy', '-c', '-q', '-f', '/etc/haproxy/haproxy.cfg']


def test_restart_wins_over_reload_and_service_is_listed_once():
    actions = [
        {'service': 'nginx', 'paths': ['nginx/sites-enabled'], 'validate': 'nginx -t'},
        {'service': 'nginx', 'paths': ['nginx/nginx.conf'], 'validate': ['nginx', '-t'], 'action': 'restart'},
        {'service': 'nginx', 'paths': ['ssl'], 'validate': 'openssl version'},
    ]
    plan = config_repo_plan(['/etc/nginx/nginx.conf', '/etc/nginx/sites-enabled/a', '/etc/ssl/x.pem'], actions)
    assert services(plan) == [('nginx', 'restart')]
    # the same command given as a string and as a list is run once
    assert plan['services'][0]['validate'] == [['nginx', '-t'], ['openssl', 'version']]
    assert plan['services'][0]['paths'] == ['/etc/nginx/nginx.conf', '/etc/nginx/sites-enabled/a', '/etc/ssl/x.pem']


def test_reload_stays_when_only_reload_actions_match():
    actions = [
        {'service': 'nginx', 'paths': ['nginx/sites-enabled']},
        {'service': 'nginx', 'paths': ['nginx/nginx.conf'], 'action': 'restart'},
    ]
    assert services(config_repo_plan(['/etc/nginx/sites-enabled/a'], actions)) == [('nginx', 'reload')]


def test_services_follow_the_order_of_the_actions_not_of_the_paths():
    plan = config_repo_plan(['/etc/memcached.conf', '/etc/nginx/sites-enabled/x', '/etc/haproxy/certs/site.pem'],
                            DEFAULT_ACTIONS + [MEMCACHED_ACTION])
    assert [s['service'] for s in plan['services']] == ['nginx', 'haproxy', 'memcached']


def test_one_path_can_concern_several_services():
    actions = [{'service': 'nginx', 'paths': ['ssl/private']}, {'service': 'haproxy', 'paths': ['ssl']}]
    plan = config_repo_plan(['/etc/ssl/private/site.pem'], actions)
    assert services(plan) == [('nginx', 'reload'), ('haproxy', 'reload')]


def test_globs_relative_absolute_and_star_crossing_directories():
    actions = [
        {'service': 'a', 'paths': ['nginx/*.conf']},
        {'service': 'b', 'paths': ['/etc/php/*/fpm']},
        {'service': 'c', 'paths': ['/srv/app/**']},
    ]
    plan = config_repo_plan(['/etc/nginx/conf.d/x.conf', '/etc/php/8.2/fpm/pool.d/www.conf'], actions)
    assert services(plan) == [('a', 'reload'), ('b', 'reload')]
    # absolute globs also match outside the link dest
    assert services(config_repo_plan(['/srv/app/settings.py'], actions)) == [('c', 'reload')]


def test_relative_globs_do_not_match_outside_the_link_dest():
    actions = [{'service': 'nginx', 'paths': ['nginx']}]
    assert config_repo_plan(['/srv/nginx/x'], actions)['services'] == []


def test_other_link_dest_and_relative_changed_paths():
    actions = [{'service': 'nginx', 'paths': ['nginx']}]
    plan = config_repo_plan(['nginx/nginx.conf', '/chroot/etc/nginx/x'], actions, link_dest='/chroot/etc/')
    assert plan['changed_paths'] == ['/chroot/etc/nginx/nginx.conf', '/chroot/etc/nginx/x']
    assert services(plan) == [('nginx', 'reload')]


def test_prefix_is_not_a_directory_match():
    # nginx must not cover /etc/nginx-extra
    actions = [{'service': 'nginx', 'paths': ['nginx']}]
    assert config_repo_plan(['/etc/nginx-extra/x'], actions)['services'] == []


def test_custom_daemon_reload_paths():
    plan = config_repo_plan(['/etc/systemd/system/x.service'], [], daemon_reload_paths=['/lib/systemd/system'])
    assert plan['daemon_reload'] is False
    plan = config_repo_plan(['/etc/systemd/user/x.service'], [], daemon_reload_paths=['systemd/system', 'systemd/user'])
    assert plan['daemon_reload'] is True


def test_nothing_changed_is_an_empty_plan():
    plan = config_repo_plan([], DEFAULT_ACTIONS)
    assert plan == {'changed_paths': [], 'daemon_reload': False, 'daemon_reload_paths': [], 'services': [],
                    'validations': [], 'unmatched': []}


def test_duplicate_changed_paths_are_merged():
    plan = config_repo_plan(['/etc/nginx/conf.d/a', '/etc/nginx/conf.d/a', '/etc//nginx/./conf.d/a'], DEFAULT_ACTIONS)
    assert plan['changed_paths'] == ['/etc/nginx/conf.d/a']
    assert plan['services'][0]['paths'] == ['/etc/nginx/conf.d/a']


@pytest.mark.parametrize('actions,message', [
    ([{'service': 'nginx', 'paths': ['nginx'], 'action': 'bounce'}], "actions[0] (service nginx): action must be one of reload, restart, got 'bounce'"),
    ([{'paths': ['nginx']}], 'actions[0]: service must be a systemd unit name, got None'),
    ([{'service': 'nginx', 'paths': []}], 'paths must list at least one non-empty glob'),
    ([{'service': 'nginx', 'paths': ['nginx'], 'valdiate': 'nginx -t'}], 'unknown keys valdiate'),
    ([{'service': 'nginx', 'paths': ['nginx'], 'validate': {'cmd': 'x'}}], 'validate must be a command string or a list of words'),
    ([{'service': 'nginx', 'paths': ['nginx'], 'validate': 'nginx -t "'}], 'cannot be split into words'),
    ([{'service': 'two words', 'paths': ['x']}], 'service must be a systemd unit name'),
    ('nginx', 'actions must be a list'),
    (['nginx'], 'actions[0] must be a dict'),
])
def test_malformed_actions_fail_naming_the_action(actions, message):
    with pytest.raises(AnsibleFilterError) as err:
        config_repo_plan(['/etc/nginx/x'], actions)
    assert message in str(err.value)


def test_relative_link_dest_is_refused():
    with pytest.raises(AnsibleFilterError, match='link_dest must be an absolute path'):
        config_repo_plan([], [], link_dest='etc')


# ---------------------------------------------------------------- config_repo_link_paths

def test_olsystem_layer_maps_to_etc_and_drops_files_outside():
    paths = ['etc/nginx/sites-enabled/default', 'README.md', 'scripts/deploy.sh', 'etcetera/x']
    assert config_repo_link_paths(paths, ['etc']) == ['/etc/nginx/sites-enabled/default']


def test_openfoodfacts_layers():
    layers = ['confs/common', 'confs/off2']
    paths = ['confs/common/nginx/nginx.conf', 'confs/off2/haproxy/haproxy.cfg', 'confs/off1/nginx/x']
    assert config_repo_link_paths(paths, layers) == ['/etc/haproxy/haproxy.cfg', '/etc/nginx/nginx.conf']


def test_change_hidden_by_a_later_layer_is_dropped():
    layers = ['confs/common', 'confs/off2']
    files = ['confs/common/nginx/nginx.conf', 'confs/off2/nginx/nginx.conf', 'confs/common/motd']
    assert config_repo_link_paths(['confs/common/nginx/nginx.conf', 'confs/common/motd'], layers,
                                  repo_files=files) == ['/etc/motd']
    # the later layer's own change counts
    assert config_repo_link_paths(['confs/off2/nginx/nginx.conf'], layers, repo_files=files) == ['/etc/nginx/nginx.conf']


def test_deleting_the_overriding_file_counts_as_a_change():
    layers = ['confs/common', 'confs/off2']
    files = ['confs/common/nginx/nginx.conf']  # off2's copy was deleted by the commit
    assert config_repo_link_paths(['confs/off2/nginx/nginx.conf'], layers, repo_files=files) == ['/etc/nginx/nginx.conf']


def test_without_repo_files_every_change_counts():
    layers = ['confs/common', 'confs/off2']
    assert config_repo_link_paths(['confs/common/a', 'confs/off2/a'], layers) == ['/etc/a']


def test_layer_spellings_and_other_link_dest():
    assert config_repo_link_paths(['etc/a/b'], ['./etc/'], '/srv/root/') == ['/srv/root/a/b']
    assert config_repo_link_paths(['a/b', 'c'], ['.'], '/etc') == ['/etc/a/b', '/etc/c']


def test_lone_string_is_one_path():
    assert config_repo_link_paths('etc/motd', 'etc') == ['/etc/motd']


@pytest.mark.parametrize('layers,message', [
    (['../etc'], 'escapes the checkout'),
    (['/etc'], 'must be relative'),
    (['.git/hooks'], '.git'),
])
def test_bad_layers_are_refused(layers, message):
    with pytest.raises(AnsibleFilterError, match=message):
        config_repo_link_paths(['etc/x'], layers)


# ---------------------------------------------------------------- config_repo_errors

GOOD = {
    'config_repo_repo': 'ssh://git@git.example/olsystem.git',
    'config_repo_version': 'v1.2.0',
    'config_repo_dest': '/opt/olsystem',
    'config_repo_link_dest': '/etc',
    'config_repo_layers': ['etc'],
    'config_repo_deploy_key': True,
    'config_repo_key_file': None,
    'config_repo_ssh_dir': '/root/.ssh/config_repo',
    'config_repo_known_hosts': ['git.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample'],
    'config_repo_accept_newhostkey': False,
    'config_repo_backup_dir': None,
    'config_repo_actions': DEFAULT_ACTIONS,
    'config_repo_daemon_reload_paths': ['systemd/system'],
}


def test_good_settings_and_role_defaults_have_no_problem():
    assert config_repo_errors(GOOD) == []
    defaults = role_defaults()
    defaults['config_repo_repo'] = 'https://git.example/olsystem.git'
    defaults['config_repo_deploy_key'] = False
    assert config_repo_errors(defaults) == []


@pytest.mark.parametrize('change,message', [
    ({'config_repo_repo': None}, 'config_repo_repo must be set'),
    ({'config_repo_version': ''}, 'config_repo_version must be set'),
    ({'config_repo_dest': 'opt/olsystem'}, "config_repo_dest must be an absolute path, got 'opt/olsystem'"),
    ({'config_repo_dest': '/'}, 'config_repo_dest must be an absolute path below /'),
    ({'config_repo_dest': '/opt/../etc/olsystem'}, 'without ".."'),
    ({'config_repo_dest': '/etc/olsystem'}, 'config_repo_dest /etc/olsystem is inside config_repo_link_dest /etc'),
    ({'config_repo_link_dest': '/opt/olsystem/etc'}, 'config_repo_link_dest /opt/olsystem/etc is inside config_repo_dest'),
    ({'config_repo_link_dest': 'etc'}, 'config_repo_link_dest must be an absolute path'),
    ({'config_repo_layers': ['../etc']}, "config_repo_layers: '../etc' escapes the checkout"),
    ({'config_repo_layers': ['etc/../../x']}, 'escapes the checkout'),
    ({'config_repo_layers': ['/etc']}, "config_repo_layers: '/etc' must be relative"),
    ({'config_repo_layers': []}, 'config_repo_layers must be a non-empty list'),
    ({'config_repo_layers': 'etc'}, 'config_repo_layers must be a non-empty list'),
    ({'config_repo_layers': ['confs', 'confs/off2']}, "config_repo_layers: 'confs' and 'confs/off2' overlap"),
    ({'config_repo_layers': ['etc', './etc/']}, 'overlap'),
    ({'config_repo_layers': ['.', 'etc']}, 'overlap'),
    ({'config_repo_layers': ['.git']}, '.git'),
    ({'config_repo_key_file': '/root/key'}, 'set config_repo_deploy_key (the key itself) or config_repo_key_file'),
    ({'config_repo_deploy_key': False, 'config_repo_key_file': 'key'}, 'config_repo_key_file must be an absolute path'),
    ({'config_repo_ssh_dir': '.ssh'}, 'config_repo_ssh_dir must be an absolute path'),
    ({'config_repo_backup_dir': '/etc/backups'}, 'config_repo_backup_dir /etc/backups is inside config_repo_link_dest'),
    ({'config_repo_known_hosts': ['git.example']}, 'config_repo_known_hosts: \'git.example\' is not a known_hosts line'),
    ({'config_repo_accept_newhostkey': True}, 'do not also set config_repo_accept_newhostkey'),
    ({'config_repo_actions': [{'service': 'nginx', 'paths': ['nginx'], 'action': 'bounce'}]},
     "config_repo_actions[0] (service nginx): action must be one of reload, restart, got 'bounce'"),
    ({'config_repo_daemon_reload_paths': [3]}, 'config_repo_daemon_reload_paths must be a list of strings'),
])
def test_each_problem_names_its_variable(change, message):
    settings = dict(GOOD, **change)
    problems = config_repo_errors(settings)
    assert any(message in p for p in problems), problems


def test_every_problem_is_listed_at_once():
    settings = dict(GOOD, config_repo_dest='opt', config_repo_layers=['../x'], config_repo_link_dest='etc')
    assert len(config_repo_errors(settings)) == 3


def test_only_present_keys_are_checked():
    assert config_repo_errors({'config_repo_layers': ['etc']}) == []
