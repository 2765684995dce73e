# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""SIGKILL the deploy_history module at random points of deploy + activate.

Each run deploys and activates a commit that is not on disk (keep=2, so it also
prunes); every third one is a new commit that has to be fetched into the mirror.

The module runs as a subprocess exactly as Ansible runs it on a target, in its
own process group, and the whole group (git included) is killed, as a host's
OOM killer or a dropped session would. After every kill the active link must
resolve to a complete release, and a re-run of the very commit whose run was
killed must succeed, leave nothing beside the releases (no .partial, private
index, index.lock, temp link or mirror lock) and converge (a further run is a
no-op). The seed is printed before the first kill; DEPLOY_HISTORY_FAULT_SEED
replays it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fcntl
import json
import os
import random
import signal
import subprocess
import sys
import time

from ansible_collections.commons.infra.plugins.module_utils import deploy_history as dh

MODULE = 'ansible_collections.commons.infra.plugins.modules.deploy_history'
GIT_ENV = dict(os.environ, GIT_AUTHOR_NAME='t', GIT_AUTHOR_EMAIL='t@example.org',
               GIT_COMMITTER_NAME='t', GIT_COMMITTER_EMAIL='t@example.org', GIT_CONFIG_NOSYSTEM='1')
FILES = 300          # enough for the checkout to take a real share of the run
KILLS = 100
SERVICE = 'svc'


def pypath():
    import ansible_collections
    return os.path.dirname(list(ansible_collections.__path__)[0])


def git(repo, *args):
    proc = subprocess.run(['git', '-C', repo] + list(args), env=GIT_ENV, check=False,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.returncode == 0, 'git %s: %s' % (' '.join(args), proc.stderr.decode())
    return proc.stdout.decode().strip()


def add_commit(path, commits):
    """A commit in which every file names it, so a mixed or partial tree is detectable."""
    label = 'c%d' % len(commits)
    for i in range(FILES):
        d = os.path.join(path, 'd%02d' % (i % 10))
        if not os.path.isdir(d):
            os.makedirs(d)
        with open(os.path.join(d, 'f%03d.txt' % i), 'w') as f:
            f.write('%s %d\n' % (label, i) * 20)
    with open(os.path.join(path, 'VERSION'), 'w') as f:
        f.write(label + '\n')
    git(path, 'add', '-A')
    git(path, 'commit', '-q', '-m', label)
    commit = git(path, 'rev-parse', 'HEAD')
    commits[commit] = label
    return commit


def check_complete(release_dir, label):
    assert not os.path.exists(os.path.join(release_dir, dh.MARKER_NAME)), 'partial marker in %s' % release_dir
    with open(os.path.join(release_dir, 'VERSION')) as f:
        assert f.read() == label + '\n'
    count = 0
    for i in range(FILES):
        with open(os.path.join(release_dir, 'd%02d' % (i % 10), 'f%03d.txt' % i)) as f:
            assert f.read() == '%s %d\n' % (label, i) * 20, 'incomplete file %d in %s' % (i, release_dir)
        count += 1
    assert count == FILES


def check_active(root, commits):
    link = os.path.join(root, SERVICE)
    target = os.path.realpath(link)
    assert os.path.isdir(target), 'active link %s dangles (%s)' % (link, os.readlink(link))
    release = os.path.basename(target)
    assert os.path.dirname(target) == os.path.realpath(os.path.join(root, 'deploys', SERVICE))
    assert release in commits, 'active release %s is not a known commit' % release
    check_complete(target, commits[release])
    return release


def disk_state(layout):
    """Enough to tell whether a killed run had changed anything yet."""
    try:
        size = os.path.getsize(layout.history)
    except OSError:
        size = 0
    return size, sorted(os.listdir(layout.service_dir)), os.readlink(layout.active_link)


class Runner(object):
    def __init__(self, tmp_path, root, repo):
        self.root, self.repo, self.tmp = root, repo, str(tmp_path)
        self.env = dict(os.environ, PYTHONPATH=pypath())

    def args_file(self, commit):
        path = os.path.join(self.tmp, 'args-%s.json' % commit)
        if not os.path.exists(path):
            with open(path, 'w') as f:
                # sync=false: syncfs only guards against power loss, which a SIGKILL is not
                # (the page cache survives); it would only slow the test on a busy disk.
                json.dump({'ANSIBLE_MODULE_ARGS': {'root': self.root, 'service': SERVICE, 'repo': self.repo,
                                                   'version': commit, 'state': 'active', 'keep': 2,
                                                   'sync': False}}, f)
        return path

    def start(self, commit):
        return subprocess.Popen([sys.executable, '-m', MODULE, self.args_file(commit)], env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=self.tmp, start_new_session=True)

    def run(self, commit):
        proc = self.start(commit)
        out, err = proc.communicate()
        assert proc.returncode == 0, out.decode() + err.decode()
        return json.loads(out.decode())


def next_commit(rng, iteration, repo, commits, layout):
    """Always a commit that is not on disk, so every run materialises, switches
    and (keep=2) prunes; every third one is new, so the run also fetches."""
    if iteration % 3 == 2:
        return add_commit(repo, commits)
    on_disk = set(dh.scan(layout).releases)
    return rng.choice(sorted(c for c in commits if c not in on_disk))


def test_sigkill_during_deploy_and_activate(tmp_path, capsys):
    repo = str(tmp_path / 'repo')
    root = str(tmp_path / 'opt')
    subprocess.run(['git', 'init', '-q', '-b', 'main', repo], check=True, env=GIT_ENV)
    git(repo, 'config', 'gc.auto', '0')    # no background gc racing the next commit
    commits = {}
    for dummy in range(3):
        add_commit(repo, commits)
    runner = Runner(tmp_path, root, repo)
    layout = dh.Layout(root, SERVICE)
    seed = int(os.environ.get('DEPLOY_HISTORY_FAULT_SEED') or time.time())
    rng = random.Random(seed)
    with capsys.disabled():
        print('\ndeploy_history fault test: seed %d (replay with DEPLOY_HISTORY_FAULT_SEED=%d)' % (seed, seed))

    # Measure uninterrupted runs (the first also clones the mirror, not timed).
    assert runner.run(list(commits)[0])['changed']
    durations = []
    for iteration in range(6):
        commit = next_commit(rng, iteration, repo, commits, layout)
        started = time.monotonic()
        assert runner.run(commit)['active'] == commit
        durations.append(time.monotonic() - started)
    duration = sorted(durations)[len(durations) // 2]

    kills = finished_first = untouched = left_work = unlogged = switched = iteration = 0
    started = time.monotonic()
    while kills < KILLS:
        commit = next_commit(rng, iteration, repo, commits, layout)
        iteration += 1
        before = disk_state(layout)
        proc = runner.start(commit)
        time.sleep(rng.uniform(0, duration))
        killed = proc.poll() is None
        if killed:
            os.killpg(proc.pid, signal.SIGKILL)     # the module and its git children
            kills += 1
        else:
            finished_first += 1
        proc.communicate()

        active = check_active(root, commits)
        if killed:
            # What the kill left behind, seen through the module's own scan.
            snap = dh.scan(layout)
            untouched += disk_state(layout) == before
            left_work += bool(snap.leftovers)
            unlogged += bool(snap.pending)
            switched += active == commit

        # Re-run the very commit whose run was killed: succeeds, lands on it, leaves no leftovers.
        result = runner.run(commit)
        assert result['active'] == commit and check_active(root, commits) == commit
        if not killed:
            assert result['changed'] is False    # the finished run already converged
        assert sorted(n for n in os.listdir(layout.service_dir) if n.startswith('.')) == ['.lock', '.mirror.git']
        for release in (r['release'] for r in result['releases']):
            check_complete(os.path.join(layout.service_dir, release), commits[release])
        snap = dh.scan(layout)
        assert not snap.pending and not snap.leftovers
        assert dh.last_switch(snap.entries)['release'] == commit
        assert len(snap.releases) <= 2    # keep=2
        if killed and kills % 5 == 0:
            # Converged: the same run again changes nothing (the scan above already found nothing
            # pending or left over; a full run on every fifth kill keeps the suite's time down).
            assert runner.run(commit)['changed'] is False

    assert kills - untouched > 0, 'no kill landed after changes began (seed %d)' % seed
    assert left_work > 0, 'no kill left unfinished work for the next run to clean (seed %d)' % seed
    # Orphaned git children hold the lock until they exit; wait before cleanup.
    fd = os.open(layout.lock, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.close(fd)
    with capsys.disabled():
        print('deploy_history fault test: %d files/commit, full run %.3fs (median of %s), seed %d, %d commits '
              '(every third deploy a new one that must be fetched): '
              '%d SIGKILLs delivered to the module process group while it ran, %d runs finished before their kill; of the kills '
              '%d landed before anything was written (startup, ls-remote), %d mid-run after changes began: '
              '%d left unfinished work (.partial/.removing/temp link/git lock), %d left a fact without its log line, '
              '%d landed after the link switch; every active link complete, every re-run converged; %.1fs'
              % (FILES, duration, ', '.join('%.3f' % d for d in durations), seed, len(commits), kills, finished_first,
                 untouched, kills - untouched, left_work, unlogged, switched, time.monotonic() - started))
