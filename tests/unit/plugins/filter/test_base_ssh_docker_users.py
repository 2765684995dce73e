"""base's ssh, Docker and user filters: what the lock-out guard, the Docker reload and group removal decide."""
import base64
import subprocess

import pytest

from ansible_collections.commons.infra.plugins.filter.base_docker import base_docker_packages, base_docker_restart_keys
from ansible_collections.commons.infra.plugins.filter.base_ssh import (
    base_ssh_jump_clients, base_ssh_jump_hosts, base_ssh_key_fingerprints)
from ansible_collections.commons.infra.plugins.filter.base_users import base_group_removals

KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGbM9hkmpjLzbVHoxSGhs8lFiiQAuzTmnb3W5FZyBYjM admin@laptop'


def test_fingerprint_is_what_ssh_keygen_prints(tmp_path):
    path = tmp_path / 'key.pub'
    path.write_text(KEY + '\n')
    try:
        out = subprocess.run(['ssh-keygen', '-l', '-f', str(path)], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip('ssh-keygen is not available')
    assert base_ssh_key_fingerprints([KEY]) == [out.split()[1]]


def test_fingerprint_ignores_options_and_junk():
    with_options = 'from="10.0.0.0/8",no-pty ' + KEY
    assert base_ssh_key_fingerprints([with_options, KEY, 'not a key', '']) == base_ssh_key_fingerprints([KEY])
    assert base_ssh_key_fingerprints(['ssh-rsa ' + base64.b64encode(b'\x00\x00\x00\x07ssh-dss').decode()]) == []


@pytest.mark.parametrize('args,hosts', [
    ('-o ProxyJump=admin@bastion.example.org', ['bastion.example.org']),
    ('-J ops@jump1:2222,jump2', ['jump1', 'jump2']),
    ('-o "ProxyCommand=ssh -W %h:%p -q admin@10.0.0.5"', ['10.0.0.5']),
    ('-oProxyJump=[fd00::1]:22', ['fd00::1']),
    ('-o ProxyJump=none -o StrictHostKeyChecking=no', []),
])
def test_jump_hosts_from_ssh_arguments(args, hosts):
    assert base_ssh_jump_hosts({'ansible_ssh_common_args': args}) == hosts


def test_jump_clients_are_the_hosts_reached_through_this_one():
    hostvars = {
        'ol-www0': {'ansible_host': '203.0.113.10'},
        'ol-web1': {'ansible_ssh_common_args': '-o ProxyJump=ops@ol-www0'},
        'ol-db1': {'ansible_ssh_extra_args': '-J 203.0.113.10'},
        'ol-mem0': {},
    }
    hosts = list(hostvars)
    assert base_ssh_jump_clients(['ol-www0', '203.0.113.10'], hostvars, hosts) == ['ol-web1', 'ol-db1']
    assert base_ssh_jump_clients(['ol-mem0', ''], hostvars, hosts) == []


def test_only_keys_reload_cannot_apply_need_a_restart():
    old = {'live-restore': True, 'log-driver': 'json-file', 'log-opts': {'max-size': '10m'}}
    assert base_docker_restart_keys(old, dict(old, debug=True, **{'live-restore': False})) == []
    assert base_docker_restart_keys(old, dict(old, **{'log-opts': {'max-size': '20m'}})) == ['log-opts']
    assert base_docker_restart_keys(None, {'data-root': '/srv/docker', 'debug': True}) == ['data-root']
    assert base_docker_restart_keys(old, {}) == ['log-driver', 'log-opts']


def test_docker_io_never_replaces_docker_ce():
    wanted = ['docker.io', 'apparmor', 'docker-compose', 'git']
    assert base_docker_packages(wanted, []) == wanted
    assert base_docker_packages(wanted, ['docker-ce', 'docker-compose-plugin']) == ['apparmor', 'git']
    assert base_docker_packages(['docker.io=20.10.24+dfsg1-1+deb12u1'], ['docker-ce']) == []


def test_group_removals_follow_the_record():
    record = {'alice': ['ops', 'openlibrary'], 'bob': ['ops'], 'carol': ['ops']}
    admins = [{'name': 'alice', 'groups': ['ops'], 'state': 'present'},
              {'name': 'carol', 'groups': ['ops'], 'state': 'absent'}]
    members = {'ops': ['alice', 'bob', 'carol', 'dave'], 'openlibrary': ['alice']}
    assert base_group_removals(record, admins, members) == [
        {'user': 'alice', 'group': 'openlibrary'}, {'user': 'bob', 'group': 'ops'}, {'user': 'carol', 'group': 'ops'}]
    # dave was never given ops by the role; nothing recorded (a first run) removes nothing
    assert base_group_removals(None, admins, members) == []
    # a membership already gone is not removed twice
    assert base_group_removals({'bob': ['ops']}, [], {'ops': []}) == []
