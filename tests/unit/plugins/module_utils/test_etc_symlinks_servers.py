# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""etc_symlinks in the situations of real servers (issue 8): Proxmox's /etc/pve with its
priv/ secrets and pmxcfs links, secret formats, umask, concurrent runs."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fcntl
import os
import stat
import threading
import time

import pytest

from ansible_collections.commons.infra.plugins.module_utils import etc_symlinks as es
from ansible_collections.commons.infra.plugins.module_utils.atomic_link import TMP_PREFIX

from .test_etc_symlinks import Tree, read, t, write  # noqa: F401  pylint: disable=unused-import

NODE = 'pve1'


def pve_node(t):
    """What a Proxmox node shows under /etc/pve: files 0640, priv/ 0700 with 0600 secrets, and
    pmxcfs's own links qemu-server, lxc and local into nodes/<node>/."""
    write(t.d('pve/storage.cfg'), 'dir: local\n\tpath /var/lib/vz\n', mode=0o640)
    write(t.d('pve/datacenter.cfg'), 'keyboard: en-us\n', mode=0o640)
    write(t.d('pve/nodes/%s/qemu-server/100.conf' % NODE), 'memory: 2048\n', mode=0o640)
    write(t.d('pve/nodes/%s/lxc/200.conf' % NODE), 'hostname: ct200\n', mode=0o640)
    for name, content in (('shadow.cfg', 'root:$5$abc$' + 'x' * 43 + ':\n'),
                          ('token.cfg', 'root@pam!ci 0b1f2e3d-aaaa-bbbb-cccc-1234567890ab\n'),
                          ('tfa.cfg', '{"users":{}}\n'),
                          ('authkey.key', 'not pem\n')):
        write(t.d('pve/priv/' + name), content, mode=0o600)
    os.chmod(t.d('pve/priv'), 0o700)
    os.symlink('nodes/%s/qemu-server' % NODE, t.d('pve/qemu-server'))
    os.symlink('nodes/%s/lxc' % NODE, t.d('pve/lxc'))
    os.symlink('nodes/%s' % NODE, t.d('pve/local'))


def captured(t):
    return sorted(os.path.relpath(os.path.join(d, n), t.host) for d, ds, fs in os.walk(t.host) for n in fs)


# -------------------------------------------------------------------- 1: globs, priv/, modes, secrets

def test_a_star_does_not_cross_a_slash(t):
    pve_node(t)
    r = t.run(sources=[t.host], state='capture', copy=[{'path': 'pve/*.cfg', 'private': True}])
    assert captured(t) == ['pve/datacenter.cfg', 'pve/storage.cfg'], r


def test_double_star_recurses_but_never_into_priv(t):
    pve_node(t)
    r = t.run(sources=[t.host], state='capture', copy=[{'path': 'pve/**', 'private': True}])
    assert not [p for p in captured(t) if '/priv/' in p]
    assert 'pve/nodes/%s/qemu-server/100.conf' % NODE in captured(t)
    assert any('priv' in w for w in r['warnings'])
    t2 = t.run(sources=[t.host], state='capture', copy=[{'path': 'pve', 'private': True}])
    assert not [p for p in captured(t) if '/priv/' in p] and t2['changed'] is False


def test_naming_a_file_under_priv_is_refused(t):
    pve_node(t)
    with pytest.raises(es.EtcSymlinksError, match='priv'):
        t.run(sources=[t.host], state='capture', copy=[{'path': 'pve/priv/tfa.cfg', 'private': True}])
    assert captured(t) == []


def test_files_that_are_not_world_readable_need_the_entry_to_say_so(t):
    write(t.d('app/public.conf'), 'public\n', mode=0o644)
    write(t.d('app/secret.conf'), 'db secret\n', mode=0o600)
    write(t.d('app/group.conf'), 'group only\n', mode=0o640)
    r = t.run(sources=[t.host], state='capture', copy=['app/*.conf'])
    assert captured(t) == ['app/public.conf']
    assert sorted(w for w in r['warnings'] if 'world-readable' in w) and 'secret.conf' in ' '.join(r['warnings'])
    t.run(sources=[t.host], state='capture', copy=[{'path': 'app/*.conf', 'private': True}])
    assert captured(t) == ['app/group.conf', 'app/public.conf', 'app/secret.conf']
    # The checkout keeps the live mode: a 0600 file is not readable by everyone there either.
    assert stat.S_IMODE(os.stat(t.h('app/secret.conf')).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(t.h('app/group.conf')).st_mode) == 0o640


def test_copy_and_override_globs_share_one_precedence_rule(t):
    """The most specific entry wins for copies as for conflict overrides, whatever the order."""
    write(t.c('pve/storage.cfg'), 's\n')
    write(t.c('pve/user.cfg'), 'u\n')
    r = t.run(copy=[{'path': 'pve', 'mode': '0640'}, {'path': 'pve/storage.cfg', 'mode': '0600'}])
    assert stat.S_IMODE(os.stat(t.d('pve/storage.cfg')).st_mode) == 0o600, r
    assert stat.S_IMODE(os.stat(t.d('pve/user.cfg')).st_mode) == 0o640


SECRETS = {
    'wireguard': '[Interface]\nPrivateKey = yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=\nListenPort = 51820\n',
    'ceph-keyring': '[client.admin]\n\tkey = AQBvaBFZAAAAABAA9VHgwCgaCSzoZQpP8iYA1g==\n',
    'shadow-sha512': 'root:$6$Ke9z1x0f$' + 'a' * 86 + ':19000:0:99999:7:::\n',
    'shadow-yescrypt': 'alice:$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7:19000::::::\n',
    'htpasswd-apr1': 'admin:$apr1$kM1dgNQy$2VRjQ9o0cYZs8cM0tn0bE1\n',
    'htpasswd-bcrypt': 'admin:$2y$05$' + 'c' * 53 + '\n',
    'htpasswd-sha': 'admin:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n',
    'github-fine-grained': 'token = github_pat_11ABCDEFG0' + 'x' * 72 + '\n',
    'github-app': 'GH=ghs_' + 'Ab1' * 12 + '\n',
    'gitlab-pat': 'gitlab_token: glpat-' + 'aB3_-' * 4 + '\n',
    'gitlab-deploy': 'gldt-' + 'Zz9' * 7 + '\n',
}


@pytest.mark.parametrize('name', sorted(SECRETS))
def test_default_patterns_catch_more_secret_formats(tmp_path, name):
    p = write(str(tmp_path / 'f'), SECRETS[name])
    assert es.find_secret(p, es.compile_secret_patterns(None)) is not None, name


def _der(body):
    return b'\x30\x82' + len(body).to_bytes(2, 'big') + body


BINARY_SECRETS = {
    # PKCS#12 (PFX): version 3 then the authenticated safe.
    'pkcs12': _der(b'\x02\x01\x03\x30\x82\x01\x00\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x01' + b'\x00' * 300),
    # PKCS#8 PrivateKeyInfo, DER: version 0 then the algorithm identifier.
    'pkcs8-der': _der(b'\x02\x01\x00\x30\x0d\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x01\x05\x00' + b'\x04' * 300),
    # PKCS#1 RSAPrivateKey, DER: version 0 then the modulus.
    'rsa-der': _der(b'\x02\x01\x00\x02\x82\x01\x01\x00' + b'\xc3' * 300),
}


@pytest.mark.parametrize('name', sorted(BINARY_SECRETS))
def test_default_patterns_catch_der_and_pkcs12_keys(tmp_path, name):
    p = str(tmp_path / 'key.bin')
    with open(p, 'wb') as f:
        f.write(BINARY_SECRETS[name])
    assert es.find_secret(p, es.compile_secret_patterns(None)) is not None, name


FALSE_POSITIVES = {
    'wireguard-public': '[Peer]\nPublicKey = yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=\n',
    'wireguard-keyfile': 'PrivateKey = /etc/wireguard/private.key\n',
    'ceph-conf-key': '[global]\nkeyring = /etc/pve/priv/$cluster.$name.keyring\nauth key = none\n',
    'shadow-locked': 'root:*:19000:0:99999:7:::\nnobody:!:19000::::::\n',
    'shell-positional': 'echo "$1$2$3"\nprintf "%s" "$6$HOME"\n',
    'nginx-regex-var': 'rewrite ^/(.*)$ /$1$is_args$args last;\n',
    'ldap-password-hash-placeholder': 'userPassword: {SSHA}\n',
    'github-word': 'see github_pat_docs for tokens\n',
    'gitlab-word': 'glpat-token is set in CI\n',
    'der-certificate': '',   # filled in below: a DER certificate is public
}


@pytest.mark.parametrize('name', sorted(FALSE_POSITIVES))
def test_widened_patterns_leave_known_look_alikes_alone(tmp_path, name):
    p = str(tmp_path / 'f')
    with open(p, 'wb') as f:
        if name == 'der-certificate':
            f.write(_der(_der(b'\xa0\x03\x02\x01\x02\x02\x01\x01' + b'\x00' * 200) + b'\x30\x0d' + b'\x00' * 100))
        else:
            f.write(FALSE_POSITIVES[name].encode())
    assert es.find_secret(p, es.compile_secret_patterns(None)) is None, name


# -------------------------------------------------------------------- 2: /etc/pve's own symlinks

def test_capture_follows_pmxcfs_links_as_in_the_module_example(t):
    pve_node(t)
    r = t.run(sources=[t.host], state='capture',
              copy=[{'path': 'pve/storage.cfg', 'private': True}, {'path': 'pve/qemu-server/*.conf', 'private': True}])
    assert captured(t) == ['pve/qemu-server/100.conf', 'pve/storage.cfg'], r
    assert read(t.h('pve/qemu-server/100.conf')) == 'memory: 2048\n'


def test_copies_go_through_pmxcfs_links_which_stay_links(t):
    pve_node(t)
    write(t.h('pve/qemu-server/101.conf'), 'memory: 4096\n')
    r = t.run(sources=[t.host], copy=['pve'])
    assert os.readlink(t.d('pve/qemu-server')) == 'nodes/%s/qemu-server' % NODE
    assert read(t.d('pve/nodes/%s/qemu-server/101.conf' % NODE)) == 'memory: 4096\n'
    assert r['backed_up'] == [] and r['conflicts'] == [] and r['dirs_created'] == []
    assert not os.path.exists(t.backup)
    assert t.run(sources=[t.host], copy=['pve'])['changed'] is False


def test_linking_through_a_symlinked_directory_is_refused_not_replaced(t):
    pve_node(t)
    write(t.h('pve/qemu-server/101.conf'), 'memory: 4096\n')
    before = t.snap()
    with pytest.raises(es.EtcSymlinksError, match='pve/qemu-server is a symlink to a directory'):
        t.run(sources=[t.host])
    assert t.snap() == before


def test_a_symlinked_directory_leading_out_of_dest_is_refused_for_copies(t, tmp_path):
    outside = tmp_path / 'elsewhere'
    outside.mkdir()
    os.symlink(str(outside), t.d('app'))
    write(t.h('app/x.conf'), 'x\n')
    with pytest.raises(es.EtcSymlinksError, match='outside'):
        t.run(sources=[t.host], copy=['app'])
    assert os.listdir(str(outside)) == []


# -------------------------------------------------------------------- 6: umask

@pytest.fixture
def umask_077():
    old = os.umask(0o077)
    yield
    os.umask(old)


def test_umask_does_not_change_copy_or_directory_modes(t, umask_077):
    write(t.c('etc/app/app.conf'), 'v1\n', mode=0o644)
    write(t.c('etc/app/linked.conf'), 'l\n', mode=0o644)
    os.umask(0o022)
    t.run(copy=['etc/app/app.conf'])
    os.umask(0o077)
    write(t.c('etc/app/app.conf'), 'v2\n', mode=0o644)
    write(t.c('etc/new/sub/new.conf'), 'n\n', mode=0o644)
    r = t.run(copy=['etc/app/app.conf'])
    assert stat.S_IMODE(os.stat(t.d('etc/app/app.conf')).st_mode) == 0o644, r
    for d in ('etc/new', 'etc/new/sub'):
        assert stat.S_IMODE(os.stat(t.d(d)).st_mode) == 0o755, d
    write(t.d('pve/x.cfg'), 'live\n', mode=0o644)
    t.run(sources=[t.host], state='capture', copy=['pve/x.cfg'])
    assert stat.S_IMODE(os.stat(t.h('pve')).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(t.h('pve/x.cfg')).st_mode) == 0o644


# -------------------------------------------------------------------- 8: lock, temps, check mode

def test_a_second_run_waits_for_the_first(t):
    write(t.c('motd'))
    holder = os.open(t.dest, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX)
    # The first run's temp file, which the second must not remove while the first runs.
    theirs = t.d('%smotd.0123456789ab' % TMP_PREFIX)
    write(theirs, 'being written')
    done = {}
    worker = threading.Thread(target=lambda: done.setdefault('r', t.run(lock_timeout=30)))
    worker.start()
    time.sleep(0.5)
    assert 'r' not in done and os.path.exists(theirs)
    os.close(holder)            # the first run ends (or is killed): the kernel drops its lock
    worker.join(30)
    assert done['r']['created'] == [t.d('motd')] and done['r']['cleaned'] == [theirs]


def test_lock_timeout_fails_naming_the_lock(t):
    write(t.c('motd'))
    holder = os.open(t.dest, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        with pytest.raises(es.EtcSymlinksError, match='another run holds .*%s' % os.path.basename(t.dest)):
            t.run(lock_timeout=0)
    finally:
        os.close(holder)


def test_temp_named_directory_is_not_reported_cleaned_without_prune(t):
    write(t.c('sub/motd'))
    t.run()
    os.mkdir(t.d('sub/%smotd.0123456789ab' % TMP_PREFIX))
    for dummy in range(2):
        r = t.run(prune=False)
        assert r['changed'] is False and r['cleaned'] == []
        r = t.run()
        assert r['changed'] is False and r['cleaned'] == []


def test_check_mode_reports_the_backup_names_a_real_run_uses(t):
    write(t.c('motd'), 'ours\n')
    write(t.d('motd'), 'theirs\n')
    write(os.path.join(t.backup, 'motd'), 'an older backup\n')
    check = t.run(check_mode=True)
    real = t.run()
    assert check['backups'] == real['backups'] == {t.d('motd'): os.path.join(t.backup, 'motd.1')}
