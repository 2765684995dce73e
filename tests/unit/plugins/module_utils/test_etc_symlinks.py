# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""etc_symlinks planning and applying, on real temporary trees and git repositories."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import os
import stat
import subprocess

import pytest

from ansible_collections.commons.infra.plugins.module_utils import etc_symlinks as es
from ansible_collections.commons.infra.plugins.module_utils.atomic_link import TMP_PREFIX

FAKE_KEY = '-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\n'


# ---------------------------------------------------------------- helpers

def write(path, content='x\n', mode=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(content)
    if mode is not None:
        os.chmod(path, mode)
    return path


def read(path):
    with open(path) as f:
        return f.read()


def snapshot(*roots):
    """Every entry under roots: type, link target, content hash, mode, owner. Detects any change."""
    snap = {}
    for root in roots:
        if not os.path.lexists(root):
            snap[root] = None
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                p = os.path.join(dirpath, name)
                st = os.lstat(p)
                if stat.S_ISLNK(st.st_mode):
                    snap[p] = ('link', os.readlink(p))
                elif stat.S_ISDIR(st.st_mode):
                    snap[p] = ('dir', stat.S_IMODE(st.st_mode))
                else:
                    with open(p, 'rb') as f:
                        digest = hashlib.sha1(f.read()).hexdigest()
                    snap[p] = ('file', digest, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
    return snap


class Tree(object):
    """A lab: base/{common,host} layers, base/etc as dest, base/backup."""

    def __init__(self, base):
        self.base = str(base)
        self.common = os.path.join(self.base, 'repo', 'confs', 'common')
        self.host = os.path.join(self.base, 'repo', 'confs', 'host')
        self.dest = os.path.join(self.base, 'etc')
        self.backup = os.path.join(self.base, 'backup')
        for d in (self.common, self.host, self.dest):
            os.makedirs(d)

    def d(self, rel):
        return os.path.join(self.dest, rel)

    def c(self, rel):
        return os.path.join(self.common, rel)

    def h(self, rel):
        return os.path.join(self.host, rel)

    def opts(self, **kw):
        kw.setdefault('sources', [self.common, self.host])
        kw.setdefault('dest', self.dest)
        kw.setdefault('backup_dir', self.backup)
        return es.Options(**kw)

    def run(self, check_mode=False, diff=False, **kw):
        return es.run(self.opts(**kw), check_mode=check_mode, diff=diff)

    def snap(self):
        return snapshot(os.path.join(self.base, 'repo'), self.dest, self.backup)


@pytest.fixture
def t(tmp_path):
    return Tree(tmp_path)


# ---------------------------------------------------------------- linking

def test_links_every_file_recursively_into_real_directories(t):
    write(t.c('nginx/nginx.conf'))
    write(t.c('nginx/sites-enabled/off.conf'))
    write(t.c('motd'))
    r = t.run()
    assert r['changed'] is True
    assert r['created'] == sorted([t.d('motd'), t.d('nginx/nginx.conf'), t.d('nginx/sites-enabled/off.conf')])
    assert r['changed_paths'] == r['created']
    assert r['dirs_created'] == [t.d('nginx'), t.d('nginx/sites-enabled')]
    for rel in ('nginx/nginx.conf', 'nginx/sites-enabled/off.conf', 'motd'):
        assert os.readlink(t.d(rel)) == t.c(rel)
    for rel in ('nginx', 'nginx/sites-enabled'):
        assert os.path.isdir(t.d(rel)) and not os.path.islink(t.d(rel))
    assert r['updated'] == r['removed'] == r['conflicts'] == r['backed_up'] == r['copied'] == []
    assert not os.path.exists(t.backup)


def test_second_run_changes_nothing(t):
    write(t.c('a/b.conf'))
    write(t.h('c.conf'))
    write(t.h('pve/storage.cfg'))
    t.run(copy=['pve'])
    before = t.snap()
    r = t.run(copy=['pve'])
    assert r['changed'] is False
    assert r['changed_paths'] == []
    assert r['kept'] == sorted([t.d('a/b.conf'), t.d('c.conf'), t.d('pve/storage.cfg')])
    assert t.snap() == before


def test_later_layer_wins_and_reordering_switches_links(t):
    write(t.c('nginx.conf'), 'common\n')
    write(t.h('nginx.conf'), 'host\n')
    write(t.c('only-common'))
    r = t.run()
    assert os.readlink(t.d('nginx.conf')) == t.h('nginx.conf')
    assert read(t.d('nginx.conf')) == 'host\n'
    assert os.readlink(t.d('only-common')) == t.c('only-common')
    r = t.run(sources=[t.host, t.common])
    assert r['updated'] == [t.d('nginx.conf')]
    assert r['changed_paths'] == [t.d('nginx.conf')]
    assert r['conflicts'] == []
    assert os.readlink(t.d('nginx.conf')) == t.c('nginx.conf')


def test_file_in_one_layer_directory_in_another_is_refused(t):
    write(t.c('nginx'))
    write(t.h('nginx/nginx.conf'))
    before = t.snap()
    with pytest.raises(es.EtcSymlinksError, match='nginx is a file in layer .* but a directory in another layer'):
        t.run()
    assert t.snap() == before


# ---------------------------------------------------------------- conflicts

def test_conflict_backup_regular_file_is_kept_mirroring_the_path(t):
    write(t.c('ssh/sshd_config'), 'managed\n')
    write(t.d('ssh/sshd_config'), 'hand made\n', mode=0o600)
    r = t.run()
    assert r['conflicts'] == [t.d('ssh/sshd_config')]
    assert r['backed_up'] == [t.d('ssh/sshd_config')]
    assert r['updated'] == [t.d('ssh/sshd_config')]
    assert r['backup_dir'] == t.backup
    bk = os.path.join(t.backup, 'ssh/sshd_config')
    assert r['backups'] == {t.d('ssh/sshd_config'): bk}
    assert read(bk) == 'hand made\n'
    assert stat.S_IMODE(os.stat(bk).st_mode) == 0o600
    assert os.readlink(t.d('ssh/sshd_config')) == t.c('ssh/sshd_config')
    assert stat.S_IMODE(os.stat(t.backup).st_mode) == 0o700


def test_conflict_backup_foreign_link_keeps_the_link_itself(t):
    write(t.c('resolv.conf'))
    os.symlink('/run/systemd/resolve/stub-resolv.conf', t.d('resolv.conf'))
    r = t.run()
    assert r['backed_up'] == [t.d('resolv.conf')]
    assert os.readlink(os.path.join(t.backup, 'resolv.conf')) == '/run/systemd/resolve/stub-resolv.conf'
    assert os.readlink(t.d('resolv.conf')) == t.c('resolv.conf')


def test_conflict_backup_never_overwrites_an_older_backup(t):
    write(t.c('motd'))
    write(t.d('motd'), 'one\n')
    write(os.path.join(t.backup, 'motd'), 'older\n')
    r = t.run()
    assert r['backups'] == {t.d('motd'): os.path.join(t.backup, 'motd.1')}
    assert read(os.path.join(t.backup, 'motd')) == 'older\n'
    assert read(os.path.join(t.backup, 'motd.1')) == 'one\n'


def test_conflict_replace_discards_the_existing_file(t):
    write(t.c('motd'), 'managed\n')
    write(t.d('motd'), 'old\n')
    r = t.run(conflict='replace')
    assert r['conflicts'] == [t.d('motd')]
    assert r['backed_up'] == []
    assert r['changed_paths'] == [t.d('motd')]
    assert os.readlink(t.d('motd')) == t.c('motd')
    assert not os.path.exists(t.backup)


def test_conflict_error_fails_before_any_change(t):
    write(t.c('a-new-file'))
    write(t.c('motd'))
    write(t.c('z/also-new'))
    write(t.d('motd'), 'old\n')
    os.symlink('/elsewhere', t.d('hosts'))
    write(t.c('hosts'))
    before = t.snap()
    with pytest.raises(es.EtcSymlinksError) as e:
        t.run(conflict='error')
    assert t.d('motd') in str(e.value) and t.d('hosts') in str(e.value)
    assert 'nothing was changed' in str(e.value)
    assert len(e.value.errors) == 2
    assert t.snap() == before


def test_conflict_overrides_pick_the_most_specific_mode(t):
    for rel in ('ssh/sshd_config', 'ssh/ssh_config', 'nginx/nginx.conf', 'motd'):
        write(t.c(rel), 'managed\n')
        write(t.d(rel), 'local\n')
    overrides = {'ssh/*': 'replace', 'ssh/sshd_config': 'backup', t.d('nginx'): 'replace', 'motd': 'backup'}
    r = t.run(conflict='error', conflict_overrides=overrides)
    assert r['conflicts'] == sorted(t.d(p) for p in ('ssh/sshd_config', 'ssh/ssh_config', 'nginx/nginx.conf', 'motd'))
    assert r['backed_up'] == [t.d('motd'), t.d('ssh/sshd_config')]
    for rel in ('ssh/sshd_config', 'ssh/ssh_config', 'nginx/nginx.conf', 'motd'):
        assert os.readlink(t.d(rel)) == t.c(rel)


def test_conflict_override_error_protects_one_path(t):
    write(t.c('motd'))
    write(t.c('ssh/sshd_config'))
    write(t.d('motd'), 'local\n')
    write(t.d('ssh/sshd_config'), 'local\n')
    before = t.snap()
    with pytest.raises(es.EtcSymlinksError) as e:
        t.run(conflict_overrides={'ssh': 'error'})
    assert e.value.errors == ['conflict: %s is a regular file (6 bytes, mode 0644), not a link into the sources '
                              '(conflict mode error)' % t.d('ssh/sshd_config')]
    assert t.snap() == before


def test_bad_override_mode_is_refused(t):
    write(t.c('motd'))
    with pytest.raises(es.EtcSymlinksError, match=r"conflict_overrides\['motd'\] must be one of backup, error, replace"):
        t.run(conflict_overrides={'motd': 'clobber'})
    assert not os.path.lexists(t.d('motd'))


def test_existing_directory_is_never_replaced(t):
    write(t.c('cron.d'))
    os.makedirs(t.d('cron.d'))
    before = t.snap()
    with pytest.raises(es.EtcSymlinksError, match='cron.d is a directory, cannot link'):
        t.run(conflict='replace')
    assert t.snap() == before


def test_non_directory_in_the_way_of_a_directory(t):
    write(t.c('nginx/nginx.conf'))
    write(t.d('nginx'), 'a file\n')
    with pytest.raises(es.EtcSymlinksError, match='is a regular file .* where a directory is needed'):
        t.run(conflict='error')
    assert read(t.d('nginx')) == 'a file\n'
    r = t.run()
    assert r['conflicts'] == [t.d('nginx')]
    assert r['backed_up'] == [t.d('nginx')]
    assert r['changed_paths'] == [t.d('nginx'), t.d('nginx/nginx.conf')]
    assert read(os.path.join(t.backup, 'nginx')) == 'a file\n'
    assert os.path.isdir(t.d('nginx')) and not os.path.islink(t.d('nginx'))
    assert os.readlink(t.d('nginx/nginx.conf')) == t.c('nginx/nginx.conf')


def test_parent_link_is_not_followed(t):
    # An old whole-directory link into the checkout: writing through it would write into the repo.
    write(t.c('nginx/nginx.conf'))
    os.symlink(t.c('nginx'), t.d('nginx'))
    r = t.run(conflict='replace')
    assert r['conflicts'] == [t.d('nginx')]
    assert os.path.isdir(t.d('nginx')) and not os.path.islink(t.d('nginx'))
    assert os.readlink(t.d('nginx/nginx.conf')) == t.c('nginx/nginx.conf')
    assert sorted(os.listdir(t.c('nginx'))) == ['nginx.conf']


# ---------------------------------------------------------------- prune

def test_prune_removes_only_links_into_sources_whose_source_is_gone(t):
    for rel in ('keep.conf', 'gone.conf', 'sub/gone2.conf'):
        write(t.c(rel))
    t.run()
    os.unlink(t.c('gone.conf'))
    os.unlink(t.c('sub/gone2.conf'))
    os.symlink('/nonexistent/foreign', t.d('foreign-dangling'))
    os.symlink('/etc/hostname', t.d('foreign'))
    write(t.d('regular'), 'mine\n')
    # A hand-made link into the checkout whose target still exists: not ours to remove.
    os.symlink(t.c('keep.conf'), t.d('alias.conf'))
    # Dangling relative link that does not resolve into the sources.
    os.symlink('../nowhere', t.d('relative-dangling'))
    r = t.run()
    assert r['removed'] == [t.d('gone.conf'), t.d('sub/gone2.conf')]
    assert r['changed_paths'] == r['removed']
    assert not os.path.lexists(t.d('gone.conf')) and not os.path.lexists(t.d('sub/gone2.conf'))
    assert os.path.isdir(t.d('sub'))  # directories are never removed
    assert os.readlink(t.d('foreign-dangling')) == '/nonexistent/foreign'
    assert os.readlink(t.d('foreign')) == '/etc/hostname'
    assert os.readlink(t.d('alias.conf')) == t.c('keep.conf')
    assert os.readlink(t.d('relative-dangling')) == '../nowhere'
    assert read(t.d('regular')) == 'mine\n'


def test_prune_off_keeps_stale_links(t):
    write(t.c('gone.conf'))
    t.run()
    os.unlink(t.c('gone.conf'))
    r = t.run(prune=False)
    assert r['changed'] is False
    assert os.path.islink(t.d('gone.conf'))


def test_prune_recognises_relative_links_into_a_source(t):
    write(t.c('x'))
    os.symlink(os.path.relpath(t.c('gone'), t.dest), t.d('gone'))
    r = t.run()
    assert r['removed'] == [t.d('gone')]


# ---------------------------------------------------------------- copy and capture

def test_copy_applies_owner_group_mode_and_is_idempotent(t):
    uid, gid = os.getuid(), os.getgid()
    write(t.c('pve/storage.cfg'), 'dir: local\n')
    write(t.c('pve/qemu-server/100.conf'), 'memory: 2048\n')
    write(t.c('default/pve-ha'), 'x\n')
    write(t.c('linked.conf'))
    copy = ['pve', {'path': 'default/pve-ha', 'owner': str(uid), 'group': gid, 'mode': '0640'}]
    r = t.run(copy=copy)
    assert r['copied'] == sorted([t.d('pve/storage.cfg'), t.d('pve/qemu-server/100.conf'), t.d('default/pve-ha')])
    assert r['created'] == [t.d('linked.conf')]
    assert sorted(r['changed_paths']) == sorted(r['copied'] + r['created'])
    for rel in ('pve/storage.cfg', 'pve/qemu-server/100.conf', 'default/pve-ha'):
        assert not os.path.islink(t.d(rel)) and read(t.d(rel)) == read(t.c(rel))
    st = os.stat(t.d('default/pve-ha'))
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (uid, gid, 0o640)
    r = t.run(copy=copy)
    assert r['changed'] is False and len(r['kept']) == 4
    # Metadata drift alone is repaired without rewriting or backing up.
    os.chmod(t.d('default/pve-ha'), 0o666)
    r = t.run(copy=copy)
    assert r['copied'] == [t.d('default/pve-ha')] and r['backed_up'] == []
    assert stat.S_IMODE(os.stat(t.d('default/pve-ha')).st_mode) == 0o640


def test_copy_accepts_user_and_group_names(t):
    import grp
    import pwd
    write(t.c('f'))
    user = pwd.getpwuid(os.getuid()).pw_name
    group = grp.getgrgid(os.getgid()).gr_name
    r = t.run(copy=[{'path': 'f', 'owner': user, 'group': group, 'mode': 0o600}])
    st = os.stat(t.d('f'))
    assert r['copied'] == [t.d('f')]
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (os.getuid(), os.getgid(), 0o600)


@pytest.mark.parametrize('entry,message', [
    ({'path': 'f', 'owner': 'no-such-user-xyz'}, "unknown user 'no-such-user-xyz'"),
    ({'path': 'f', 'group': 'no-such-group-xyz'}, "unknown group 'no-such-group-xyz'"),
    ({'path': 'f', 'mode': 'u+rw'}, 'must be an octal string'),
    ({'path': '/etc/f'}, 'must be relative'),
    ({'path': '../f'}, 'must be relative'),
    ({'path': 'f', 'colour': 'red'}, 'unknown keys colour'),
    ({'owner': 'root'}, 'needs a path'),
])
def test_bad_copy_entries_are_refused(t, entry, message):
    write(t.c('f'))
    with pytest.raises(es.EtcSymlinksError, match=message):
        t.run(copy=[entry])
    assert not os.path.lexists(t.d('f'))


def test_modified_copy_is_overwritten_and_backed_up_unless_replace(t):
    write(t.c('pve/storage.cfg'), 'v1\n')
    t.run(copy=['pve'])
    write(t.d('pve/storage.cfg'), 'edited in the GUI\n')
    r = t.run(copy=['pve'])
    assert r['copied'] == [t.d('pve/storage.cfg')]
    assert r['conflicts'] == []
    assert r['backed_up'] == [t.d('pve/storage.cfg')]
    assert read(os.path.join(t.backup, 'pve/storage.cfg')) == 'edited in the GUI\n'
    assert read(t.d('pve/storage.cfg')) == 'v1\n'
    write(t.d('pve/storage.cfg'), 'edited again\n')
    r = t.run(copy=['pve'], conflict_overrides={'pve': 'replace'})
    assert r['copied'] == [t.d('pve/storage.cfg')] and r['backed_up'] == []
    assert read(t.d('pve/storage.cfg')) == 'v1\n'


def test_a_link_becoming_a_copy_is_replaced_in_place(t):
    write(t.c('pve/storage.cfg'), 'v1\n')
    t.run()
    assert os.path.islink(t.d('pve/storage.cfg'))
    r = t.run(copy=['pve/*.cfg'])
    assert r['copied'] == [t.d('pve/storage.cfg')]
    assert r['conflicts'] == [] and r['backed_up'] == []
    assert not os.path.islink(t.d('pve/storage.cfg'))
    # And back: a copy of ours is a regular file, so turning it into a link again is a (backed up) conflict.
    r = t.run()
    assert r['conflicts'] == [t.d('pve/storage.cfg')]
    assert os.readlink(t.d('pve/storage.cfg')) == t.c('pve/storage.cfg')


def test_foreign_entry_at_a_copy_path_is_a_conflict(t):
    write(t.c('pve/storage.cfg'), 'managed\n')
    os.makedirs(t.d('pve'))
    os.symlink('/srv/elsewhere.cfg', t.d('pve/storage.cfg'))
    before = t.snap()
    with pytest.raises(es.EtcSymlinksError, match='is a link -> /srv/elsewhere.cfg, not a managed copy'):
        t.run(copy=['pve'], conflict='error')
    assert t.snap() == before
    r = t.run(copy=['pve'])
    assert r['conflicts'] == r['backed_up'] == r['copied'] == [t.d('pve/storage.cfg')]
    assert os.readlink(os.path.join(t.backup, 'pve/storage.cfg')) == '/srv/elsewhere.cfg'
    assert not os.path.islink(t.d('pve/storage.cfg')) and read(t.d('pve/storage.cfg')) == 'managed\n'


def test_capture_writes_live_files_into_the_highest_layer_holding_them(t):
    write(t.c('pve/storage.cfg'), 'common\n')
    write(t.c('pve/user.cfg'), 'users\n', mode=0o600)
    write(t.h('pve/user.cfg'), 'host users\n', mode=0o640)
    write(t.c('pve/datacenter.cfg'), 'same\n')
    copy = ['pve/*.cfg', 'pve/qemu-server/*.conf']
    t.run(copy=copy)
    write(t.d('pve/storage.cfg'), 'common edited live\n')
    write(t.d('pve/user.cfg'), 'host users edited\n')
    write(t.d('pve/qemu-server/101.conf'), 'new vm\n')  # in no layer yet: goes to the last layer
    write(t.d('pve/notes.txt'), 'not a copy path\n')
    r = t.run(copy=copy, state='capture')
    assert r['changed'] is True
    assert r['captured'] == sorted([t.d('pve/storage.cfg'), t.d('pve/user.cfg'), t.d('pve/qemu-server/101.conf')])
    assert r['captured_sources'] == sorted([t.c('pve/storage.cfg'), t.h('pve/user.cfg'),
                                            t.h('pve/qemu-server/101.conf')])
    assert r['kept'] == [t.d('pve/datacenter.cfg')]
    assert r['changed_paths'] == []  # nothing under dest changed
    assert read(t.c('pve/storage.cfg')) == 'common edited live\n'
    assert read(t.h('pve/user.cfg')) == 'host users edited\n'
    assert read(t.c('pve/user.cfg')) == 'users\n'
    # The checkout file takes the live mode (issue 8): a host's private file stays private there.
    assert stat.S_IMODE(os.stat(t.h('pve/user.cfg')).st_mode) == stat.S_IMODE(os.stat(t.d('pve/user.cfg')).st_mode)
    assert read(t.h('pve/qemu-server/101.conf')) == 'new vm\n'
    assert not os.path.exists(t.c('pve/notes.txt')) and not os.path.exists(t.h('pve/notes.txt'))
    # Captured, so linking again changes nothing, and capturing again neither.
    assert t.run(copy=copy)['changed'] is False
    assert t.run(copy=copy, state='capture')['changed'] is False


def test_capture_check_mode_and_diff_touch_nothing(t):
    write(t.c('pve/storage.cfg'), 'old\n')
    t.run(copy=['pve'])
    write(t.d('pve/storage.cfg'), 'new\n')
    before = t.snap()
    r = t.run(copy=['pve'], state='capture', check_mode=True, diff=True)
    assert r['changed'] is True and r['captured'] == [t.d('pve/storage.cfg')]
    assert r['diff'] == [{'before_header': t.c('pve/storage.cfg'),
                          'after_header': '%s (from %s)' % (t.c('pve/storage.cfg'), t.d('pve/storage.cfg')),
                          'before': 'old\n', 'after': 'new\n'}]
    assert t.snap() == before


def test_capture_refuses_secrets_and_changes_nothing(t):
    write(t.c('pve/storage.cfg'), 'old\n')
    write(t.c('pve/other.cfg'), 'old\n')
    t.run(copy=['pve'])
    write(t.d('pve/other.cfg'), 'changed, would be captured\n')
    write(t.d('pve/ssl/authkey.key'), FAKE_KEY)
    before = t.snap()
    with pytest.raises(es.EtcSymlinksError) as e:
        t.run(copy=['pve'], state='capture')
    assert e.value.errors == ['refusing to capture %s into %s: its content matches the secret pattern %r'
                              % (t.d('pve/ssl/authkey.key'), t.h('pve/ssl/authkey.key'),
                                 es.DEFAULT_SECRET_PATTERNS[0])]
    assert t.snap() == before


def test_capture_needs_copy_paths_and_warns_on_missing_live_files(t):
    with pytest.raises(es.EtcSymlinksError, match='state=capture needs the copy paths'):
        t.run(state='capture')
    r = t.run(state='capture', copy=['pve/storage.cfg'])
    assert r['changed'] is False
    assert r['warnings'] == ['capture: %s is absent, nothing to capture' % t.d('pve/storage.cfg')]


def test_capture_never_writes_through_a_link_in_the_checkout(t, tmp_path):
    outside = tmp_path / 'outside'
    outside.mkdir()
    os.symlink(str(outside), t.h('pve'))
    write(t.d('pve/storage.cfg'), 'live\n')
    with pytest.raises(es.EtcSymlinksError, match='in the layer is not a directory'):
        t.run(sources=[t.host], copy=['pve'], state='capture')
    assert list(outside.iterdir()) == []


# ---------------------------------------------------------------- secrets

def test_secret_is_refused_naming_the_file_and_nothing_changes(t):
    write(t.c('motd'))
    write(t.c('ssl/private/site.key'), FAKE_KEY)
    write(t.d('existing'), 'x')
    before = t.snap()
    with pytest.raises(es.EtcSymlinksError) as e:
        t.run()
    assert e.value.errors == ['refusing to link %s: its content matches the secret pattern %r'
                              % (t.c('ssl/private/site.key'), es.DEFAULT_SECRET_PATTERNS[0])]
    assert t.c('ssl/private/site.key') in str(e.value)
    assert t.snap() == before
    # Custom patterns replace the defaults; [] disables scanning.
    with pytest.raises(es.EtcSymlinksError, match='refusing to link .*motd'):
        t.run(secret_patterns=[r'^x$'])
    assert t.snap() == before
    r = t.run(secret_patterns=[])
    assert t.d('ssl/private/site.key') in r['created']


def test_secret_in_a_copy_path_is_refused(t):
    write(t.c('pve/priv/authkey.key'), FAKE_KEY)
    with pytest.raises(es.EtcSymlinksError, match='refusing to copy .*authkey.key'):
        t.run(copy=['pve'])
    assert os.listdir(t.dest) == []


def test_invalid_secret_pattern_is_refused(t):
    with pytest.raises(es.EtcSymlinksError, match="secret pattern '\\(' is not a valid regular expression"):
        t.run(secret_patterns=['('])


@pytest.mark.parametrize('content', [
    FAKE_KEY,
    '-----BEGIN PRIVATE KEY-----\nabc\n',
    '-----BEGIN EC PRIVATE KEY-----\n',
    '-----BEGIN OPENSSH PRIVATE KEY-----\n',
    '-----BEGIN ENCRYPTED PRIVATE KEY-----\n',
    '-----BEGIN PGP PRIVATE KEY BLOCK-----\n',
    'PuTTY-User-Key-File-3: ssh-ed25519\n',
    'aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n',
    'aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n',
    'AWS_SECRET_ACCESS_KEY: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"\n',
    'token: ghp_' + 'a1B2' * 9 + '\n',
    'slack = xoxb-1234567890-abcdefghij\n',
])
def test_default_patterns_catch_secrets(tmp_path, content):
    p = write(str(tmp_path / 'f'), content)
    assert es.find_secret(p, es.compile_secret_patterns(None)) is not None


@pytest.mark.parametrize('content', [
    'password = changeme\n',
    'ssl_certificate_key /etc/ssl/private/site.key;\n',
    '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
    '-----BEGIN PUBLIC KEY-----\n',
    'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO private key of nobody\n',
    '# put your PRIVATE KEY in /etc/ssl/private\n',
    'aws_secret_access_key = {{ vault_aws_secret }}\n',
    'server_name AKIAshort.example.org;\n',
    'x' * 100000,
])
def test_default_patterns_leave_ordinary_configs_alone(tmp_path, content):
    p = write(str(tmp_path / 'f'), content)
    assert es.find_secret(p, es.compile_secret_patterns(None)) is None


# ---------------------------------------------------------------- source safety and excludes

def test_source_symlink_escaping_its_layer_is_refused(t, tmp_path):
    secret_dir = tmp_path / 'outside'
    secret_dir.mkdir()
    (secret_dir / 'shadow').write_text('root:x\n')
    write(t.c('motd'))
    os.symlink(str(secret_dir / 'shadow'), t.c('shadow'))
    os.symlink('../../../outside', t.c('escape-dir'))
    before = t.snap()
    with pytest.raises(es.EtcSymlinksError) as e:
        t.run()
    assert sorted(e.value.errors) == sorted([
        'source %s is a symlink to %s, outside its layer %s; refusing to follow it'
        % (t.c('shadow'), secret_dir / 'shadow', t.common),
        'source %s is a symlink to %s, outside its layer %s; refusing to follow it'
        % (t.c('escape-dir'), secret_dir, t.common),
    ])
    assert t.snap() == before


def test_symlink_to_another_layer_is_also_an_escape(t):
    write(t.h('real.conf'))
    os.symlink(t.h('real.conf'), t.c('alias.conf'))
    with pytest.raises(es.EtcSymlinksError, match='outside its layer'):
        t.run()


def test_source_symlink_inside_its_layer_is_linked_as_is(t):
    write(t.c('nginx/sites-available/off.conf'))
    os.makedirs(t.c('nginx/sites-enabled'))
    os.symlink('../sites-available/off.conf', t.c('nginx/sites-enabled/off.conf'))
    os.symlink('.git/config', t.c('gitconfig'))
    write(t.c('.git/config'))
    with pytest.raises(es.EtcSymlinksError, match='is a symlink to the excluded path'):
        t.run()
    os.unlink(t.c('gitconfig'))
    r = t.run()
    assert os.readlink(t.d('nginx/sites-enabled/off.conf')) == t.c('nginx/sites-enabled/off.conf')
    assert os.path.isfile(t.d('nginx/sites-enabled/off.conf'))
    assert t.d('.git/config') not in r['created']


def test_directory_symlink_inside_a_layer_is_one_entry(t):
    write(t.c('php/8.2/fpm/php.ini'))
    os.symlink('8.2', t.c('php/current'))
    r = t.run()
    assert sorted(r['created']) == [t.d('php/8.2/fpm/php.ini'), t.d('php/current')]
    assert os.readlink(t.d('php/current')) == t.c('php/current')
    assert os.path.isfile(t.d('php/current/fpm/php.ini'))
    os.symlink('.', t.c('root-link'))
    with pytest.raises(es.EtcSymlinksError, match='root-link is a symlink to its own layer root'):
        t.run()


def test_excludes(t):
    write(t.c('.git/HEAD'))
    write(t.c('.gitignore'))
    write(t.c('README.md'))
    write(t.c('nginx/.nginx.conf.swp'))
    write(t.c('nginx/nginx.conf'))
    write(t.c('nginx/local/override.conf'))
    write(t.c('sub/.git'))  # a worktree's .git file
    r = t.run()
    assert r['created'] == [t.d('nginx/local/override.conf'), t.d('nginx/nginx.conf')]
    # A user list replaces the defaults, but .git is always skipped; globs with / match the relative path.
    r = t.run(exclude=['nginx/local'], prune=False)
    assert sorted(r['created']) == sorted([t.d('.gitignore'), t.d('README.md'), t.d('nginx/.nginx.conf.swp')])
    assert not os.path.lexists(t.d('.git'))


def test_stale_temps_are_cleaned_and_never_linked(t):
    write(t.c('motd'))
    write(t.c('sub/%sjunk.abc' % TMP_PREFIX))  # a temp-looking name in the checkout is not content
    os.makedirs(t.d('sub'))
    stale_link = t.d('sub/%smotd.0123456789ab' % TMP_PREFIX)
    stale_file = t.d('%sstorage.cfg.0123456789ab' % TMP_PREFIX)
    os.symlink(t.c('motd'), stale_link)
    write(stale_file, 'half written')
    r = t.run()
    assert r['cleaned'] == sorted([stale_file, stale_link])
    assert r['created'] == [t.d('motd')]
    assert not os.path.lexists(stale_link) and not os.path.lexists(stale_file)
    assert r['removed'] == []
    assert sorted(os.listdir(t.d('sub'))) == []


def test_stale_temps_are_cleaned_without_prune(t):
    write(t.c('sub/motd'))
    t.run()
    stale = t.d('sub/%smotd.0123456789ab' % TMP_PREFIX)
    os.symlink(t.c('sub/motd'), stale)
    r = t.run(prune=False)
    assert r['cleaned'] == [stale] and r['changed'] is True and r['changed_paths'] == []
    assert not os.path.lexists(stale)


# ---------------------------------------------------------------- check and diff

def test_check_mode_changes_nothing_and_reports_the_real_plan(t):
    write(t.c('new.conf'))
    write(t.c('motd'))
    write(t.c('moved'))
    write(t.c('gone'))
    write(t.c('pve/storage.cfg'))
    t.run()
    os.unlink(t.c('gone'))
    os.unlink(t.d('new.conf'))
    write(t.d('new.conf'), 'local\n')
    os.unlink(t.d('motd'))
    before = t.snap()
    checked = t.run(check_mode=True, copy=['pve'])
    assert t.snap() == before
    assert checked['changed'] is True
    assert checked['backups'] == {t.d('new.conf'): os.path.join(t.backup, 'new.conf')}
    real = t.run(copy=['pve'])
    assert checked == real
    assert real['created'] == [t.d('motd')]
    assert real['updated'] == [t.d('new.conf')]
    assert real['removed'] == [t.d('gone')]
    assert real['copied'] == [t.d('pve/storage.cfg')]
    assert t.run(check_mode=True, copy=['pve'])['changed'] is False


def test_diff_describes_each_changed_path(t):
    write(t.c('new.conf'))
    write(t.c('conflict.conf'))
    write(t.c('gone.conf'))
    write(t.c('pve/storage.cfg'), 'dir: local\n')
    t.run(sources=[t.common], prune=False)
    os.unlink(t.c('gone.conf'))
    os.unlink(t.d('new.conf'))
    os.unlink(t.d('conflict.conf'))
    write(t.d('conflict.conf'), 'abc\n')
    write(t.h('pve/storage.cfg'), 'dir: host\n')
    r = t.run(diff=True, copy=['pve'], check_mode=True)
    by_path = dict((d['before_header'], d) for d in r['diff'])
    assert sorted(by_path) == sorted([t.d('new.conf'), t.d('conflict.conf'), t.d('gone.conf'), t.d('pve/storage.cfg')])
    assert by_path[t.d('new.conf')]['before'] == 'absent\n'
    assert by_path[t.d('new.conf')]['after'] == 'link -> %s\n' % t.c('new.conf')
    assert by_path[t.d('conflict.conf')]['before'] == 'regular file (4 bytes, mode 0644)\n'
    assert by_path[t.d('conflict.conf')]['after'] == 'link -> %s (previous regular file (4 bytes, mode 0644) ' \
        'backed up to %s)\n' % (t.c('conflict.conf'), os.path.join(t.backup, 'conflict.conf'))
    assert by_path[t.d('gone.conf')] == {'before_header': t.d('gone.conf'), 'after_header': t.d('gone.conf'),
                                         'before': 'link -> %s (source gone)\n' % t.c('gone.conf'),
                                         'after': 'absent\n'}
    assert by_path[t.d('pve/storage.cfg')]['before'] == 'link -> %s\n' % t.c('pve/storage.cfg')
    assert by_path[t.d('pve/storage.cfg')]['after'] == 'copy of %s\n' % t.h('pve/storage.cfg')
    assert 'diff' not in t.run(check_mode=True)


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize('case,message', [
    ('relative_source', "source 'repo/confs/common' must be an absolute path"),
    ('missing_source', 'source {base}/repo/confs/missing does not exist'),
    ('source_is_file', 'source {base}/repo/file is not a directory'),
    ('no_sources', 'sources must list at least one directory'),
    ('relative_dest', "dest 'etc' must be an absolute path"),
    ('missing_dest', 'dest {base}/nope does not exist'),
    ('dest_is_file', 'dest {base}/repo/file is not a directory'),
    ('source_in_dest', 'source {base}/etc/confs is inside dest {base}/etc'),
    ('dest_in_source', 'dest {base}/repo/confs/common/etc is inside source {base}/repo/confs/common'),
    ('dest_in_source_via_link', 'dest {base}/etc-link is inside source {base}/repo/confs/common'),
    ('overlapping_sources', 'sources {base}/repo/confs/common and {base}/repo/confs/common/sub overlap'),
    ('duplicate_source', 'source {base}/repo/confs/common is listed twice'),
    ('bad_conflict', "conflict must be one of backup, error, replace, got 'clobber'"),
    ('bad_state', "state must be one of link, capture, got 'absent'"),
    ('relative_backup', "backup_dir 'backup' must be an absolute path"),
    ('backup_in_source', 'backup_dir {base}/repo/confs/common/bk is inside source {base}/repo/confs/common'),
    ('backup_in_dest', 'backup_dir {base}/etc/bk is inside dest {base}/etc'),
    ('override_outside_dest', "conflict_overrides key '/srv/x' is not under dest {base}/etc"),
])
def test_bad_input_fails_clearly_and_changes_nothing(t, case, message):
    write(t.c('motd'))
    write(t.c('sub/x'))
    write(os.path.join(t.base, 'repo', 'file'))
    os.makedirs(t.d('confs'))
    os.makedirs(t.c('etc'))
    os.symlink(t.c('etc'), os.path.join(t.base, 'etc-link'))
    kw = {
        'relative_source': dict(sources=['repo/confs/common']),
        'missing_source': dict(sources=[os.path.join(t.base, 'repo/confs/missing')]),
        'source_is_file': dict(sources=[os.path.join(t.base, 'repo/file')]),
        'no_sources': dict(sources=[]),
        'relative_dest': dict(dest='etc'),
        'missing_dest': dict(dest=os.path.join(t.base, 'nope')),
        'dest_is_file': dict(dest=os.path.join(t.base, 'repo/file')),
        'source_in_dest': dict(sources=[t.d('confs')]),
        'dest_in_source': dict(dest=t.c('etc')),
        'dest_in_source_via_link': dict(dest=os.path.join(t.base, 'etc-link')),
        'overlapping_sources': dict(sources=[t.common, t.c('sub')]),
        'duplicate_source': dict(sources=[t.common, t.common + '/']),
        'bad_conflict': dict(conflict='clobber'),
        'bad_state': dict(state='absent'),
        'relative_backup': dict(backup_dir='backup'),
        'backup_in_source': dict(backup_dir=t.c('bk')),
        'backup_in_dest': dict(backup_dir=t.d('bk')),
        'override_outside_dest': dict(conflict_overrides={'/srv/x': 'error'}),
    }[case]
    before = t.snap()
    with pytest.raises(es.EtcSymlinksError) as e:
        t.run(**kw)
    assert message.format(base=t.base) in str(e.value)
    assert str(e.value).endswith('nothing was changed')
    assert t.snap() == before


def test_all_problems_are_reported_at_once(t):
    with pytest.raises(es.EtcSymlinksError) as e:
        es.Options(sources=['rel', '/does/not/exist'], dest='etc', conflict='x')
    assert len(e.value.errors) == 4
    assert str(e.value).startswith('4 problems, nothing was changed: ')


# ---------------------------------------------------------------- a real git checkout

def git(repo, *args):
    env = dict(os.environ, GIT_AUTHOR_NAME='t', GIT_AUTHOR_EMAIL='t@example.org', GIT_COMMITTER_NAME='t',
               GIT_COMMITTER_EMAIL='t@example.org', GIT_CONFIG_GLOBAL='/dev/null', GIT_CONFIG_NOSYSTEM='1')
    subprocess.run(['git', '-C', repo] + list(args), check=True, env=env, stdout=subprocess.PIPE,
                   stderr=subprocess.STDOUT)


def test_git_checkout_update_reports_exactly_the_affected_paths(tmp_path):
    work = str(tmp_path / 'work')      # where the change is made and committed
    checkout = str(tmp_path / 'srv')   # the server's clone, updated by pull
    dest = str(tmp_path / 'etc')
    os.makedirs(dest)
    git(str(tmp_path), 'init', '-q', '-b', 'main', work)
    for rel, content in [('confs/common/nginx/nginx.conf', 'worker_processes 2;\n'),
                         ('confs/common/logrotate.d/off', 'weekly\n'),
                         ('confs/common/README.md', 'docs\n'),
                         ('confs/off2/nginx/sites-enabled/off.conf', 'server {}\n'),
                         ('confs/off2/pve/storage.cfg', 'dir: local\n'),
                         ('confs/off2/obsolete.conf', 'old\n')]:
        write(os.path.join(work, rel), content)
    git(work, 'add', '-A')
    git(work, 'commit', '-q', '-m', 'initial')
    git(str(tmp_path), 'clone', '-q', work, checkout)
    opts = dict(sources=[os.path.join(checkout, 'confs/common'), os.path.join(checkout, 'confs/off2')],
                dest=dest, backup_dir=str(tmp_path / 'bk'), copy=['pve'])
    r = es.run(es.Options(**opts))
    assert r['changed_paths'] == sorted(os.path.join(dest, p) for p in (
        'nginx/nginx.conf', 'logrotate.d/off', 'nginx/sites-enabled/off.conf', 'pve/storage.cfg', 'obsolete.conf'))
    assert os.path.isdir(os.path.join(checkout, '.git'))

    # The upstream commit: one file added, one removed, a linked file edited, a copied file edited.
    write(os.path.join(work, 'confs/off2/nginx/sites-enabled/api.conf'), 'server { api }\n')
    git(work, 'rm', '-q', 'confs/off2/obsolete.conf')
    write(os.path.join(work, 'confs/common/nginx/nginx.conf'), 'worker_processes 4;\n')
    write(os.path.join(work, 'confs/off2/pve/storage.cfg'), 'dir: local\nnfs: backup\n')
    git(work, 'add', '-A')
    git(work, 'commit', '-q', '-m', 'update')
    git(checkout, 'pull', '-q', '--ff-only')

    r = es.run(es.Options(**opts))
    assert r['created'] == [os.path.join(dest, 'nginx/sites-enabled/api.conf')]
    assert r['removed'] == [os.path.join(dest, 'obsolete.conf')]
    assert r['copied'] == [os.path.join(dest, 'pve/storage.cfg')]
    # The edited linked file needs no change: its link already shows the new content.
    assert r['changed_paths'] == sorted(os.path.join(dest, p) for p in (
        'nginx/sites-enabled/api.conf', 'obsolete.conf', 'pve/storage.cfg'))
    assert read(os.path.join(dest, 'nginx/nginx.conf')) == 'worker_processes 4;\n'
    assert read(os.path.join(dest, 'pve/storage.cfg')) == 'dir: local\nnfs: backup\n'
    assert es.run(es.Options(**opts))['changed'] is False

    # Capture a live edit back into the checkout: git sees exactly that file modified.
    write(os.path.join(dest, 'pve/storage.cfg'), 'dir: local\nnfs: backup\nzfs: tank\n')
    r = es.run(es.Options(state='capture', **opts))
    assert r['captured_sources'] == [os.path.join(checkout, 'confs/off2/pve/storage.cfg')]
    status = subprocess.run(['git', '-C', checkout, 'status', '--porcelain'], check=True,
                            stdout=subprocess.PIPE, universal_newlines=True).stdout
    assert status == ' M confs/off2/pve/storage.cfg\n'
