"""apt_present's decision: what dpkg vouches for, and what goes to apt."""
import json
import os
import subprocess
import sys

import pytest

from ansible_collections.commons.infra.plugins.module_utils.apt_present import missing, parse_query, query_argv, split_spec

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))


def test_plain_names_and_pinned_versions_are_read_the_rest_goes_to_apt():
    assert split_spec('haproxy') == ('haproxy', None)
    assert split_spec('pgbouncer=1.18.0-1') == ('pgbouncer', '1.18.0-1')
    assert split_spec('libpq5=1:15.8-0+deb12u1') == ('libpq5', '1:15.8-0+deb12u1')
    for spec in ('nginx=1.22*', 'libc6:amd64', 'foo>=1.0', './local.deb', 'Upper', ''):
        assert split_spec(spec) is None


def test_query_names_each_package_once_and_only_plain_ones():
    argv = query_argv(['git', 'git=1:2.39.5-0+deb12u1', 'nginx=1.22*'])
    assert argv[:2] == ['dpkg-query', '-W']
    assert argv[-2:] == ['--', 'git']


def test_only_installed_packages_without_an_error_flag_count():
    stdout = '\n'.join([
        'git\tii \t1:2.39.5-0+deb12u1',
        'socat\tun \t',                  # known, not installed
        'haproxy\trc \t2.6.12-1',        # removed, config files left
        'etcd-server\tiU \t3.4.23-4',    # unpacked, not configured
        'patroni\tiiR\t3.0.2-1',         # reinst-required
        'memcached\thi \t1.6.18-1',      # held, installed
        'dpkg-query: no packages found matching nothing',
    ])
    assert parse_query(stdout) == {'git': '1:2.39.5-0+deb12u1', 'memcached': '1.6.18-1'}


def test_missing_keeps_order_and_checks_pinned_versions():
    installed = {'git': '1:2.39.5-0+deb12u1', 'memcached': '1.6.18-1'}
    assert missing(['git', 'memcached'], installed) == []
    assert missing(['socat', 'git', 'haproxy'], installed) == ['socat', 'haproxy']
    assert missing(['memcached=1.6.18-1'], installed) == []
    assert missing(['memcached=1.6.21-1'], installed) == ['memcached=1.6.21-1']
    assert missing(['nginx=1.22*'], {'nginx': '1.22.1-9'}) == ['nginx=1.22*']


def ansible_run(args, check=False):
    pypath = os.path.join(ROOT, '.cache', 'pypath')
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=pypath, ANSIBLE_NOCOLOR='1', ANSIBLE_LOAD_CALLBACK_PLUGINS='1',
               ANSIBLE_STDOUT_CALLBACK='ansible.builtin.json', ANSIBLE_LOCALHOST_WARNING='0')
    bindir = os.path.dirname(sys.executable)
    argv = [os.path.join(bindir, 'ansible'), 'localhost', '-c', 'local', '-m', 'commons.infra.apt_present', '-a', args]
    if check:
        argv.append('--check')
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    assert proc.returncode in (0, 2), proc.stderr
    out = json.loads(proc.stdout)
    return out['plays'][0]['tasks'][0]['hosts']['localhost']


@pytest.mark.skipif(not os.path.exists('/usr/bin/dpkg-query'), reason='needs dpkg (a Debian controller)')
def test_installed_packages_cost_no_apt_run():
    result = ansible_run('name=dpkg,coreutils update_cache=true')
    assert result.get('failed') is not True, result
    assert result['changed'] is False
    assert result['apt_ran'] is False
    assert result['packages_missing'] == []


@pytest.mark.skipif(not os.path.exists('/usr/bin/dpkg-query'), reason='needs dpkg (a Debian controller)')
def test_bad_arguments_fail_naming_them():
    result = ansible_run('name=dpkg bogus=1')
    assert result['failed'] is True
    assert 'bogus' in result['msg']
