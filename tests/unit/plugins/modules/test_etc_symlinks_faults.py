# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""SIGKILL the etc_symlinks module while it links, creates, copies and backs up 2,000 paths.

Each run flips the layer order ([A, B] <-> [B, A]), so every link is replaced and every copy
rewritten; before each run some links are deleted (the run creates them again) and some are
replaced by hand-made files (conflict=backup keeps them under backup_dir, then replaces them).
The module runs in its own process group, as on a host, and the group is killed at a random
moment between 0 and the measured duration of a full run. After every kill:

- every linked path is a link to its A or its B file, or a hand-made file not replaced yet;
- every copy is complete, with the A or the B content, never a partial file;
- no hand-made file is lost: each one replaced by a link is in backup_dir, byte for byte;

and a reader thread checks the linked and copied paths all along. Finally one clean run
converges and removes every temporary file the kills left.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

from ansible_collections.commons.infra.plugins.module_utils.atomic_link import is_temp_name

MODULE = 'ansible_collections.commons.infra.plugins.modules.etc_symlinks'
PYPATH = next(p for p in sys.path if os.path.isdir(os.path.join(p or '.', 'ansible_collections', 'commons', 'infra')))
FILES = 2000
DIRS = 40
LINKED = range(0, 28)       # d00-d27: links that flip; hand-made files are planted here
CREATED = range(28, 39)     # d28-d38: links some of which are deleted before each run
COPIED = range(39, 40)      # d39: copies whose content flips (each one is fsync'ed: kept few)
PLANT = 10                  # hand-made files planted before each run
DELETE = 25                 # links deleted before each run
MIN_KILLS = 100
MAX_ATTEMPTS = 400


def _args_file(tmp_path, name, first, second, dest):
    path = tmp_path / name
    path.write_text(json.dumps({'ANSIBLE_MODULE_ARGS': {
        'sources': [first, second], 'dest': dest, 'conflict': 'backup', 'backup_dir': str(tmp_path / 'bk'),
        # Copies are rewritten on every flip; backing each one up would only fill backup_dir.
        'copy': ['d39'], 'conflict_overrides': {'d39': 'replace'}}}))
    return str(path)


def _start(args_file):
    return subprocess.Popen([sys.executable, '-m', MODULE, args_file], env=dict(os.environ, PYTHONPATH=PYPATH),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def _run(args_file):
    proc = _start(args_file)
    out, err = proc.communicate(timeout=120)
    result = json.loads(out.decode('utf-8'))
    assert not result.get('failed'), result
    return result


def _content(path):
    try:
        with open(path) as f:
            return f.read()
    except (IOError, OSError):
        return None


def _state(path):
    """('link', target), ('file', content) or None, as seen at one moment: a file that became
    a link between the two looks is looked at again, not read through the new link."""
    while True:
        try:
            return ('link', os.readlink(path))
        except OSError as e:
            if e.errno == errno.ENOENT:
                return None
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError as e:
            if e.errno == errno.ELOOP:
                continue
            if e.errno == errno.ENOENT:
                return None
            raise
        with os.fdopen(fd) as f:
            return ('file', f.read())


class Reader(threading.Thread):
    """Keeps reading the linked and copied paths while the module runs; records any bad sight."""

    def __init__(self, valid):
        super(Reader, self).__init__(daemon=True)
        self.valid = valid          # path -> predicate over _state(path)
        self.stop = threading.Event()
        self.bad = []
        self.passes = 0

    def run(self):
        while not self.stop.is_set():
            for path, ok in self.valid.items():
                seen = _state(path)
                if not ok(seen):
                    self.bad.append((path, seen))
            self.passes += 1
            time.sleep(0.004)  # about half duty: leave the module most of the second core


def test_sigkill_never_leaves_a_path_missing_partial_or_lost(tmp_path, capsys):
    layer_a, layer_b, dest = str(tmp_path / 'A'), str(tmp_path / 'B'), str(tmp_path / 'etc')
    rels = ['d%02d/f%04d.conf' % (i % DIRS, i) for i in range(FILES)]
    group = dict((rel, int(rel[1:3])) for rel in rels)
    for layer in (layer_a, layer_b):
        for rel in rels:
            path = os.path.join(layer, rel)
            if not os.path.isdir(os.path.dirname(path)):
                os.makedirs(os.path.dirname(path))
            with open(path, 'w') as f:
                f.write(('%s %s\n' % (layer, rel)) * 20)
    os.makedirs(dest)
    d = dict((rel, os.path.join(dest, rel)) for rel in rels)
    links = dict((layer, dict((rel, os.path.join(layer, rel)) for rel in rels)) for layer in (layer_a, layer_b))
    contents = dict((layer, dict((rel, ('%s %s\n' % (layer, rel)) * 20) for rel in rels)) for layer in (layer_a, layer_b))
    to = {'A': _args_file(tmp_path, 'to_a.json', layer_b, layer_a, dest),
          'B': _args_file(tmp_path, 'to_b.json', layer_a, layer_b, dest)}
    layer_of = {'A': layer_a, 'B': layer_b}

    def valid_state(rel, seen, planted):
        if group[rel] in COPIED:
            return seen in (('file', contents[layer_a][rel]), ('file', contents[layer_b][rel]))
        if seen in (('link', links[layer_a][rel]), ('link', links[layer_b][rel])):
            return True
        if seen is None:
            return group[rel] in CREATED
        return planted.get(rel) is not None and seen == ('file', planted[rel])

    def wanted(rel, direction):
        layer = layer_of[direction]
        return ('file', contents[layer][rel]) if group[rel] in COPIED else ('link', links[layer][rel])

    _run(to['A'])
    started = time.monotonic()
    _run(to['B'])
    duration = time.monotonic() - started

    planted, lost = {}, []
    watched = [rel for rel in rels if group[rel] not in CREATED]
    reader = Reader(dict((d[rel], lambda seen, rel=rel: valid_state(rel, seen, planted)) for rel in watched))
    seed = int(os.environ.get('ETC_SYMLINKS_FAULT_SEED') or time.time())
    rng = random.Random(seed)
    with capsys.disabled():
        print('\netc_symlinks fault test: seed %d (replay with ETC_SYMLINKS_FAULT_SEED=%d)' % (seed, seed))
    reader.start()
    kills = mid_run = before_any = finished = attempts = planted_total = 0
    direction = 'A'
    try:
        while kills < MIN_KILLS and attempts < MAX_ATTEMPTS:
            attempts += 1
            # Hand-made files in the way, and links gone, for this run to back up and to create.
            for rel in rng.sample([r for r in rels if group[r] in LINKED and r not in planted], PLANT):
                planted[rel] = 'hand-made %s in attempt %d\n' % (rel, attempts)
                tmp = d[rel] + '.planting'
                with open(tmp, 'w') as f:
                    f.write(planted[rel])
                os.rename(tmp, d[rel])      # readers see the link or the whole file
                planted_total += 1
            present = [r for r in rels if group[r] in CREATED and os.path.lexists(d[r])]
            for rel in rng.sample(present, min(DELETE, len(present))):
                os.unlink(d[rel])
            before = dict((rel, _state(d[rel])) for rel in rels)
            want = dict((rel, wanted(rel, direction)) for rel in rels)
            proc = _start(to[direction])
            time.sleep(rng.uniform(0, duration))
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                kills += 1
            else:
                finished += 1
            proc.communicate()
            after = dict((rel, _state(d[rel])) for rel in rels)
            for rel in rels:
                assert valid_state(rel, after[rel], planted), (rel, after[rel])
            # No hand-made file is lost: once replaced, it is in backup_dir byte for byte.
            for rel in [r for r in planted if after[r] != ('file', planted[r])]:
                base = os.path.join(str(tmp_path / 'bk'), rel)
                kept = [n for n in os.listdir(os.path.dirname(base)) if n.split('.conf')[0] + '.conf' == os.path.basename(base)]
                if not any(_content(os.path.join(os.path.dirname(base), n)) == planted[rel] for n in kept):
                    lost.append(rel)
                del planted[rel]
            changed = sum(1 for rel in rels if after[rel] != before[rel])
            needed = sum(1 for rel in rels if before[rel] != want[rel])
            if proc.returncode == -signal.SIGKILL:
                if 0 < changed < needed:
                    mid_run += 1
                elif changed == 0:
                    before_any += 1
            direction = 'B' if direction == 'A' else 'A'
    finally:
        reader.stop.set()
        reader.join()

    assert reader.bad == [], reader.bad[:10]
    assert lost == [], lost[:10]
    assert kills >= MIN_KILLS, (kills, attempts)
    assert mid_run > 0, 'no kill landed after changes began and before the run finished (seed %d)' % seed

    # Converges: one clean run fixes everything and removes the temporary files the kills left.
    result = _run(to[direction])
    for rel in rels:
        assert _state(d[rel]) == wanted(rel, direction), rel
    leftovers = [n for walked in os.walk(dest) for n in walked[2] if is_temp_name(n)]
    assert leftovers == []
    again = _run(to[direction])
    assert again['changed'] is False and again['cleaned'] == []

    with capsys.disabled():
        print('etc_symlinks fault test: seed %d, %d files (%d linked, %d created again, %d copied), full run %.3fs, '
              '%d attempts, %d SIGKILLs to the process group (%d after changes began and before the end, %d before '
              'any change, rest after the last change), %d runs finished first; %d hand-made files planted, none lost; '
              'reader made %d passes, 0 bad sights; convergence run cleaned %d stale temps'
              % (seed, FILES, sum(1 for r in rels if group[r] in LINKED), sum(1 for r in rels if group[r] in CREATED),
                 sum(1 for r in rels if group[r] in COPIED), duration, attempts, kills, mid_run, before_any, finished,
                 planted_total, reader.passes, len(result['cleaned'])))
