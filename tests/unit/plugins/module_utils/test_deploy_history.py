# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""deploy_history logic on real git repositories and real directories (no mocks)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fcntl
import hashlib
import io
import json
import os
import subprocess
import tarfile
import time
import zipfile

import pytest

from ansible_collections.commons.infra.plugins.module_utils import deploy_history as dh
from ansible_collections.commons.infra.plugins.module_utils.atomic_link import TMP_PREFIX, replace_symlink

GIT_ENV = dict(os.environ, GIT_AUTHOR_NAME='t', GIT_AUTHOR_EMAIL='t@example.org',
               GIT_COMMITTER_NAME='t', GIT_COMMITTER_EMAIL='t@example.org', GIT_CONFIG_NOSYSTEM='1')


def git(repo, *args):
    return subprocess.run(['git', '-C', repo] + list(args), check=True, env=GIT_ENV,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE).stdout.decode().strip()


class Repo(object):
    """A throwaway git repository; commit() returns the new commit id."""

    def __init__(self, path):
        self.path = path
        subprocess.run(['git', 'init', '-q', '-b', 'main', path], check=True, env=GIT_ENV)

    def commit(self, files, msg='c'):
        for name, content in files.items():
            full = os.path.join(self.path, name)
            if content is None:
                os.unlink(full)
                continue
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, 'w') as f:
                f.write(content)
        git(self.path, 'add', '-A')
        git(self.path, 'commit', '-q', '-m', msg)
        return git(self.path, 'rev-parse', 'HEAD')


@pytest.fixture
def repo(tmp_path):
    r = Repo(str(tmp_path / 'repo'))
    r.c = [r.commit({'VERSION': 'v1\n', 'app/main.py': 'print(1)\n'}, 'c1'),
           r.commit({'VERSION': 'v2\n'}, 'c2'),
           r.commit({'VERSION': 'v3\n', 'app/new.py': 'new\n'}, 'c3')]
    return r


@pytest.fixture
def root(tmp_path):
    return str(tmp_path / 'opt')


def params(root, **kw):
    p = {'root': root, 'service': 'svc', 'state': 'present', 'by': 'tester'}
    p.update(kw)
    return p


def deploy(root, repo, version, state='active', **kw):
    return dh.run(params(root, repo=repo.path, version=version, state=state, **kw))


def service_dir(root):
    return os.path.join(root, 'deploys', 'svc')


def link(root):
    return os.path.join(root, 'svc')


def history(root):
    with open(os.path.join(service_dir(root), 'history.jsonl')) as f:
        return [json.loads(line) for line in f if line.strip()]


def releases_on_disk(root):
    return sorted(n for n in os.listdir(service_dir(root)) if not n.startswith('.') and n != 'history.jsonl')


def tree_state(path, skip_mirror=False):
    """Everything observable under path: types, link targets, content, modes."""
    state = {}
    if not os.path.lexists(path):
        return state
    for dirpath, dirnames, filenames in os.walk(path):
        if skip_mirror and dh.MIRROR_NAME in dirnames:
            dirnames.remove(dh.MIRROR_NAME)
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            if os.path.islink(full):
                state[full] = ('link', os.readlink(full))
            elif os.path.isdir(full):
                state[full] = ('dir', st.st_mode)
            else:
                with open(full, 'rb') as f:
                    state[full] = ('file', st.st_mode, hashlib.sha256(f.read()).hexdigest())
    return state


def read(path):
    with open(path) as f:
        return f.read()


# --------------------------------------------------------------------------
# states

def test_present_materialises_without_switching(root, repo):
    result = deploy(root, repo, 'main', state='present')
    c3 = repo.c[2]
    assert result['changed'] is True
    assert result['release'] == c3
    assert result['path'] == os.path.join(service_dir(root), c3)
    assert read(os.path.join(result['path'], 'VERSION')) == 'v3\n'
    assert read(os.path.join(result['path'], 'app', 'new.py')) == 'new\n'
    assert not os.path.exists(os.path.join(result['path'], '.git'))
    assert not os.path.exists(os.path.join(result['path'], dh.MARKER_NAME))
    assert not os.path.lexists(link(root))
    assert result['active'] is None
    assert [e['action'] for e in history(root)] == ['present']
    assert history(root)[0]['ref'] == 'main' and history(root)[0]['by'] == 'tester'
    assert os.path.isdir(os.path.join(service_dir(root), '.mirror.git'))
    # present again: nothing to do
    again = deploy(root, repo, 'main', state='present')
    assert again['changed'] is False
    assert len(history(root)) == 1


def test_release_tree_keeps_modes_and_symlinks(root, repo):
    os.symlink('app/main.py', os.path.join(repo.path, 'entry'))
    c4 = repo.commit({'bin/run': '#!/bin/sh\n'}, 'c4')
    os.chmod(os.path.join(repo.path, 'bin', 'run'), 0o755)
    git(repo.path, 'commit', '-q', '-am', 'exec')
    c5 = git(repo.path, 'rev-parse', 'HEAD')
    path = deploy(root, repo, 'main')['path']
    assert os.path.basename(path) == c5 != c4
    assert os.readlink(os.path.join(path, 'entry')) == 'app/main.py'
    assert os.access(os.path.join(path, 'bin', 'run'), os.X_OK)
    assert not os.access(os.path.join(path, 'VERSION'), os.X_OK)
    tracked = set(git(repo.path, 'ls-files').split())
    found = set()
    for dirpath, dirnames, filenames in os.walk(path):
        found.update(os.path.relpath(os.path.join(dirpath, n), path) for n in filenames)
        found.update(os.path.relpath(os.path.join(dirpath, n), path) for n in dirnames
                     if os.path.islink(os.path.join(dirpath, n)))
    assert found == tracked                      # exactly the commit: no .git, no marker, no index


def test_active_deploys_and_switches(root, repo):
    c1, c2 = repo.c[0], repo.c[1]
    first = deploy(root, repo, c1)
    assert first['changed'] and first['active'] == c1 and first['previous'] is None
    assert os.readlink(link(root)) == os.path.join(service_dir(root), c1)
    second = deploy(root, repo, c2[:10])   # abbreviated id, resolved to the full one
    assert second['release'] == c2
    assert second['active'] == c2 and second['previous'] == c1
    assert read(os.path.join(link(root), 'VERSION')) == 'v2\n'
    assert [(e['action'], e['release'], e['previous']) for e in history(root)] == [
        ('present', c1, None), ('activate', c1, None), ('present', c2, None), ('activate', c2, c1)]
    assert second['diff']['before'] == os.path.join(service_dir(root), c1) + '\n'
    assert second['diff']['after'] == os.path.join(service_dir(root), c2) + '\n'
    # activating an existing release by name needs no source
    back = dh.run(params(root, state='active', release=c1[:8]))
    assert back['changed'] and back['active'] == c1 and back['previous'] == c2


def test_active_again_writes_nothing(root, repo):
    deploy(root, repo, 'main')
    before = tree_state(root)
    result = deploy(root, repo, 'main')
    assert result['changed'] is False
    assert result['active'] == repo.c[2]
    assert tree_state(root) == before


def test_branch_tag_and_annotated_tag_resolve_to_commits(root, repo):
    git(repo.path, 'tag', 'light', repo.c[0])
    git(repo.path, 'tag', '-a', '-m', 'annotated', 'v1.0', repo.c[1])
    assert deploy(root, repo, 'light', state='present')['release'] == repo.c[0]
    assert deploy(root, repo, 'v1.0', state='present')['release'] == repo.c[1]
    assert deploy(root, repo, 'refs/heads/main', state='present')['release'] == repo.c[2]
    assert deploy(root, repo, 'HEAD', state='present')['release'] == repo.c[2]


def test_new_commit_on_branch_is_fetched_into_mirror(root, repo):
    deploy(root, repo, 'main')
    c4 = repo.commit({'VERSION': 'v4\n'}, 'c4')
    result = deploy(root, repo, 'main')
    assert result['release'] == c4 and result['previous'] == repo.c[2]
    assert read(os.path.join(link(root), 'VERSION')) == 'v4\n'


def test_rollback_to_previous_keeps_the_release_rolled_back_from(root, repo):
    c1, c2 = repo.c[0], repo.c[1]
    deploy(root, repo, c1)
    deploy(root, repo, c2)
    result = dh.run(params(root, state='rollback'))
    assert result['changed'] and result['release'] == c1
    assert result['active'] == c1 and result['previous'] == c2
    assert os.readlink(link(root)) == os.path.join(service_dir(root), c1)
    assert os.path.isdir(os.path.join(service_dir(root), c2))
    assert read(os.path.join(service_dir(root), c2, 'VERSION')) == 'v2\n'
    last = history(root)[-1]
    assert (last['action'], last['release'], last['previous'], last['by']) == ('rollback', c1, c2, 'tester')
    # the previous of a rollback is the release rolled back from: a second rollback returns
    again = dh.run(params(root, state='rollback'))
    assert again['active'] == c2 and again['previous'] == c1


def test_rollback_to_named_release(root, repo):
    c1, c2, c3 = repo.c
    for c in (c1, c2, c3):
        deploy(root, repo, c)
    result = dh.run(params(root, state='rollback', release=c1[:7]))
    assert result['active'] == c1 and result['previous'] == c3
    assert set(releases_on_disk(root)) == {c1, c2, c3}
    # rolling back to the active release by name is a no-op
    before = tree_state(root)
    assert dh.run(params(root, state='rollback', release=c1))['changed'] is False
    assert tree_state(root) == before


def test_absent_removes_a_release_and_refuses_the_active_one(root, repo):
    c1, c2 = repo.c[0], repo.c[1]
    deploy(root, repo, c1)
    deploy(root, repo, c2)
    before = tree_state(root)
    with pytest.raises(dh.DeployHistoryError, match='refusing to remove .*active release'):
        dh.run(params(root, state='absent', release=c2))
    assert tree_state(root) == before
    result = dh.run(params(root, state='absent', release=c1))
    assert result['changed'] and result['removed'] == c1
    assert releases_on_disk(root) == [c2]
    assert history(root)[-1]['action'] == 'absent' and history(root)[-1]['release'] == c1
    assert not [n for n in os.listdir(service_dir(root)) if n.endswith(dh.REMOVING_SUFFIX)]
    # already absent
    assert dh.run(params(root, state='absent', release=c1))['changed'] is False
    # previous is gone: rollback says so
    with pytest.raises(dh.DeployHistoryError, match='no longer on disk'):
        dh.run(params(root, state='rollback'))


def test_query_reports_releases_previous_and_unfinished(root, repo):
    c1, c2 = repo.c[0], repo.c[1]
    deploy(root, repo, c1)
    deploy(root, repo, c2)
    partial = os.path.join(service_dir(root), '.%s.partial' % repo.c[2])
    os.mkdir(partial)
    with open(os.path.join(partial, dh.MARKER_NAME), 'w') as f:
        json.dump({'pid': 1, 'started': '2026-01-01T00:00:00Z', 'ref': 'main'}, f)
    before = tree_state(root)
    result = dh.run(params(root, state='query'))
    assert tree_state(root) == before
    assert result['changed'] is False
    assert result['active'] == c2 and result['previous'] == c1
    assert [r['release'] for r in result['releases']] == [c1, c2]
    rel = {r['release']: r for r in result['releases']}
    hist = history(root)
    assert rel[c1]['first_deployed'] == hist[0]['time']
    assert rel[c1]['last_activated'] == hist[1]['time']
    assert rel[c2]['active'] and rel[c1]['previous']
    assert rel[c2]['ref'] == c2
    assert result['unfinished'] == [{'kind': 'partial', 'path': partial, 'release': repo.c[2],
                                     'started': '2026-01-01T00:00:00Z', 'pid': 1, 'ref': 'main'}]
    # the partial release is not a release
    assert repo.c[2] not in rel


def test_query_of_unknown_service_is_empty(root):
    result = dh.run(params(root, state='query'))
    assert result['active'] is None and result['releases'] == [] and result['history'] == []
    assert not os.path.exists(root)


def test_history_lines(root, repo):
    for c in repo.c:
        deploy(root, repo, c)
    assert len(dh.run(params(root, state='query', history_lines=None))['history']) == 6
    assert len(dh.run(params(root, state='query', history_lines=-1))['history']) == 6
    assert len(dh.run(params(root, state='query', history_lines=2))['history']) == 2
    assert dh.run(params(root, state='query', history_lines=0))['history'] == []


# --------------------------------------------------------------------------
# pruning by history

def test_keep_prunes_by_first_appearance_and_ignores_mtime_and_ctime(root, repo):
    c1, c2, c3 = repo.c
    c4 = repo.commit({'VERSION': 'v4\n'}, 'c4')
    c5 = repo.commit({'VERSION': 'v5\n'}, 'c5')
    for c in (c1, c2, c3, c4):
        deploy(root, repo, c)
    # Adversarial times: the oldest releases look newest and the other way round.
    sdir = service_dir(root)
    now = time.time()
    for age, release in enumerate((c1, c2, c3, c4)):
        os.utime(os.path.join(sdir, release), (now - age * 86400, now - age * 86400))
    os.chmod(os.path.join(sdir, c1), 0o755)  # ctime of the oldest becomes the newest
    result = deploy(root, repo, c5, keep=3)
    assert result['pruned'] == [c1, c2]
    assert releases_on_disk(root) == sorted([c3, c4, c5])
    prunes = [e for e in history(root) if e['action'] == 'prune']
    assert [e['release'] for e in prunes] == [c1, c2]
    # a pruned release deployed again counts as new: c3 is now the oldest
    result = deploy(root, repo, c1, keep=3)
    assert result['pruned'] == [c3]
    assert releases_on_disk(root) == sorted([c1, c4, c5])


def test_keep_never_prunes_active_previous_or_the_release_at_hand(root, repo):
    c1, c2, c3 = repo.c
    c4 = repo.commit({'VERSION': 'v4\n'}, 'c4')
    for c in (c1, c2, c3):
        deploy(root, repo, c)
    dh.run(params(root, state='rollback', release=c1))   # active c1, previous c3
    result = deploy(root, repo, c4, state='present', keep=2)
    # oldest first would be c1, c2, c3; only c2 is unprotected
    assert result['pruned'] == [c2]
    assert releases_on_disk(root) == sorted([c1, c3, c4])
    assert result['active'] == c1 and result['previous'] == c3


def test_keep_on_rollback_keeps_release_rolled_back_from(root, repo):
    c1, c2, c3 = repo.c
    for c in (c1, c2, c3):
        deploy(root, repo, c)
    result = dh.run(params(root, state='rollback', keep=2))
    assert result['active'] == c2 and result['previous'] == c3
    assert result['pruned'] == [c1]
    assert releases_on_disk(root) == sorted([c2, c3])


# --------------------------------------------------------------------------
# interrupted runs

def test_leftovers_of_interrupted_runs_are_cleaned(root, repo):
    c1, c2 = repo.c[0], repo.c[1]
    deploy(root, repo, c1)
    sdir = service_dir(root)
    partial = os.path.join(sdir, '.%s.partial' % c2)
    os.makedirs(os.path.join(partial, 'app'))
    with open(os.path.join(partial, dh.MARKER_NAME), 'w') as f:
        f.write('{"pid": 99999')                 # torn marker too
    with open(os.path.join(partial, 'VERSION'), 'w') as f:
        f.write('half')
    index = os.path.join(sdir, '.%s.partial.index' % c2)
    open(index, 'w').close()
    removing = os.path.join(sdir, '.%s.removing' % ('f' * 40))
    os.makedirs(os.path.join(removing, 'x'))
    temp_link = os.path.join(root, '%ssvc.%s' % (TMP_PREFIX, '0123456789ab'))
    os.symlink(os.path.join(sdir, c2), temp_link)
    other_link = os.path.join(root, '%sother.%s' % (TMP_PREFIX, '0123456789ab'))
    os.symlink('/nowhere', other_link)             # another link's switch: not ours
    ref_lock = os.path.join(sdir, '.mirror.git', 'refs', 'heads', 'main.lock')
    open(ref_lock, 'w').close()

    query = dh.run(params(root, state='query'))
    assert {i['kind'] for i in query['unfinished']} == {'partial', 'index', 'removing', 'link', 'git-lock'}
    assert query['releases'][0]['release'] == c1 and len(query['releases']) == 1

    result = deploy(root, repo, c2)
    assert result['changed'] and result['active'] == c2
    assert set(result['cleaned']) == {partial, index, removing, temp_link, ref_lock}
    assert os.path.lexists(other_link)
    assert read(os.path.join(link(root), 'VERSION')) == 'v2\n'
    assert not os.path.exists(os.path.join(link(root), dh.MARKER_NAME))
    assert sorted(os.listdir(sdir)) == sorted(['.lock', '.mirror.git', 'history.jsonl', c1, c2])
    assert deploy(root, repo, c2)['changed'] is False


def test_stale_git_locks_from_a_killed_fetch_do_not_block_the_next_fetch(root, repo):
    deploy(root, repo, 'main')
    mirror = os.path.join(service_dir(root), '.mirror.git')
    # Without cleanup git refuses: "Unable to create '.../refs/heads/main.lock': File exists".
    locks = [os.path.join(mirror, 'refs', 'heads', 'main.lock'), os.path.join(mirror, 'packed-refs.lock')]
    for path in locks:
        open(path, 'w').close()
    c4 = repo.commit({'VERSION': 'v4\n'}, 'c4')
    result = deploy(root, repo, 'main')
    assert result['active'] == c4
    assert sorted(result['cleaned']) == sorted(locks)
    assert not any(os.path.exists(p) for p in locks)


def test_cleanup_alone_is_a_change_then_converges(root, repo):
    deploy(root, repo, 'main')
    os.mkdir(os.path.join(service_dir(root), '.%s.partial' % repo.c[0]))
    first = deploy(root, repo, 'main')
    assert first['changed'] is True and len(first['cleaned']) == 1
    assert deploy(root, repo, 'main')['changed'] is False


def test_release_without_history_line_is_reconciled(root, repo):
    """Killed after the rename into place, before the history line."""
    c1, c2 = repo.c[0], repo.c[1]
    deploy(root, repo, c1)
    deploy(root, repo, c2, state='present')
    path = os.path.join(service_dir(root), 'history.jsonl')
    lines = read(path).splitlines(True)
    with open(path, 'w') as f:
        f.writelines(lines[:-1])
    result = deploy(root, repo, c2)
    assert result['changed']
    actions = [(e['action'], e['release'], e.get('reconciled', False)) for e in history(root)]
    assert actions[-2:] == [('present', c2, True), ('activate', c2, False)]


def test_switch_without_history_line_is_reconciled(root, repo):
    """Killed after the link moved, before the history line: previous stays right."""
    c1, c2 = repo.c[0], repo.c[1]
    deploy(root, repo, c1)
    deploy(root, repo, c2, state='present')
    replace_symlink(os.path.join(service_dir(root), c2), link(root))
    query = dh.run(params(root, state='query'))
    assert query['active'] == c2 and query['previous'] == c1
    result = deploy(root, repo, c2)
    assert result['changed'] is True               # the log line is written now
    last = history(root)[-1]
    assert (last['action'], last['release'], last['previous'], last['reconciled']) == ('activate', c2, c1, True)
    assert deploy(root, repo, c2)['changed'] is False
    assert dh.run(params(root, state='rollback'))['active'] == c1


def test_torn_history_line_is_skipped_and_not_glued_to_the_next(root, repo):
    deploy(root, repo, repo.c[0])
    with open(os.path.join(service_dir(root), 'history.jsonl'), 'a') as f:
        f.write('{"action": "activate", "rel')
    deploy(root, repo, repo.c[1])
    lines = read(os.path.join(service_dir(root), 'history.jsonl')).splitlines()
    assert lines[2] == '{"action": "activate", "rel'
    entries = dh.History(os.path.join(service_dir(root), 'history.jsonl')).read()
    assert [e['action'] for e in entries] == ['present', 'activate', 'present', 'activate']
    assert entries[-1]['previous'] == repo.c[0]


def test_removed_by_hand_is_reconciled_as_absent(root, repo):
    c1, c2 = repo.c[0], repo.c[1]
    deploy(root, repo, c1)
    deploy(root, repo, c2)
    os.rename(os.path.join(service_dir(root), c1), os.path.join(service_dir(root), '.%s.removing' % c1))
    result = deploy(root, repo, c1, state='present')
    entries = history(root)
    assert [(e['action'], e['release']) for e in entries[-2:]] == [('absent', c1), ('present', c1)]
    assert entries[-2]['reconciled'] is True
    assert [r['release'] for r in result['releases']] == [c2, c1]   # c1 is new again


def test_failed_materialisation_leaves_nothing(root, repo, tmp_path):
    deploy(root, repo, repo.c[0])
    before = tree_state(root, skip_mirror=True)
    with pytest.raises(dh.DeployHistoryError, match='git'):
        dh.run(params(root, state='active', repo=repo.path, version=repo.c[1]), git_executable=_failing_git(tmp_path))
    assert tree_state(root, skip_mirror=True) == before


def _failing_git(tmp_path):
    """A git whose checkout fails, as a full disk would make it."""
    path = str(tmp_path / 'git-failing')
    with open(path, 'w') as f:
        f.write('#!/bin/sh\nfor a in "$@"; do [ "$a" = read-tree ] && { echo "disk full" >&2; exit 1; }; done\n'
                'exec git "$@"\n')
    os.chmod(path, 0o755)
    return path


def test_concurrent_run_waits_for_the_lock(root, repo):
    deploy(root, repo, repo.c[0])
    fd = os.open(os.path.join(service_dir(root), '.lock'), os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(dh.DeployHistoryError, match='another run holds'):
            deploy(root, repo, repo.c[1], lock_timeout=0)
    finally:
        os.close(fd)
    assert deploy(root, repo, repo.c[1], lock_timeout=0)['active'] == repo.c[1]


# --------------------------------------------------------------------------
# check mode

def _check(root, before, **kw):
    result = dh.run(params(root, **kw), check_mode=True)
    assert tree_state(root) == before, 'check mode changed the disk'
    return result


def test_check_mode_first_deploy_touches_nothing(root, repo):
    result = _check(root, {}, state='active', repo=repo.path, version='main')
    assert not os.path.exists(root)
    assert result['changed'] is True and result['release'] == repo.c[2] and result['active'] == repo.c[2]
    assert result['diff']['before'] == '(absent)\n'


def test_check_mode_predicts_without_changing(root, repo):
    c1, c2, c3 = repo.c
    deploy(root, repo, c1)
    deploy(root, repo, c2)
    before = tree_state(root)
    r = _check(root, before, state='active', repo=repo.path, version='main', keep=2)
    assert r['changed'] and r['release'] == c3 and r['active'] == c3 and r['previous'] == c2
    assert r['pruned'] == [c1]
    assert [e['action'] for e in r['history'][-3:]] == ['present', 'activate', 'prune']
    assert r['diff']['after'] == os.path.join(service_dir(root), c3) + '\n'
    r = _check(root, before, state='rollback')
    assert r['changed'] and r['active'] == c1 and r['previous'] == c2
    r = _check(root, before, state='absent', release=c1)
    assert r['changed'] and r['removed'] == c1
    r = _check(root, before, state='active', repo=repo.path, version=c2)
    assert r['changed'] is False
    r = _check(root, before, state='present', repo=repo.path, version='main')
    assert r['changed'] and r['active'] == c2
    # leftovers are reported, not removed
    os.mkdir(os.path.join(service_dir(root), '.%s.partial' % c3))
    before = tree_state(root)
    r = _check(root, before, state='active', repo=repo.path, version=c2)
    assert r['changed'] is True and r['cleaned'] == [os.path.join(service_dir(root), '.%s.partial' % c3)]


def test_check_mode_still_resolves_the_ref(root, repo):
    deploy(root, repo, repo.c[0])
    before = tree_state(root)
    with pytest.raises(dh.DeployHistoryError, match="unknown ref 'nope'"):
        _check(root, before, state='active', repo=repo.path, version='nope')
    with pytest.raises(dh.DeployHistoryError, match='cannot roll back'):
        _check(root, before, state='rollback')


# --------------------------------------------------------------------------
# bad input: clear message, nothing changed

BAD_NAMES = [
    ('../evil', 'path separator'),
    ('..', 'starts with a dot'),
    ('.hidden', 'starts with a dot'),
    ('/etc', 'absolute path'),
    ('a/b', 'path separator'),
    ('nul\x00byte', 'NUL byte'),
    ('', 'non-empty'),
    ('history.jsonl', 'reserved'),
    ('spa ce', 'may only contain'),
]


@pytest.fixture
def deployed(root, repo):
    deploy(root, repo, repo.c[0])
    deploy(root, repo, repo.c[1])
    return tree_state(root)


def _refused(root, before, match, check_mode=False, skip_mirror=False, **kw):
    with pytest.raises(dh.DeployHistoryError, match=match):
        dh.run(params(root, **kw), check_mode=check_mode)
    assert tree_state(root, skip_mirror) == before


@pytest.mark.parametrize('name,message', BAD_NAMES)
def test_bad_service_names(root, repo, deployed, name, message):
    _refused(root, deployed, message, service=name, state='active', repo=repo.path)


@pytest.mark.parametrize('name,message', BAD_NAMES)
@pytest.mark.parametrize('state', ['rollback', 'absent', 'active'])
def test_bad_release_names(root, deployed, name, message, state):
    _refused(root, deployed, message, state=state, release=name)


@pytest.mark.parametrize('name,message', BAD_NAMES[:6])
def test_bad_release_name_for_local_source(root, deployed, tmp_path, name, message):
    src = tmp_path / 'src'
    src.mkdir()
    _refused(root, deployed, message, state='active', src_dir=str(src), release=name)


@pytest.mark.parametrize('keep', [1, 0, -1, True])
def test_bad_keep(root, repo, deployed, keep):
    _refused(root, deployed, 'keep must be an integer >= 2', state='active', repo=repo.path, version=repo.c[2], keep=keep)


def test_unknown_ref(root, repo, deployed):
    _refused(root, deployed, "unknown ref 'no-such-branch'", state='active', repo=repo.path, version='no-such-branch')


def test_unknown_commit(root, repo, deployed):
    # Unadvertised ids can only be checked by fetching: only the mirror (a cache) may change.
    before = tree_state(root, skip_mirror=True)
    _refused(root, before, "unknown ref '%s'" % ('ab' * 20), skip_mirror=True,
             state='active', repo=repo.path, version='ab' * 20)
    _refused(root, before, "unknown ref 'abcdef12'", skip_mirror=True,
             state='active', repo=repo.path, version='abcdef12')


def test_unreachable_repo(root, deployed, tmp_path):
    _refused(root, deployed, 'cannot read repository .*does not appear to be a git repository',
             state='active', repo=str(tmp_path / 'missing'))
    _refused(root, deployed, 'cannot read repository', state='present', repo='https://user:secret@127.0.0.1:9/x.git')


def test_unreachable_repo_on_first_deploy_creates_nothing(root, tmp_path):
    _refused(root, {}, 'cannot read repository', state='active', repo=str(tmp_path / 'missing'))
    assert not os.path.exists(root)


@pytest.mark.parametrize('kw,message', [
    ({'root': 'relative/opt'}, 'root must be an absolute path'),
    ({'active_link': 'relative'}, 'active_link must be an absolute path'),
    ({'state': 'present'}, 'needs a source'),
    ({'state': 'active'}, 'needs a source'),
    ({'state': 'absent'}, 'needs release'),
    ({'state': 'bogus'}, 'state must be one of'),
    ({'version': 'main'}, 'version needs repo'),
    ({'repo': '--upload-pack=evil', 'state': 'present'}, 'not a valid repository'),
    ({'repo': '/r', 'version': '--all', 'state': 'present'}, 'not a valid branch'),
    ({'repo': '/r', 'src_dir': '/tmp', 'state': 'present'}, 'mutually exclusive'),
    ({'repo': '/r', 'release': 'x', 'state': 'present'}, 'named by their commit id'),
    ({'src_dir': 'rel', 'state': 'present'}, 'must be an absolute path'),
    ({'src_dir': '/nonexistent-dir', 'state': 'present'}, 'is not a directory'),
    ({'src_archive': '/nonexistent.tar', 'state': 'present'}, 'is not a file'),
    ({'state': 'rollback', 'repo': '/r'}, 'takes no source'),
    ({'state': 'active', 'release': 'nosuchrelease'}, 'does not exist'),
    ({'state': 'rollback', 'release': 'nosuchrelease'}, 'no such release'),
    ({'owner': 'no-such-user-xyz', 'state': 'query'}, 'unknown user .* does not exist on the host'),
])
def test_bad_parameters(root, deployed, kw, message):
    p = dict(kw)
    if p.get('root') == 'relative/opt':
        with pytest.raises(dh.DeployHistoryError, match=message):
            dh.run(dict(params(root), **p))
        return
    if p.get('active_link') == 'relative':
        p['state'] = 'query'
    _refused(root, deployed, message, **p)


def test_active_link_inside_deploys_is_refused(root, repo, deployed):
    _refused(root, deployed, 'must not be inside', state='active', repo=repo.path,
             active_link=os.path.join(root, 'deploys', 'x'))
    _refused(root, deployed, "service name 'deploys' is reserved", service='deploys', state='query')


def test_active_link_that_is_a_directory_is_refused(root, repo):
    os.makedirs(os.path.join(link(root), 'old'))     # the hand-made /opt/olsystem of today
    before = tree_state(root)
    _refused(root, before, 'exists and is not a symlink', state='active', repo=repo.path)
    # present still works: it does not touch the link
    assert deploy(root, repo, 'main', state='present')['changed']


def test_rollback_without_previous_fails(root, repo):
    deploy(root, repo, repo.c[0])
    before = tree_state(root)
    _refused(root, before, 'no previous release', state='rollback')
    _refused(root, before, 'no previous release', service='other', state='rollback')
    assert not os.path.exists(os.path.join(root, 'deploys', 'other'))


def test_rollback_to_foreign_previous_target_fails(root, repo, tmp_path):
    old = tmp_path / 'olsystem_old'
    old.mkdir()
    os.makedirs(root)
    os.symlink(str(old), link(root))
    result = deploy(root, repo, 'main')
    assert history(root)[-1]['previous'] == str(old)
    assert result['previous'] == str(old)
    before = tree_state(root)
    _refused(root, before, 'not a release managed here', state='rollback')


def test_ambiguous_prefix(root, repo):
    c1, c2 = repo.c[0], repo.c[1]
    src = os.path.join(os.path.dirname(root), 'src')
    os.makedirs(src)
    for name in ('abcd1111', 'abcd2222'):
        dh.run(params(root, state='present', src_dir=src, release=name))
    _refused(root, tree_state(root), 'ambiguous', state='active', release='abcd')
    assert dh.run(params(root, state='active', release='abcd1'))['active'] == 'abcd1111'


# --------------------------------------------------------------------------
# local sources

def test_src_dir_release_named_by_content(root, tmp_path):
    src = tmp_path / 'build'
    (src / 'bin').mkdir(parents=True)
    (src / 'bin' / 'run').write_text('#!/bin/sh\n')
    os.chmod(str(src / 'bin' / 'run'), 0o755)
    (src / 'index.html').write_text('hello')
    os.symlink('index.html', str(src / 'default.html'))
    first = dh.run(params(root, state='active', src_dir=str(src)))
    rid = first['release']
    assert len(rid) == dh.CONTENT_ID_LENGTH
    path = os.path.join(service_dir(root), rid)
    assert read(os.path.join(path, 'index.html')) == 'hello'
    assert os.readlink(os.path.join(path, 'default.html')) == 'index.html'
    assert os.access(os.path.join(path, 'bin', 'run'), os.X_OK)
    assert dh.run(params(root, state='active', src_dir=str(src)))['changed'] is False
    (src / 'index.html').write_text('hello again')
    second = dh.run(params(root, state='active', src_dir=str(src)))
    assert second['release'] != rid and second['previous'] == rid


def test_src_archive_release_named_by_archive_hash(root, tmp_path):
    tgz = str(tmp_path / 'build.tar.gz')
    with tarfile.open(tgz, 'w:gz') as t:
        data = b'print("hi")\n'
        info = tarfile.TarInfo('app/main.py')
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    with open(tgz, 'rb') as f:
        expected = hashlib.sha256(f.read()).hexdigest()[:16]
    result = dh.run(params(root, state='active', src_archive=tgz))
    assert result['release'] == expected
    assert read(os.path.join(link(root), 'app', 'main.py')) == 'print("hi")\n'
    zpath = str(tmp_path / 'build.zip')
    with zipfile.ZipFile(zpath, 'w') as z:
        z.writestr('app/main.py', 'zip\n')
    result = dh.run(params(root, state='active', src_archive=zpath, release='build-42'))
    assert result['release'] == 'build-42' and result['previous'] == expected
    assert read(os.path.join(link(root), 'app', 'main.py')) == 'zip\n'


@pytest.mark.parametrize('member,kind', [('../escape.txt', 'file'), ('/abs.txt', 'file'),
                                         ('evil-link', 'symlink'), ('dev', 'fifo')])
def test_unsafe_tar_is_refused_before_anything_is_written(root, repo, deployed, tmp_path, member, kind):
    bad = str(tmp_path / 'bad.tar')
    with tarfile.open(bad, 'w') as t:
        info = tarfile.TarInfo(member)
        if kind == 'symlink':
            info.type, info.linkname = tarfile.SYMTYPE, '../../../etc/passwd'
        elif kind == 'fifo':
            info.type = tarfile.FIFOTYPE
        t.addfile(info, io.BytesIO(b''))
    _refused(root, deployed, 'escape|outside|device or fifo', state='active', src_archive=bad)


def test_unsafe_zip_is_refused(root, deployed, tmp_path):
    bad = str(tmp_path / 'bad.zip')
    with zipfile.ZipFile(bad, 'w') as z:
        z.writestr('../../escape.txt', 'x')
    _refused(root, deployed, 'would escape', state='active', src_archive=bad)


def test_not_an_archive(root, deployed, tmp_path):
    path = tmp_path / 'plain.txt'
    path.write_text('not an archive')
    _refused(root, deployed, 'neither a tar nor a zip', state='active', src_archive=str(path))


def test_owner_and_group_apply_to_new_release(root, repo):
    if os.geteuid() != 0:
        pytest.skip('chown needs root')
    result = deploy(root, repo, 'main', owner='65534', group='65534')
    for dirpath, dirnames, filenames in os.walk(result['path']):
        for name in [dirpath] + [os.path.join(dirpath, n) for n in filenames]:
            st = os.lstat(name)
            assert (st.st_uid, st.st_gid) == (65534, 65534)


# --------------------------------------------------------------------------
# small pure helpers

def test_parse_ls_remote_precedence():
    out = ('1' * 40 + '\tHEAD\n' + '2' * 40 + '\trefs/heads/v1\n' + '3' * 40 + '\trefs/tags/v1\n'
           + '4' * 40 + '\trefs/tags/v1^{}\n' + '5' * 40 + '\trefs/remotes/origin/main\n')
    assert dh.parse_ls_remote(out, 'v1') == '4' * 40
    assert dh.parse_ls_remote(out, 'refs/heads/v1') == '2' * 40
    assert dh.parse_ls_remote(out, 'HEAD') == '1' * 40
    assert dh.parse_ls_remote(out, 'main') is None


def test_sanitize_source_drops_credentials():
    assert dh.sanitize_source('https://user:tok@github.com/x/y.git') == 'https://github.com/x/y.git'
    assert dh.sanitize_source('https://tok@github.com/x/y.git') == 'https://github.com/x/y.git'
    assert dh.sanitize_source('git@github.com:x/y.git') == 'git@github.com:x/y.git'
    assert dh.sanitize_source('/srv/git/y.git') == '/srv/git/y.git'


def test_previous_comes_from_the_log_only():
    entries = [dh.make_entry('activate', 'a'), dh.make_entry('activate', 'b', previous='a'),
               dh.make_entry('rollback', 'a', previous='b'), dh.make_entry('present', 'c')]
    assert dh.previous_of(entries, 'a') == 'b'
    assert dh.previous_of(entries, 'b') is None      # the log says a is active: unknown
    assert dh.previous_of([], 'a') is None
