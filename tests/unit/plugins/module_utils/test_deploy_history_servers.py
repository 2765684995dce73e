# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""deploy_history in the situations of real servers (issue 8): leftovers of killed runs,
unsafe and corrupt archives, directories it never made, offline re-runs, umask, bad history."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import io
import os
import re
import shutil
import stat
import tarfile
import zipfile

import pytest

from ansible_collections.commons.infra.plugins.module_utils import deploy_history as dh
from ansible_collections.commons.infra.plugins.module_utils.atomic_link import TMP_PREFIX

from .test_deploy_history import (  # noqa: F401  pylint: disable=unused-import
    deploy, history, link, params, read, releases_on_disk, repo, root, service_dir,
)


# -------------------------------------------------------------------- 0: leftovers of a killed run

def test_killed_checkout_leaves_nothing_that_blocks_redeploying_that_commit(root, repo):
    """git's lock for the private index (.<id>.partial.index.lock) must go with the .partial."""
    deploy(root, repo, repo.c[0])
    sdir = service_dir(root)
    c2 = repo.c[1]
    partial = os.path.join(sdir, '.%s.partial' % c2)
    os.makedirs(partial)
    leftovers = [os.path.join(sdir, '.%s.partial.index' % c2), os.path.join(sdir, '.%s.partial.index.lock' % c2),
                 os.path.join(sdir, '.%s.new' % c2), os.path.join(sdir, '.mirror.git', 'packed-refs.lock'),
                 os.path.join(sdir, '.mirror.git', 'refs', 'heads', 'main.lock')]
    for path in leftovers:
        open(path, 'w').close()
    temp_link = os.path.join(root, '%ssvc.%s' % (TMP_PREFIX, 'abcdef012345'))
    os.symlink(partial, temp_link)
    kinds = {i['kind'] for i in dh.run(params(root, state='query'))['unfinished']}
    assert {'partial', 'index', 'link', 'git-lock'} <= kinds

    result = deploy(root, repo, c2)       # the very commit whose run was killed
    assert result['active'] == c2
    assert set(result['cleaned']) == set(leftovers + [partial, temp_link])
    assert sorted(n for n in os.listdir(sdir) if n.startswith('.')) == ['.lock', '.mirror.git']
    assert deploy(root, repo, c2)['changed'] is False


# -------------------------------------------------------------------- 3: archives

def _tar(path, members):
    """members: (name, kind, payload) with kind file/dir/sym/hard; payload is bytes or a link name."""
    with tarfile.open(path, 'w') as t:
        for name, kind, payload, extra in members:
            info = tarfile.TarInfo(name)
            data = None
            if kind == 'file':
                data = payload
                info.size = len(data)
            elif kind == 'dir':
                info.type = tarfile.DIRTYPE
            elif kind == 'sym':
                info.type, info.linkname = tarfile.SYMTYPE, payload
            elif kind == 'hard':
                info.type, info.linkname = tarfile.LNKTYPE, payload
            for key, value in (extra or {}).items():
                setattr(info, key, value)
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


@pytest.fixture(params=['data_filter', 'no_data_filter'])
def python_tarfile(request, monkeypatch):
    """Both kinds of Python the module meets: with tarfile.data_filter (3.12, 3.11.4+) and without."""
    if request.param == 'no_data_filter':
        monkeypatch.delattr(tarfile, 'data_filter', raising=False)
    elif not hasattr(tarfile, 'data_filter'):
        pytest.skip('this Python has no tarfile.data_filter')
    return request.param


def test_symlink_chain_in_a_tar_cannot_escape(root, tmp_path, python_tarfile):
    outside = tmp_path / 'opt'
    bad = _tar(str(tmp_path / 'chain.tar'), [
        ('a', 'dir', None, None), ('a/l', 'sym', '..', None), ('a/l/m', 'sym', '..', None),
        ('a/l/m/EVIL', 'file', b'pwned\n', None)])
    with pytest.raises(dh.DeployHistoryError, match='chain.tar'):
        dh.run(params(root, state='active', src_archive=bad))
    escaped = [os.path.join(d, n) for d, ds, fs in os.walk(str(tmp_path)) for n in fs if n == 'EVIL']
    assert escaped == []
    sdir = service_dir(str(outside))
    assert not os.path.isdir(sdir) or not [n for n in os.listdir(sdir) if n.endswith('.partial')]


def test_tar_link_pointing_out_is_refused(root, tmp_path, python_tarfile):
    bad = _tar(str(tmp_path / 'out.tar'), [('x', 'dir', None, None), ('x/up', 'sym', '../..', None)])
    with pytest.raises(dh.DeployHistoryError, match='out.tar.*points outside|points outside.*out.tar'):
        dh.run(params(root, state='active', src_archive=bad))


def test_tar_setuid_bits_and_owners_are_stripped(root, tmp_path, python_tarfile):
    archive = _tar(str(tmp_path / 'suid.tar'), [
        ('bin', 'dir', None, {'mode': 0o7755, 'uid': 4242, 'gid': 4242}),
        ('bin/tool', 'file', b'#!/bin/sh\n', {'mode': 0o6755, 'uid': 4242, 'gid': 4242}),
        ('bin/same', 'hard', 'bin/tool', None)])
    result = dh.run(params(root, state='active', src_archive=archive))
    tool = os.path.join(result['path'], 'bin', 'tool')
    assert stat.S_IMODE(os.lstat(tool).st_mode) == 0o755
    assert stat.S_IMODE(os.lstat(os.path.dirname(tool)).st_mode) == 0o755
    assert read(os.path.join(result['path'], 'bin', 'same')) == '#!/bin/sh\n'
    if os.geteuid() == 0:
        assert (os.lstat(tool).st_uid, os.lstat(tool).st_gid) == (0, 0)


def test_corrupt_tar_fails_cleanly_naming_the_archive(root, tmp_path):
    good = _tar(str(tmp_path / 'good.tar'), [('f%d' % i, 'file', os.urandom(4096), None) for i in range(4)])
    with open(good, 'rb') as f:
        data = f.read()
    bad = str(tmp_path / 'torn.tar.gz')
    import gzip
    with open(bad, 'wb') as f:
        f.write(gzip.compress(data)[:-600])
    assert_refused_naming_it(root, bad)


def assert_refused_naming_it(root, archive):
    """A clean failure naming the archive, and no release from it."""
    with pytest.raises(dh.DeployHistoryError, match=re.escape(os.path.basename(archive))):
        dh.run(params(root, state='active', src_archive=archive))
    assert not os.path.isdir(service_dir(root)) or releases_on_disk(root) == []


def test_zip_symlink_chain_and_corruption_fail_cleanly(root, tmp_path):
    chain = str(tmp_path / 'chain.zip')
    with zipfile.ZipFile(chain, 'w') as z:
        info = zipfile.ZipInfo('a/l')
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        z.writestr(info, '../..')
        z.writestr('a/l/EVIL', 'pwned\n')
    assert_refused_naming_it(root, chain)
    assert not os.path.exists(str(tmp_path / 'EVIL'))

    corrupt = str(tmp_path / 'crc.zip')
    with zipfile.ZipFile(corrupt, 'w', compression=zipfile.ZIP_STORED) as z:
        z.writestr('app/main.py', 'print("intact")\n' * 50)
    with open(corrupt, 'r+b') as f:
        blob = f.read()
        at = blob.index(b'print')
        f.seek(at)
        f.write(b'PRINT')
    assert_refused_naming_it(root, corrupt)


def test_zip_symlink_inside_the_release_is_a_symlink(root, tmp_path):
    path = str(tmp_path / 'ok.zip')
    with zipfile.ZipFile(path, 'w') as z:
        z.writestr('web/index.html', 'hi\n')
        info = zipfile.ZipInfo('web/default.html')
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        z.writestr(info, 'index.html')
        script = zipfile.ZipInfo('bin/run')
        script.create_system = 3
        script.external_attr = (stat.S_IFREG | 0o4755) << 16
        z.writestr(script, '#!/bin/sh\n')
    result = dh.run(params(root, state='active', src_archive=path))
    assert os.readlink(os.path.join(result['path'], 'web', 'default.html')) == 'index.html'
    assert stat.S_IMODE(os.stat(os.path.join(result['path'], 'bin', 'run')).st_mode) == 0o755


# -------------------------------------------------------------------- 4: what the module never made

def test_pruning_leaves_directories_that_are_not_releases(root, repo):
    deploy(root, repo, repo.c[0])
    shared = os.path.join(service_dir(root), 'shared')
    os.makedirs(os.path.join(shared, 'uploads'))
    first = deploy(root, repo, repo.c[1], keep=2)
    assert 'shared' not in [r['release'] for r in first['releases']]
    assert first['foreign'] == [shared]
    assert any('shared' in w for w in first['warnings'])
    deploy(root, repo, repo.c[2], keep=2)
    again = deploy(root, repo, repo.c[0], keep=2)
    assert os.path.isdir(os.path.join(shared, 'uploads'))
    assert not any(e['release'] == 'shared' for e in history(root))
    assert again['foreign'] == [shared]


def test_named_release_killed_before_its_history_line_is_still_adopted(root, tmp_path):
    """A release named by the user is adopted only because its run left its stamp (.<name>.new)."""
    src = tmp_path / 'build'
    src.mkdir()
    (src / 'index.html').write_text('one')
    sdir = service_dir(root)
    os.makedirs(os.path.join(sdir, 'build-7'))
    open(os.path.join(sdir, '.build-7.new'), 'w').close()
    query = dh.run(params(root, state='query'))
    assert [r['release'] for r in query['releases']] == ['build-7']
    result = dh.run(params(root, state='active', release='build-7'))
    assert result['active'] == 'build-7' and not os.path.exists(os.path.join(sdir, '.build-7.new'))
    assert [e['action'] for e in history(root)][:1] == ['present']


# -------------------------------------------------------------------- 5: offline re-runs

def test_pinned_commit_already_deployed_needs_no_remote(root, repo, tmp_path):
    c1, c3 = repo.c[0], repo.c[2]
    deploy(root, repo, c3)
    deploy(root, repo, c1)
    shutil.move(repo.path, str(tmp_path / 'gone'))       # the remote is unreachable from now on
    assert deploy(root, repo, c1)['changed'] is False     # the active release, re-asserted
    result = deploy(root, repo, c3)                       # on disk: a switch, no fetch
    assert result['changed'] and result['active'] == c3
    assert dh.run(params(root, repo=repo.path, version=c1, state='active'), check_mode=True)['changed']


def test_pinned_commit_in_the_mirror_deploys_offline(root, repo, tmp_path):
    deploy(root, repo, 'main')                            # the mirror holds every commit
    shutil.move(repo.path, str(tmp_path / 'gone'))
    result = deploy(root, repo, repo.c[0], state='present')
    assert result['changed'] and repo.c[0] in releases_on_disk(root)


# -------------------------------------------------------------------- 6: umask

@pytest.fixture
def umask_077():
    old = os.umask(0o077)
    yield
    os.umask(old)


def test_umask_does_not_change_release_modes(root, repo, tmp_path, umask_077):
    result = deploy(root, repo, 'main')
    for path in (os.path.join(root, 'deploys'), service_dir(root), result['path'], os.path.join(result['path'], 'app')):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o755, path
    assert stat.S_IMODE(os.stat(os.path.join(result['path'], 'VERSION')).st_mode) == 0o644
    src = tmp_path / 'build'
    src.mkdir()
    (src / 'page.html').write_text('x')
    os.chmod(str(src / 'page.html'), 0o644)
    copied = dh.run(params(root, state='present', src_dir=str(src)))
    assert stat.S_IMODE(os.stat(copied['path']).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(os.path.join(copied['path'], 'page.html')).st_mode) == 0o644


# -------------------------------------------------------------------- 7: no tracebacks

def test_history_line_of_the_wrong_shape_fails_naming_the_file(root, repo):
    deploy(root, repo, repo.c[0])
    path = os.path.join(service_dir(root), 'history.jsonl')
    with open(path, 'a') as f:
        f.write('{"time": "2026-01-01T00:00:00Z", "action": "present", "release": ["x"]}\n')
    for state in ('query', 'active'):
        with pytest.raises(dh.DeployHistoryError, match=r'history.jsonl line 3'):
            dh.run(params(root, repo=repo.path if state == 'active' else None, version=repo.c[1] if state == 'active' else None,
                          state=state))


# -------------------------------------------------------------------- folded rules

@pytest.mark.parametrize('name', ['a..b', 'v1..v2'])
def test_refs_with_dot_dot_are_refused_like_the_role_refuses_them(root, repo, name):
    with pytest.raises(dh.DeployHistoryError, match='not a valid'):
        deploy(root, repo, name)


@pytest.mark.parametrize('name', ['ok-1.2', '.hidden', 'a/b', '..', 'history.jsonl', 'x' * 129, 'sp ace', ''])
def test_the_role_checks_names_with_the_modules_rule(root, name):
    """app_release_errors (the role's validate step) and the module refuse exactly the same names."""
    from ansible_collections.commons.infra.plugins.filter.app_release import app_release_errors
    role_refuses = bool(app_release_errors({'app_release_service': name}))
    try:
        dh.Options(params(root, service=name, state='query'))
        module_refuses = False
    except dh.DeployHistoryError:
        module_refuses = True
    assert role_refuses == module_refuses, name


@pytest.mark.parametrize('ref', ['main', 'v1.2', 'a..b', '-x', 'with space', 'HEAD', 'refs/tags/v1'])
def test_the_role_checks_refs_with_the_modules_rule(root, repo, ref):
    from ansible_collections.commons.infra.plugins.filter.app_release import app_release_errors
    role_refuses = bool(app_release_errors({'app_release_version': ref}))
    try:
        dh.Options(params(root, repo=repo.path, version=ref, state='present'))
        module_refuses = False
    except dh.DeployHistoryError:
        module_refuses = True
    assert role_refuses == module_refuses, ref
