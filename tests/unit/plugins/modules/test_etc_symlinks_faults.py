# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""SIGKILL the etc_symlinks module while it switches 2,000 links; no path may ever go missing.

Each run flips the layer order ([A, B] <-> [B, A]), so every link is replaced. The process is killed at a
random moment between 0 and the measured duration of a full run; after every kill each destination must
be a symlink to either its A or its B file, and a reader thread checks the same thing all along. Finally
a clean run must converge and clean up the temporary links the kills left behind.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import random
import subprocess
import sys
import threading
import time

from ansible_collections.commons.infra.plugins.module_utils.atomic_link import is_temp_name

MODULE = 'ansible_collections.commons.infra.plugins.modules.etc_symlinks'
PYPATH = next(p for p in sys.path if os.path.isdir(os.path.join(p or '.', 'ansible_collections', 'commons', 'infra')))
FILES = 2000
MIN_KILLS = 100
MAX_ATTEMPTS = 400


def _args_file(tmp_path, name, first, second, dest):
    path = tmp_path / name
    path.write_text(json.dumps({'ANSIBLE_MODULE_ARGS': {
        'sources': [first, second], 'dest': dest, 'conflict': 'error', 'backup_dir': str(tmp_path / 'bk')}}))
    return str(path)


def _start(args_file):
    return subprocess.Popen([sys.executable, '-m', MODULE, args_file], env=dict(os.environ, PYTHONPATH=PYPATH),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _run(args_file):
    proc = _start(args_file)
    out, err = proc.communicate(timeout=120)
    result = json.loads(out.decode('utf-8'))
    assert not result.get('failed'), result
    return result


class Reader(threading.Thread):
    """Keeps reading every destination link while the module runs; records any gap."""

    def __init__(self, dests):
        super(Reader, self).__init__(daemon=True)
        self.dests = dests
        self.stop = threading.Event()
        self.missing = []
        self.passes = 0

    def run(self):
        while not self.stop.is_set():
            for d in self.dests:
                try:
                    os.readlink(d)
                except OSError as e:
                    self.missing.append((d, e.errno))
            self.passes += 1
            time.sleep(0.004)  # about half duty: leave the module most of the second core


def _targets(dests):
    return [os.readlink(d) if os.path.islink(d) else None for d in dests]


def test_sigkill_never_leaves_a_path_missing(tmp_path, capsys):
    layer_a, layer_b, dest = str(tmp_path / 'A'), str(tmp_path / 'B'), str(tmp_path / 'etc')
    rels = ['d%02d/f%04d.conf' % (i % 40, i) for i in range(FILES)]
    for layer in (layer_a, layer_b):
        for rel in rels:
            path = os.path.join(layer, rel)
            if not os.path.isdir(os.path.dirname(path)):
                os.makedirs(os.path.dirname(path))
            with open(path, 'w') as f:
                f.write('%s %s\n' % (layer, rel))
    os.makedirs(dest)
    dests = [os.path.join(dest, rel) for rel in rels]
    want = {
        'A': [os.path.join(layer_a, rel) for rel in rels],
        'B': [os.path.join(layer_b, rel) for rel in rels],
    }
    to = {'A': _args_file(tmp_path, 'to_a.json', layer_b, layer_a, dest),
          'B': _args_file(tmp_path, 'to_b.json', layer_a, layer_b, dest)}

    assert len(_run(to['A'])['created']) == FILES
    started = time.time()
    assert len(_run(to['B'])['updated']) == FILES
    duration = time.time() - started
    assert _targets(dests) == want['B']

    reader = Reader(dests)
    reader.start()
    rng = random.Random(int(os.environ.get('ETC_SYMLINKS_FAULT_SEED', '0')) or None)
    kills = mid_run = before_any = finished = attempts = 0
    direction = 'A'
    try:
        while kills < MIN_KILLS and attempts < MAX_ATTEMPTS:
            attempts += 1
            before = _targets(dests)
            proc = _start(to[direction])
            time.sleep(rng.uniform(0, duration))
            if proc.poll() is None:
                proc.kill()
                kills += 1
            else:
                finished += 1
            proc.communicate()
            after = _targets(dests)
            # Every path is still a link, to its old or its new file, whatever the moment of the kill.
            for d, target, a, b in zip(dests, after, want['A'], want['B']):
                assert os.path.lexists(d) and os.path.islink(d), d
                assert target in (a, b), (d, target)
            switched = sum(1 for x, y in zip(before, after) if x != y)
            needed = sum(1 for x, w in zip(before, want[direction]) if x != w)
            if proc.returncode == -9:
                if 0 < switched < needed:
                    mid_run += 1
                elif switched == 0:
                    before_any += 1
            direction = 'B' if direction == 'A' else 'A'
    finally:
        reader.stop.set()
        reader.join()

    assert reader.missing == [], reader.missing[:10]
    assert kills >= MIN_KILLS, (kills, attempts)
    assert mid_run > 0, 'no kill landed while links were being switched'

    # Converges: one clean run fixes everything and removes the temporary links the kills left.
    result = _run(to[direction])
    assert _targets(dests) == want[direction]
    leftovers = [n for walked in os.walk(dest) for n in walked[2] if is_temp_name(n)]
    assert leftovers == []
    again = _run(to[direction])
    assert again['changed'] is False and again['cleaned'] == []

    with capsys.disabled():
        print('\netc_symlinks fault test: %d files, full run %.3fs, %d attempts, %d SIGKILLs '
              '(%d mid-switch, %d before any change, rest after the switch), %d runs finished first; '
              'reader made %d passes, 0 missing; convergence run cleaned %d stale temps, updated %d'
              % (FILES, duration, attempts, kills, mid_run, before_any, finished, reader.passes,
                 len(result['cleaned']), len(result['updated'])))
