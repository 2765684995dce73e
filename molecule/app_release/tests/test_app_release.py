"""app_release: deploy by commit id, switch, roll back, health gate with automatic rollback.

converge.yml deployed v1 of tests/apps/demo_web (from the repository prepare.yml built on
the controller) to ar-web1 and ar-web2. The tests below run in file order and drive the
rest of the story with playbooks/deploy.yml and playbooks/rollback.yml.
"""
import json
import os
import subprocess

import pytest
import yaml

from conftest import SCENARIO_DIR, http_get, recap_counts, run_playbook

PROJECT = os.environ.get('MOLECULE_PROJECT_DIRECTORY', os.path.dirname(os.path.dirname(SCENARIO_DIR)))
LAB_DIR = os.environ.get('MOLECULE_EPHEMERAL_DIRECTORY', '')
REPO = os.path.join(LAB_DIR, 'demo-repo')
DEPLOY = os.path.join(PROJECT, 'playbooks', 'deploy.yml')
ROLLBACK = os.path.join(PROJECT, 'playbooks', 'rollback.yml')
WEB = ('ar-web1', 'ar-web2')
ROOT = '/opt/openlibrary'
LINK = ROOT + '/demo'
DEPLOYS = ROOT + '/deploys/demo'
STATUS_URL = 'http://127.0.0.1:8080/status'
HEALTH_URL = 'http://127.0.0.1:8080/health'

with open(os.path.join(SCENARIO_DIR, 'vars', 'demo.yml')) as handle:
    DEMO_VARS = yaml.safe_load(handle)
# v2 is deployed with one more variable than v1: a rollback must take it away again.
V2_ENV = dict(DEMO_VARS['app_release_env'], DEMO_NOTE='v2 settings')


def git(*args):
    return subprocess.run(['git', '-C', REPO] + list(args), check=True, capture_output=True, text=True).stdout.strip()


def commit(ref):
    return git('rev-parse', ref + '^{commit}')


def deploy(serial=2, playbook=DEPLOY, check=False, **overrides):
    extra = dict(DEMO_VARS, deploy_hosts='web', deploy_serial=serial)
    extra.update(overrides)
    return run_playbook(playbook, extra_vars=extra, check=check)


def rollback(**overrides):
    extra = dict(DEMO_VARS, deploy_hosts='web', deploy_serial=2)
    extra.update(overrides)
    return run_playbook(ROLLBACK, extra_vars=extra)


def status(host):
    code, body = http_get(host, STATUS_URL)
    assert code == 200, body
    return json.loads(body)


def active(host):
    return os.path.basename(host.check_output('readlink %s', LINK))


def releases(host, deploys=DEPLOYS):
    return sorted(host.check_output('ls -1 %s', deploys).split())


def flat(output):
    return ' '.join(output.split())


# Fixtures of the lab helper, not testinfra's parametrized `host`: pytest regroups the tests
# that use a parametrized module fixture, and these tests must run in file order.
@pytest.fixture
def web(lab):
    return [lab(name) for name in WEB]


@pytest.fixture
def web1(lab):
    return lab('ar-web1')


def test_v1_answers_on_both_hosts(web):
    for host in web:
        assert status(host)['release'] == commit('v1')
        assert status(host)['version'] == '1'
        assert active(host) == commit('v1')


def test_release_layout(web1):
    release = '%s/%s' % (DEPLOYS, commit('v1'))
    assert web1.file(release + '/RELEASE').content_string == commit('v1') + '\n'
    assert web1.file(release + '/data').linked_to == '/mnt/demo/data'
    assert web1.file(release + '/var/log').linked_to == '/var/log/demo'
    assert web1.file('/mnt/demo/data').mode == 0o750
    # The bundle was only a vehicle.
    assert not web1.file(ROOT + '/deploys/demo.bundle').exists
    unit = web1.file('/etc/systemd/system/demo.service').content_string
    assert 'WorkingDirectory=%s\n' % LINK in unit
    assert 'ExecStart=/usr/bin/python3 app.py\n' in unit
    env = web1.file('/etc/default/demo')
    assert env.mode == 0o600 and 'PORT="8080"' in env.content_string
    assert web1.service('demo').is_enabled


def test_runs_as_its_own_service_user(web1):
    # No user was set: the role made a system user named after the service.
    user = web1.user('demo')
    assert user.exists and user.uid < 1000 and user.shell == '/usr/sbin/nologin'
    assert 'User=demo\n' in web1.file('/etc/systemd/system/demo.service').content_string
    assert web1.check_output('ps -o user= -p %s', str(status(web1)['pid'])) == 'demo'
    assert web1.file('%s/%s/RELEASE' % (DEPLOYS, commit('v1'))).user == 'demo'


def test_cache_reports_memcached(web1):
    assert status(web1)['cache'] == 'ok'


def test_check_mode_reports_v2_and_changes_nothing(web):
    pids = [status(h)['pid'] for h in web]
    rc, out = deploy(check=True, app_release_version='v2')
    assert rc == 0, out[-3000:]
    for name, host, pid in zip(WEB, web, pids):
        assert recap_counts(out, name)['changed'] > 0
        assert active(host) == commit('v1')
        assert commit('v2') not in releases(host)
        assert status(host)['pid'] == pid
    assert 'would switch %s from %s to %s' % (LINK, commit('v1'), commit('v2')) in out


def test_deploy_v2_from_a_branch_that_moves_during_the_run(web):
    # Deploying the active release again is molecule's idempotence step (nothing changes,
    # nothing restarts). Here the branch "release" names v2 when the run starts, and
    # moving_branch.yml pushes to it before the second host (serial: 1): both hosts
    # must still get v2, the commit resolved once on the controller.
    git('branch', '-f', 'release', 'v2')
    rc, out = deploy(playbook='moving_branch.yml', app_release_version='release', app_release_env=V2_ENV)
    assert rc == 0, out[-3000:]
    assert commit('release') != commit('v2')
    for host in web:
        assert status(host)['release'] == commit('v2')
        assert status(host)['version'] == '2'
        assert active(host) == commit('v2')


def process_env(host):
    """The environment of the running application."""
    pid = status(host)['pid']
    return dict(v.split('=', 1) for v in host.check_output('tr "\\0" "\\n" < /proc/%s/environ', str(pid)).splitlines() if '=' in v)


def test_rollback_to_the_previous_release(web):
    assert process_env(web[0])['DEMO_NOTE'] == 'v2 settings'
    rc, out = rollback()
    assert rc == 0, out[-3000:]
    for host in web:
        assert status(host)['release'] == commit('v1')
        # The release rolled back from stays on disk.
        assert host.file('%s/%s/RELEASE' % (DEPLOYS, commit('v2'))).exists
        # ...and v1 runs with v1's environment again, not with v2's.
        assert 'DEMO_NOTE' not in host.file('/etc/default/demo').content_string
        assert 'DEMO_NOTE' not in process_env(host)


def test_rollback_to_a_named_release(web):
    rc, out = rollback(app_release_rollback_to=commit('v2')[:10])
    assert rc == 0, out[-3000:]
    for host in web:
        assert status(host)['release'] == commit('v2')
        assert process_env(host)['DEMO_NOTE'] == 'v2 settings'
    assert '(rolled back from %s)' % commit('v1') in out


def test_broken_v3_is_rolled_back_automatically(web):
    web1, web2 = web
    pid = status(web1)['pid']
    rc, out = deploy(serial=1, app_release_version='v3')
    assert rc != 0
    assert ('release %s failed its health check at %s; rolled back to %s, which is healthy'
            % (commit('v3'), HEALTH_URL, commit('v2'))) in flat(out), out[-3000:]
    # ar-web1 runs v2 again (restarted); its v3 stays on disk for a post-mortem.
    assert status(web1)['release'] == commit('v2')
    assert status(web1)['pid'] != pid
    assert active(web1) == commit('v2')
    assert commit('v3') in releases(web1)
    history = web1.file(DEPLOYS + '/history.jsonl').content_string.splitlines()
    assert [json.loads(line)['action'] for line in history[-2:]] == ['activate', 'rollback']
    # With serial: 1 the failure stopped the run before ar-web2.
    assert status(web2)['release'] == commit('v2')
    assert commit('v3') not in releases(web2)
    assert recap_counts(out, 'ar-web1')['failed'] == 1
    assert 'ar-web2 ' not in out.rsplit('PLAY RECAP', maxsplit=1)[-1]


def test_bad_release_id_in_a_rollback_changes_nothing(web):
    before = [(active(h), releases(h)) for h in web]
    for release, message in (('../../etc', 'app_release_rollback_to \'../../etc\' contains a path separator'),
                             ('deadbeef', 'cannot roll back to deadbeef: no such release')):
        rc, out = rollback(app_release_rollback_to=release)
        assert rc != 0
        assert message in flat(out), out[-3000:]
        for name in WEB:
            assert recap_counts(out, name)['changed'] == 0
    assert [(active(h), releases(h)) for h in web] == before


# The rest of what app_release_errors refuses is in tests/unit/plugins/filter/test_app_release.py.
BAD_INPUT = [
    pytest.param({'app_release_version': 'no-such-branch'},
                 ['app_release_version "no-such-branch": no branch, tag or commit no-such-branch in'], id='unknown-ref'),
    pytest.param({'app_release_local_repo': None, 'app_release_repo': 'http://127.0.0.1:9/nope.git'},
                 ['cannot read the repository http://127.0.0.1:9/nope.git from the controller'], id='unreachable-repo'),
    pytest.param({'app_release_keep': 1},
                 ['app_release_keep must be an integer of at least 2'], id='keep-too-small'),
    pytest.param({'app_release_shared_links': [{'path': '../../etc/cron.d/demo', 'target': '/mnt/demo/data'}]},
                 ['app_release_shared_links[0].path \'../../etc/cron.d/demo\' escapes the release with ".."'],
                 id='shared-link-traversal'),
    pytest.param({'app_release_service': '../etc'},
                 ['app_release_service \'../etc\' contains a path separator'], id='service-traversal'),
    pytest.param({'app_release_health_url': None},
                 ['app_release_health_url is required with app_release_runtime=systemd',
                  'set app_release_health_check: false'], id='no-health-gate'),
]


@pytest.mark.parametrize('overrides,messages', BAD_INPUT)
def test_bad_input_fails_before_any_change(web, overrides, messages):
    before = [(active(h), releases(h), status(h)['pid']) for h in web]
    rc, out = deploy(**overrides)
    assert rc != 0
    for message in messages:
        assert message in flat(out), out[-3000:]
    for name in WEB:
        assert recap_counts(out, name)['changed'] == 0, out[-3000:]
    assert [(active(h), releases(h), status(h)['pid']) for h in web] == before


def test_shared_link_through_a_link_in_the_release_is_refused(web):
    # A commit that ships var as a link to /etc: var/log would land in /etc/log.
    git('branch', '-f', 'linked', 'v2')
    blob = subprocess.run(['git', '-C', REPO, 'hash-object', '-w', '--stdin'], input='/etc', text=True,
                          check=True, capture_output=True).stdout.strip()
    tree = subprocess.run(['git', '-C', REPO, 'mktree'], text=True, check=True, capture_output=True,
                          input=git('ls-tree', 'v2') + '\n120000 blob %s\tvar\n' % blob).stdout.strip()
    linked = git('commit-tree', '-p', 'v2', '-m', 'var is a link to /etc', tree)
    git('update-ref', 'refs/heads/linked', linked)
    web1 = web[0]
    before = active(web1)
    rc, out = deploy(app_release_version='linked', deploy_hosts='ar-web1')
    assert rc != 0
    assert 'app_release_shared_links: var/log would be linked outside the release' in flat(out), out[-3000:]
    assert active(web1) == before
    assert not web1.file('/etc/log').exists


def test_git_url_with_a_deploy_key(lab):
    web1, git_server = lab('ar-web1'), lab('ar-git')
    address = git_server.ansible('setup', 'gather_subset=network', check=False)['ansible_facts']['ansible_default_ipv4']['address']
    known_hosts = subprocess.run(['ssh-keyscan', '-T', '5', '-t', 'ed25519', address], capture_output=True, text=True,
                                 check=True).stdout.strip().splitlines()
    with open(os.path.join(LAB_DIR, 'deploy_key')) as handle:
        key = handle.read()
    url = 'ssh://git@%s/srv/git/demo.git' % address
    settings = {
        'deploy_hosts': 'ar-web1', 'app_release_service': 'demo_git', 'app_release_runtime': 'none',
        'app_release_local_repo': None, 'app_release_repo': url, 'app_release_deploy_key': key,
        'app_release_known_hosts': known_hosts, 'app_release_health_url': None, 'app_release_shared_links': [],
    }
    rc, out = deploy(app_release_version='v2', **settings)
    assert rc == 0, out[-3000:]
    assert web1.file(ROOT + '/demo_git').linked_to == '%s/deploys/demo_git/%s' % (ROOT, commit('v2'))
    assert web1.file(ROOT + '/demo_git/RELEASE').content_string == commit('v2') + '\n'
    assert 'BEGIN OPENSSH PRIVATE KEY' not in out
    key_file = web1.file('/root/.ssh/app_release_demo_git/deploy_key')
    assert key_file.mode == 0o600 and key_file.user == 'root'
    history = [json.loads(line) for line in web1.file(ROOT + '/deploys/demo_git/history.jsonl').content_string.splitlines()]
    assert {e.get('source') for e in history if e['action'] == 'present'} == {url}
    # A key the server does not know fails on the controller, before the hosts are touched.
    settings['app_release_deploy_key'] = None
    rc, out = deploy(app_release_version='v1', **settings)
    assert rc != 0
    assert 'cannot read the repository %s from the controller' % url in flat(out), out[-3000:]
    assert web1.file(ROOT + '/demo_git').linked_to.endswith(commit('v2'))


def test_virtualenv_per_release(web1):
    # One web1: building a virtualenv (ensurepip) is the slowest step there is.
    rc, out = deploy(deploy_hosts='ar-web1', app_release_version='v2', app_release_requirements_file='requirements.txt',
                     app_release_command=LINK + '/.venv/bin/python app.py')
    assert rc == 0, out[-3000:]
    assert status(web1)['release'] == commit('v2')
    assert status(web1)['python'] == LINK + '/.venv'
    assert web1.file('%s/%s/.venv/bin/python' % (DEPLOYS, commit('v2'))).exists
