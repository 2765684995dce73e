"""app_release filters: what the role refuses before any change, and which commit a ref names."""
import os

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.commons.infra.plugins.filter.app_release import (
    FilterModule,
    app_release_errors,
    app_release_ref_commit,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
MAIN = 'a' * 40
TAG = 'b' * 40
PEELED = 'c' * 40


def role_defaults():
    with open(os.path.join(ROOT, 'roles', 'app_release', 'defaults', 'main.yml')) as handle:
        defaults = yaml.safe_load(handle)
    # What the role's vars would hold once templated.
    defaults.update(app_release_service='demo', app_release_active_link='/opt/apps/demo',
                    app_release_local_repo='/srv/demo', app_release_command='/usr/bin/python3 app.py',
                    app_release_ssh_dir='/root/.ssh/app_release_demo', app_release_compose_profiles=['web1'],
                    app_release_user='demo', app_release_health_url='http://127.0.0.1:8080/health')
    return defaults


def errors(**overrides):
    settings = role_defaults()
    settings.update(overrides)
    return app_release_errors(settings)


def test_registered_under_documented_names():
    filters = FilterModule().filters()
    assert filters['app_release_errors'] is app_release_errors
    assert filters['app_release_ref_commit'] is app_release_ref_commit
    for name in filters:
        assert os.path.exists(os.path.join(ROOT, 'plugins', 'filter', name + '.yml')), name


# ---------------------------------------------------------------- app_release_errors

def test_defaults_with_a_service_and_a_source_are_fine():
    assert errors() == []


@pytest.mark.parametrize('service', ['../etc', 'a/b', '.hidden', '', 'deploys', 'history.jsonl', 'x' * 129, None])
def test_service_names_that_leave_the_deploy_directory(service):
    problems = errors(app_release_service=service)
    assert any(p.startswith('app_release_service') for p in problems), problems


def test_exactly_one_source():
    assert 'give exactly one source' in errors(app_release_repo='ssh://git@example.org/demo.git')[0]
    assert 'give exactly one source' in errors(app_release_local_repo=None)[0]
    assert errors(app_release_local_repo=None, app_release_repo='ssh://git@example.org/demo.git') == []


def test_local_repo_must_be_absolute_and_keyless():
    assert errors(app_release_local_repo='demo') == ["app_release_local_repo 'demo' must be an absolute path on the controller"]
    assert 'needs no key' in errors(app_release_deploy_key=True)[0]


@pytest.mark.parametrize('version', ['', '-e', 'a b', 'main..evil', 'x\n'])
def test_bad_versions(version):
    assert errors(app_release_version=version)[0].startswith('app_release_version')


@pytest.mark.parametrize('keep,ok', [(None, True), (2, True), (10, True), (1, False), (0, False), (-3, False),
                                     (True, False), ('5', False)])
def test_keep(keep, ok):
    assert (errors(app_release_keep=keep) == []) is ok


@pytest.mark.parametrize('link,message', [
    ({'path': '../../etc/x', 'target': '/srv/x'}, "path '../../etc/x' escapes the release with \"..\""),
    ({'path': 'a/../../x', 'target': '/srv/x'}, 'escapes the release'),
    ({'path': '/etc/x', 'target': '/srv/x'}, 'must be relative to the release, not absolute'),
    ({'path': '.', 'target': '/srv/x'}, 'names the release itself'),
    ({'path': 'data', 'target': 'srv/x'}, "target 'srv/x' must be an absolute path"),
    ({'path': 'data', 'target': '/srv/../etc'}, 'must not contain ".."'),
    ({'path': 'data', 'target': '/srv/x', 'create': 'yes'}, 'create must be true or false'),
    ({'path': 'data', 'target': '/srv/x', 'mode': 750}, 'mode must be an octal string'),
    ({'path': 'data', 'target': '/srv/x', 'owner_': 'x'}, 'unknown keys owner_'),
    ({'target': '/srv/x'}, 'must be a non-empty path'),
    ('data', 'must be a dict'),
])
def test_shared_link_problems(link, message):
    problems = errors(app_release_shared_links=[link])
    assert any(message in p for p in problems), problems


def test_overlapping_shared_links():
    problems = errors(app_release_shared_links=[{'path': 'var', 'target': '/srv/var'},
                                                {'path': 'var/log', 'target': '/srv/log'}])
    assert problems == ["app_release_shared_links[1].path 'var/log' overlaps the shared link 'var'"]


def test_good_shared_links():
    assert errors(app_release_shared_links=[{'path': 'data', 'target': '/mnt/off/data', 'create': True, 'mode': '0750'},
                                            {'path': 'var/log', 'target': '/var/log/demo'}]) == []


def test_requirements_and_release_file_stay_in_the_release():
    assert 'escapes the release' in errors(app_release_requirements_file='../req.txt')[0]
    assert 'plain file name' in errors(app_release_release_file='a/RELEASE')[0]
    assert errors(app_release_release_file=None, app_release_requirements_file='requirements.txt') == []


def test_runtime_needs():
    assert 'app_release_command' in errors(app_release_command=None)[0]
    assert errors(app_release_command=None, app_release_runtime='none') == []
    assert 'app_release_compose_command' in errors(app_release_runtime='compose', app_release_compose_command=[])[0]
    assert errors(app_release_runtime='compose', app_release_compose_command=['docker', 'compose']) == []
    assert 'compose.<environment>.yaml' in errors(app_release_environment='prod/../x')[0]


def test_env_names_and_values():
    problems = errors(app_release_env={'GOOD': 1, 'bad-name': 'x', 'MULTI': 'a\nb', 'NESTED': {}})
    assert len(problems) == 3, problems


def test_a_runtime_needs_a_health_gate_or_an_explicit_false():
    for runtime in ('systemd', 'compose'):
        problems = errors(app_release_runtime=runtime, app_release_health_url=None)
        assert problems and 'app_release_health_url is required with app_release_runtime=%s' % runtime in problems[0]
        assert errors(app_release_runtime=runtime, app_release_health_url=None, app_release_health_check=False) == []
    assert errors(app_release_runtime='none', app_release_health_url=None) == []
    assert 'true or false' in errors(app_release_health_check='no')[0]


def test_service_user_must_be_creatable():
    assert 'cannot be created as a system user' in errors(app_release_user='Demo+Web')[0]
    assert errors(app_release_user='Demo+Web', app_release_create_user=False) == []
    assert errors(app_release_user='root', app_release_create_user=False) == []


def test_compose_command_unset_means_detect():
    assert errors(app_release_runtime='compose', app_release_compose_command=None) == []


def test_health_settings():
    assert 'http:// or https://' in errors(app_release_health_url='127.0.0.1:8080/health')[0]
    assert 'at least 1' in errors(app_release_health_timeout=0)[0]
    assert errors(app_release_health_url='http://127.0.0.1:8080/health') == []


def test_ssh_settings():
    repo = {'app_release_local_repo': None, 'app_release_repo': 'ssh://git@example.org/demo.git'}
    assert 'exclusive' in errors(app_release_deploy_key=True, app_release_key_file='/root/key', **repo)[0]
    assert 'not a known_hosts line' in errors(app_release_known_hosts=['example.org'], **repo)[0]
    assert 'exclusive' in errors(app_release_known_hosts=['example.org ssh-ed25519 AAAA'],
                                 app_release_accept_newhostkey=True, **repo)[0]


def test_active_link_outside_the_deploys():
    assert 'must not be inside /opt/apps/deploys' in errors(app_release_active_link='/opt/apps/deploys/demo')[0]


@pytest.mark.parametrize('release,ok', [('3f2a9c1e', True), ('../x', False), ('.mirror.git', False), ('a b', False)])
def test_rollback_to(release, ok):
    assert (app_release_errors({'app_release_rollback_to': release}) == []) is ok


def test_errors_needs_a_dict():
    with pytest.raises(AnsibleFilterError):
        app_release_errors(['app_release_service'])


# ---------------------------------------------------------------- app_release_ref_commit

LS_REMOTE = '\n'.join([
    '%s\tHEAD' % MAIN,
    '%s\trefs/heads/main' % MAIN,
    '%s\trefs/heads/v1' % MAIN,
    '%s\trefs/tags/v1' % TAG,
    '%s\trefs/tags/v1^{}' % PEELED,
    '%s\trefs/tags/light' % TAG,
])


@pytest.mark.parametrize('version,expected', [
    ('main', MAIN),
    ('HEAD', MAIN),
    ('refs/heads/v1', MAIN),
    ('v1', PEELED),            # a tag wins over a branch; an annotated tag is peeled
    ('light', TAG),
    ('no-such-branch', ''),
    ('d' * 40, 'd' * 40),      # a full id is passed on to be verified by the fetch
    ('D' * 40, 'd' * 40),
    ('deadbeef', ''),          # an abbreviated id cannot be resolved remotely
])
def test_ref_commit(version, expected):
    assert app_release_ref_commit(LS_REMOTE, version) == expected


def test_ref_commit_of_empty_output():
    assert app_release_ref_commit('', 'main') == ''
    with pytest.raises(AnsibleFilterError):
        app_release_ref_commit(LS_REMOTE, '')
