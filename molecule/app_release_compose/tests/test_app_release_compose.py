"""app_release with app_release_runtime=compose: docker-compose (v1) run from the active link.

converge.yml deployed v1 of tests/apps/demo_web; its image was built inside ar-compose from
the release (Dockerfile FROM the lab's base image, loaded there in prepare.yml).
"""
import json
import os
import subprocess

import pytest
import yaml

from conftest import SCENARIO_DIR, http_get, recap_counts, run_playbook


PROJECT = os.environ.get('MOLECULE_PROJECT_DIRECTORY', os.path.dirname(os.path.dirname(SCENARIO_DIR)))
REPO = os.path.join(os.environ.get('MOLECULE_EPHEMERAL_DIRECTORY', ''), 'demo-repo')
DEPLOY = os.path.join(PROJECT, 'playbooks', 'deploy.yml')
ROLLBACK = os.path.join(PROJECT, 'playbooks', 'rollback.yml')
LINK = '/opt/openlibrary/demo'
HEALTH_URL = 'http://127.0.0.1:8080/health'


# The lab helper instead of testinfra's parametrized `host`, which lets pytest reorder
# tests; these run in file order.
@pytest.fixture
def host(lab):
    return lab('ar-compose')


with open(os.path.join(SCENARIO_DIR, 'vars', 'demo.yml')) as handle:
    DEMO_VARS = yaml.safe_load(handle)


def commit(ref):
    return subprocess.run(['git', '-C', REPO, 'rev-parse', ref + '^{commit}'], check=True, capture_output=True,
                          text=True).stdout.strip()


def play(playbook, **overrides):
    extra = dict(DEMO_VARS, deploy_hosts='compose')
    extra.update(overrides)
    return run_playbook(playbook, extra_vars=extra)


def status(host):
    code, body = http_get(host, 'http://127.0.0.1:8080/status')
    assert code == 200, body
    return json.loads(body)


def containers(host):
    """Running containers of the compose project "demo": [(name, image id)]."""
    out = host.check_output("docker ps --filter label=com.docker.compose.project=demo --format '{{.Names}} {{.Image}}'")
    return sorted(tuple(line.split()) for line in out.splitlines())


def test_v1_runs_in_a_container_built_from_the_release(host):
    assert status(host)['release'] == commit('v1')
    # MEMCACHED_SERVERS is empty in compose.yaml unless the environment sets it.
    assert status(host)['cache'] == 'unconfigured'
    # One container, of the project named after the service (not after the release directory).
    assert [name for name, _image in containers(host)] == ['demo_web_1']
    assert host.docker('demo_web_1').is_running


def test_compose_ran_from_the_active_link_with_the_environment_files(host):
    labels = json.loads(host.check_output("docker inspect -f '{{json .Config.Labels}}' demo_web_1"))
    assert labels['com.docker.compose.project.config_files'].split(',')[-1].endswith('compose.production.yaml')
    assert labels['com.docker.compose.project.working_dir'].startswith('/opt/openlibrary/deploys/demo/')


def test_deploy_v2_rebuilds_and_recreates(host):
    started = status(host)['started']
    rc, out = play(DEPLOY, app_release_version='v2')
    assert rc == 0, out[-3000:]
    assert status(host)['release'] == commit('v2')
    assert status(host)['version'] == '2'
    assert status(host)['started'] != started
    assert [name for name, _image in containers(host)] == ['demo_web_1']
    assert host.check_output('readlink %s', LINK).endswith(commit('v2'))


def test_deploying_the_active_release_again_restarts_nothing(host):
    started = status(host)['started']
    rc, out = play(DEPLOY, app_release_version='v2')
    assert rc == 0, out[-3000:]
    assert recap_counts(out, 'ar-compose')['changed'] == 0, out[-3000:]
    assert status(host)['started'] == started


def test_broken_v3_is_rolled_back_to_v2(host):
    rc, out = play(DEPLOY, app_release_version='v3')
    assert rc != 0
    assert ('release %s failed its health check at %s; rolled back to %s, which is healthy'
            % (commit('v3'), HEALTH_URL, commit('v2'))) in ' '.join(out.split()), out[-3000:]
    assert status(host)['release'] == commit('v2')


def test_rollback_playbook(host):
    rc, out = play(ROLLBACK, app_release_rollback_to=commit('v1'))
    assert rc == 0, out[-3000:]
    assert status(host)['release'] == commit('v1')
    assert [name for name, _image in containers(host)] == ['demo_web_1']
