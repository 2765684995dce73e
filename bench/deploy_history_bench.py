#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark commons.infra.deploy_history against a plain git clone + checkout.

Builds a git repository of 5,000 files in a temp dir, deploys it once so the
service's mirror is fetched, then for each round commits a change and times, on
the same host and filesystem:

  (a) the deploy_history module deploying and activating the new commit
      (state=active: ls-remote, fetch into the mirror, checkout into
      .<id>.partial, syncfs, rename, link switch, history line);
  (b) `git clone <repo> <dir>` + `git -C <dir> checkout <commit>`.

The module is run as a subprocess, `python -m <module> args.json`, the way
Ansible runs a module on the target (minus the AnsiballZ unpacking), so its
time includes interpreter start-up and imports. Also times a no-op run (the
active release again), and prints where the time of a new release goes: a few
more rounds run the module's code in-process with timers around each git
command, syncfs, the history and the link switch, plus the interpreter start-up
and imports of a module process. Exits 1 if a target is missed.

The machine this runs on may be shared: every round is printed, and the ratio
is the one of the medians (sides alternate which runs first).

    .venv/bin/python bench/deploy_history_bench.py [--files 5000] [--rounds 9]
"""

from __future__ import absolute_import, division, print_function

import argparse
import collections
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CHECKOUT = os.path.dirname(HERE)
MODULE = 'ansible_collections.commons.infra.plugins.modules.deploy_history'
GIT_ENV = dict(os.environ, GIT_AUTHOR_NAME='bench', GIT_AUTHOR_EMAIL='bench@example.org',
               GIT_COMMITTER_NAME='bench', GIT_COMMITTER_EMAIL='bench@example.org', GIT_CONFIG_NOSYSTEM='1')
RATIO_TARGET = 1.2
NOOP_TARGET = 0.5


def pypath():
    """A directory holding ansible_collections/commons/infra -> this checkout."""
    path = os.path.join(CHECKOUT, '.cache', 'pypath')
    link = os.path.join(path, 'ansible_collections', 'commons', 'infra')
    if not os.path.islink(link):
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(CHECKOUT, link)
    return path


def git(*args, **kw):
    return subprocess.run(['git'] + list(args), check=True, env=GIT_ENV, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, **kw).stdout.decode().strip()


def build_repo(path, files, rng):
    git('init', '-q', '-b', 'main', path)
    for i in range(files):
        d = os.path.join(path, 'pkg%02d' % (i % 50), 'mod%d' % (i % 7))
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, 'f%05d.py' % i), 'w') as f:
            f.write(('# line %d %f\n' % (i, rng.random())) * rng.randint(5, 60))
    git('-C', path, 'add', '-A')
    git('-C', path, 'commit', '-q', '-m', 'initial')
    return git('-C', path, 'rev-parse', 'HEAD')


def new_commit(path, files, rng, n):
    """Change 1% of the files, like an ordinary deploy."""
    for i in rng.sample(range(files), max(1, files // 100)):
        name = os.path.join(path, 'pkg%02d' % (i % 50), 'mod%d' % (i % 7), 'f%05d.py' % i)
        with open(name, 'a') as f:
            f.write('# round %d\n' % n)
    git('-C', path, 'commit', '-q', '-a', '-m', 'round %d' % n)
    return git('-C', path, 'rev-parse', 'HEAD')


def run_module(workdir, args):
    path = os.path.join(workdir, 'args.json')
    with open(path, 'w') as f:
        json.dump({'ANSIBLE_MODULE_ARGS': args}, f)
    env = dict(os.environ, PYTHONPATH=pypath())
    started = time.monotonic()
    proc = subprocess.run([sys.executable, '-m', MODULE, path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=env, cwd=workdir, check=False)
    elapsed = time.monotonic() - started
    result = json.loads(proc.stdout.decode() or '{}')
    if proc.returncode != 0:
        raise SystemExit('module failed: %s %s' % (result.get('msg'), proc.stderr.decode()))
    return elapsed, result


def plain_clone(repo, dest, commit):
    started = time.monotonic()
    git('clone', '-q', repo, dest)
    git('-C', dest, 'checkout', '-q', commit)
    return time.monotonic() - started


def breakdown(work, repo, base, files, rng, rounds, first_round):
    """Median seconds per phase of a new release, the module's code run in-process with timers."""
    sys.path.insert(0, pypath())
    from ansible_collections.commons.infra.plugins.module_utils import deploy_history as dh
    phases = collections.defaultdict(list)
    current = collections.defaultdict(float)

    def timed(name, function):
        def wrapper(*args, **kwargs):
            started = time.monotonic()
            try:
                return function(*args, **kwargs)
            finally:
                current[name(args) if callable(name) else name] += time.monotonic() - started
        return wrapper

    def git_phase(args):
        words, skip = [], False
        for word in args[1]:
            if skip or word.startswith('-'):
                skip = word == '-c'
                continue
            words.append(word)
        return 'git ' + words[0] if words else 'git'

    patched = [(dh.Git, 'try_run', timed(git_phase, dh.Git.try_run)),
               (dh, 'sync_filesystem', timed('syncfs', dh.sync_filesystem)),
               (dh, 'scan', timed('scan (history, disk)', dh.scan)),
               (dh.History, 'append', timed('history append (fsync)', dh.History.append)),
               (dh, 'replace_symlink', timed('link switch', dh.replace_symlink)),
               (dh, 'cleanup', timed('cleanup', dh.cleanup))]
    saved = [(owner, name, getattr(owner, name)) for owner, name, dummy in patched]
    for owner, name, wrapper in patched:
        setattr(owner, name, wrapper)
    try:
        for n in range(first_round, first_round + rounds):
            new_commit(repo, files, rng, n)
            current.clear()
            started = time.monotonic()
            result = dh.run(dict(base))
            total = time.monotonic() - started
            assert result['changed'], result
            for name, seconds in current.items():
                phases[name].append(seconds)
            phases['other module code (python)'].append(total - sum(current.values()))
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)
    startup = []
    for dummy in range(3):
        started = time.monotonic()
        subprocess.run([sys.executable, '-c', 'import %s' % MODULE], check=True, env=dict(os.environ, PYTHONPATH=pypath()))
        startup.append(time.monotonic() - started)
    phases['interpreter start-up + imports (own process)'] = startup
    return dict((name, statistics.median(values)) for name, values in phases.items())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--files', type=int, default=5000)
    parser.add_argument('--rounds', type=int, default=9)
    parser.add_argument('--breakdown-rounds', type=int, default=3)
    parser.add_argument('--tmpdir', help='where to work (same filesystem for both sides); default: system temp')
    parser.add_argument('--output', help='also write the figures as JSON to this file')
    opts = parser.parse_args()

    rng = random.Random(42)
    work = tempfile.mkdtemp(prefix='deploy-history-bench-', dir=opts.tmpdir)
    try:
        repo = os.path.join(work, 'repo')
        root = os.path.join(work, 'opt')
        # No keep in the timed rounds: pruning (deleting an old 5,000-file tree) is
        # not part of deploying and is timed on its own below.
        base = {'root': root, 'service': 'app', 'repo': repo, 'version': 'main', 'state': 'active'}
        print('deploy_history benchmark: %d files, %d rounds, in %s (git %s, python %s)'
              % (opts.files, opts.rounds, work, git('--version').split()[-1], sys.version.split()[0]))
        print('module time = wall time of `python -m %s args.json` as a subprocess, the way Ansible runs the module'
              % MODULE)
        print('on the target (interpreter start-up and imports included, AnsiballZ unpacking not)\n')
        build_repo(repo, opts.files, rng)
        first, result = run_module(work, base)
        print('first deploy incl. mirror clone:     %.3fs  (%s)' % (first, result['release'][:12]))

        module_times, clone_times, unsynced = [], [], []
        for n in range(1, opts.rounds + 1):
            commit = new_commit(repo, opts.files, rng, n)
            dest = os.path.join(work, 'clone-%d' % n)
            # Alternate the order so neither side always gets the warmer cache.
            if n % 2:
                m, result = run_module(work, base)
                c = plain_clone(repo, dest, commit)
            else:
                c = plain_clone(repo, dest, commit)
                m, result = run_module(work, base)
            assert result['changed'] and result['active'] == commit, result
            shutil.rmtree(dest)
            module_times.append(m)
            clone_times.append(c)
            print('round %d: deploy_history %.3fs   git clone + checkout %.3fs   ratio %.2f'
                  % (n, m, c, m / c))

        # The same without syncfs, to show what the power-loss guard costs here.
        for n in range(opts.rounds + 1, opts.rounds + 3):
            new_commit(repo, opts.files, rng, n)
            t, result = run_module(work, dict(base, sync=False))
            unsynced.append(t)
        # A steady-state deploy with keep: one new release in, the oldest one out.
        new_commit(repo, opts.files, rng, opts.rounds + 3)
        pruning, result = run_module(work, dict(base, keep=len(result['releases'])))
        pruned = len(result['pruned'])

        phases = breakdown(work, repo, base, opts.files, rng, opts.breakdown_rounds, opts.rounds + 4)

        noop = []
        for dummy in range(5):
            t, result = run_module(work, base)
            assert result['changed'] is False, result
            noop.append(t)

        m, c = statistics.median(module_times), statistics.median(clone_times)
        ratio = m / c
        noop_median = statistics.median(noop)
        print('\nnew release, median of %d: deploy_history %.3fs  vs  git clone + checkout %.3fs  '
              '-> ratio %.2f (target <= %.1f) %s'
              % (opts.rounds, m, c, ratio, RATIO_TARGET, 'OK' if ratio <= RATIO_TARGET else 'MISSED'))
        print('new release with sync=false (no syncfs): %s' % ', '.join('%.3fs' % t for t in unsynced))
        print('new release + pruning %d old release (keep): %.3fs' % (pruned, pruning))
        print('no-op run (active release again), median of %d: %.3fs (max %.3fs) (target < %.1fs) %s'
              % (len(noop), noop_median, max(noop), NOOP_TARGET, 'OK' if noop_median < NOOP_TARGET else 'MISSED'))
        print('\nwhere a new release goes (median of %d in-process rounds with timers, sync on; a module process '
              'adds the start-up line):' % opts.breakdown_rounds)
        for name, seconds in sorted(phases.items(), key=lambda kv: -kv[1]):
            print('  %-46s %.3fs' % (name, seconds))
        figures = {'files': opts.files, 'rounds': opts.rounds, 'first_deploy_s': first,
                   'module_s': module_times, 'clone_checkout_s': clone_times, 'module_median_s': m,
                   'clone_median_s': c, 'ratio': ratio, 'module_nosync_s': unsynced,
                   'module_with_prune_s': pruning, 'pruned': pruned,
                   'noop_s': noop, 'noop_median_s': noop_median, 'breakdown_s': phases}
        if opts.output:
            with open(opts.output, 'w') as f:
                json.dump(figures, f, indent=2)
        return 0 if ratio <= RATIO_TARGET and noop_median < NOOP_TARGET else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
