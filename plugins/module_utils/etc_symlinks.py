# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plan and apply the links from a config checkout (layers) into /etc.

Everything is planned first (``build_plan``) and only then applied
(``apply_plan``): every refusal (bad input, secret, link escaping a layer,
conflict in ``error`` mode) is raised before the first write, so a refused run
changes nothing.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections
import errno
import os
import re
import shutil
import stat
import time

from ansible_collections.commons.infra.plugins.module_utils.atomic_link import (
    fsync_dir,
    is_temp_name,
    read_link,
    replace_symlink,
    temp_name,
)
from ansible_collections.commons.infra.plugins.module_utils.fs_rules import (
    PathMatcher,
    RunLock,
    fixed_prefix,
    glob_regex,
    has_magic,
    parents as _parents,
    parse_mode,
    resolve_id,
    within as _within,
)

CONFLICT_MODES = ('backup', 'error', 'replace')
STATES = ('link', 'capture')

# .git is skipped whatever the user passes: linking repository internals into /etc is never wanted.
ALWAYS_EXCLUDE = ('.git',)
DEFAULT_EXCLUDE = ['.git', '.gitignore', '.gitattributes', '.gitkeep', '*.swp', '*~', '.#*', 'README*']

# Precise on purpose: these must not trip over ordinary configs ("password =" lines are left to the user).
DEFAULT_SECRET_PATTERNS = [
    r'-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----',
    r'PuTTY-User-Key-File-[0-9]+:',
    r'\b(?:AKIA|ASIA)[0-9A-Z]{16}\b',
    r'(?i:aws_secret_access_key)\s*[=:]\s*["\']?[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])',
    r'\b(?:gh[pousr]_[A-Za-z0-9]{36,}|xox[abprs]-[A-Za-z0-9-]{10,})',
    # GitHub fine-grained personal access tokens; GitLab personal, deploy, runner, trigger... tokens.
    r'\bgithub_pat_[A-Za-z0-9_]{50,}',
    r'\bgl(?:pat|dt|rt|ptt|ft|cbt|imt|oas|soat|ffct|agent)-[A-Za-z0-9_-]{20,}',
    # WireGuard: the [Interface] key (a PublicKey line looks the same and is not matched).
    r'(?im:^\s*PrivateKey\s*=\s*[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=)',
    # ceph keyrings (/etc/ceph, /etc/pve/priv/ceph): "key = AQ...==", a 28-byte secret in base64.
    r'(?m:^\s*key\s*=\s*AQ[A-Za-z0-9+/]{36}==)',
    # crypt(3) hashes as in shadow, Proxmox's priv/shadow.cfg and htpasswd: md5, sha256/512,
    # bcrypt, yescrypt/gost-yescrypt, scrypt, Apache's apr1 and {SHA}.
    r'\$(?:1|5|6|apr1)\$(?:rounds=[0-9]+\$)?[./A-Za-z0-9]{1,16}\$[./A-Za-z0-9]{22,}',
    r'\$2[abxy]?\$[0-9]{2}\$[./A-Za-z0-9]{53}',
    r'\$(?:y|gy|7)\$[./A-Za-z0-9]+\$[./A-Za-z0-9]+\$[./A-Za-z0-9]{40,}',
    r'\{SHA\}[A-Za-z0-9+/]{27}=',
    # DER at the start of a file: PKCS#12 (version 3), PKCS#8 and PKCS#1 RSA private keys (version 0);
    # a DER certificate starts with a SEQUENCE, not a version, and is left alone.
    r'\A\x30\x82[\x00-\xff]{2}\x02\x01\x03\x30',
    r'\A\x30\x82[\x00-\xff]{2}\x02\x01\x00(?:\x30|\x02\x82)',
]

COPY_KEYS = ('path', 'owner', 'group', 'mode', 'private')
# Proxmox keeps its secrets (shadow.cfg, token.cfg, tfa.cfg, keys) in /etc/pve/priv: never captured.
PVE_PRIVATE = ('pve', 'priv')
SCAN_BYTES = 1024 * 1024
DIFF_TEXT_BYTES = 64 * 1024
DEFAULT_BACKUP_ROOT = '/var/backups/etc_symlinks'


class EtcSymlinksError(Exception):
    """Input or plan refused; raised before any change was made."""

    def __init__(self, errors):
        if isinstance(errors, str):
            errors = [errors]
        self.errors = list(errors)
        if len(self.errors) == 1:
            msg = '%s; nothing was changed' % self.errors[0]
        else:
            msg = '%d problems, nothing was changed: %s' % (len(self.errors), '; '.join(self.errors))
        super(EtcSymlinksError, self).__init__(msg)


class ApplyError(Exception):
    """A write failed part way; ``result`` says what was already done."""

    def __init__(self, msg, result):
        super(ApplyError, self).__init__(msg)
        self.result = result


# ---------------------------------------------------------------- helpers

class _Excluder(object):
    """Patterns without '/' apply to every path component, others to the relative path."""

    def __init__(self, patterns):
        patterns = list(patterns or []) + [p for p in ALWAYS_EXCLUDE if p not in (patterns or [])]
        self._names = [glob_regex(p) for p in patterns if '/' not in p]
        self._paths = [glob_regex(p) for p in patterns if '/' in p]

    def name(self, name, rel):
        if any(rx.match(name) for rx in self._names):
            return True
        return any(rx.match(rel) for rx in self._paths)

    def path(self, rel):
        parts = rel.split('/')
        for i, part in enumerate(parts):
            if self.name(part, '/'.join(parts[:i + 1])):
                return True
        return False


class CopySpec(object):
    def __init__(self, path, owner=None, group=None, mode=None, private=False):
        self.path = path
        self.owner = owner
        self.group = group
        self.mode = mode
        self.private = private


def normalize_copy_specs(raw):
    """Strings or dicts {path, owner, group, mode} -> [CopySpec]; raises EtcSymlinksError."""
    specs, errors = [], []
    for item in raw or []:
        if isinstance(item, str):
            item = {'path': item}
        if not isinstance(item, dict) or not item.get('path'):
            errors.append('copy entry %r needs a path' % (item,))
            continue
        unknown = set(item) - set(COPY_KEYS)
        if unknown:
            errors.append('copy entry %r: unknown keys %s' % (item['path'], ', '.join(sorted(unknown))))
            continue
        path = str(item['path'])
        if path.startswith('/') or '..' in path.split('/'):
            errors.append('copy path %r must be relative to the source layers, without ".."' % path)
            continue
        if not isinstance(item.get('private', False), bool):
            errors.append('copy entry %r: private must be true or false' % path)
            continue
        try:
            specs.append(CopySpec(path.strip('/'), resolve_id(item.get('owner'), 'owner'),
                                  resolve_id(item.get('group'), 'group'), parse_mode(item.get('mode')),
                                  item.get('private', False)))
        except ValueError as e:
            errors.append('copy entry %r: %s' % (path, e))
    if errors:
        raise EtcSymlinksError(errors)
    return specs


def compile_secret_patterns(patterns):
    if patterns is None:
        patterns = DEFAULT_SECRET_PATTERNS
    compiled, errors = [], []
    for p in patterns:
        try:
            compiled.append((p, re.compile(p.encode('utf-8'), re.MULTILINE)))
        except re.error as e:
            errors.append('secret pattern %r is not a valid regular expression: %s' % (p, e))
    if errors:
        raise EtcSymlinksError(errors)
    return _SecretPatterns(compiled)


class _SecretPatterns(list):
    """(text, regex) pairs, plus one regex of them all: every file is scanned on every run, and
    one search that finds nothing is most of the cost."""

    def __init__(self, compiled):
        super(_SecretPatterns, self).__init__(compiled)
        try:
            self.any = re.compile(b'|'.join(b'(?:' + rx.pattern + b')' for dummy, rx in compiled), re.MULTILINE)
        except re.error:
            self.any = None     # a pattern with global inline flags cannot be embedded: one by one


def _read_head(path, limit):
    with open(path, 'rb') as f:
        return f.read(limit)


def match_secret(data, patterns):
    """The first secret pattern found in ``data`` (bytes), else None."""
    if getattr(patterns, 'any', None) is not None and not patterns.any.search(data):
        return None
    for text, rx in patterns:
        if rx.search(data):
            return text
    return None


def find_secret(path, patterns, limit=SCAN_BYTES):
    """The first secret pattern matching the first ``limit`` bytes of ``path``, else None."""
    if not patterns:
        return None
    return match_secret(_read_head(path, limit), patterns)


def _describe(st, target=None, path=None):
    if st is None:
        return 'absent'
    if stat.S_ISLNK(st.st_mode):
        return 'link -> %s' % (target if target is not None else read_link(path))
    if stat.S_ISREG(st.st_mode):
        return 'regular file (%d bytes, mode %04o)' % (st.st_size, stat.S_IMODE(st.st_mode))
    if stat.S_ISDIR(st.st_mode):
        return 'directory'
    return 'special file (mode %o)' % st.st_mode


def _diff_text(data, path):
    if data is None:
        return ''
    if len(data) <= DIFF_TEXT_BYTES and b'\0' not in data:
        try:
            return data.decode('utf-8')
        except UnicodeDecodeError:
            pass
    return '<binary or large content of %s, %d bytes>\n' % (path, len(data))


def _lstat(path):
    try:
        return os.lstat(path)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        raise


# ---------------------------------------------------------------- options

class Options(object):
    """Validated module input. Raises EtcSymlinksError listing every problem."""

    def __init__(self, sources, dest='/etc', state='link', conflict='backup', conflict_overrides=None,
                 backup_dir=None, prune=True, copy=None, secret_patterns=None, exclude=None,
                 scan_bytes=SCAN_BYTES, lock_timeout=300):
        errors = []
        if isinstance(lock_timeout, bool) or not isinstance(lock_timeout, int) or lock_timeout < 0:
            errors.append('lock_timeout must be a number of seconds (0 or more), got %r' % (lock_timeout,))
        self.lock_timeout = lock_timeout
        if state not in STATES:
            errors.append('state must be one of %s, got %r' % (', '.join(STATES), state))
        if conflict not in CONFLICT_MODES:
            errors.append('conflict must be one of %s, got %r' % (', '.join(CONFLICT_MODES), conflict))
        self.state = state
        self.conflict = conflict
        self.prune = bool(prune)
        self.scan_bytes = scan_bytes
        self.exclude = DEFAULT_EXCLUDE if exclude is None else list(exclude)
        self.excluder = _Excluder(self.exclude)

        if not sources:
            errors.append('sources must list at least one directory')
        self.sources = []
        for src in sources or []:
            if not os.path.isabs(src):
                errors.append('source %r must be an absolute path' % src)
            elif not os.path.lexists(src):
                errors.append('source %s does not exist' % src)
            elif not os.path.isdir(src):
                errors.append('source %s is not a directory' % src)
            else:
                self.sources.append(os.path.normpath(src))
        self.sources_real = [os.path.realpath(s) for s in self.sources]

        if not os.path.isabs(dest or ''):
            errors.append('dest %r must be an absolute path' % (dest,))
            self.dest = self.dest_real = None
        elif not os.path.isdir(dest):
            errors.append('dest %s is not a directory' % dest if os.path.lexists(dest)
                          else 'dest %s does not exist' % dest)
            self.dest = self.dest_real = None
        else:
            self.dest = os.path.normpath(dest)
            self.dest_real = os.path.realpath(dest)

        for i, (src, real) in enumerate(zip(self.sources, self.sources_real)):
            if self.dest_real is not None:
                if _within(real, self.dest_real) or _within(src, self.dest):
                    errors.append('source %s is inside dest %s' % (src, self.dest))
                elif _within(self.dest_real, real) or _within(self.dest, src):
                    errors.append('dest %s is inside source %s' % (self.dest, src))
            for other, other_real in zip(self.sources[:i], self.sources_real[:i]):
                if real == other_real:
                    errors.append('source %s is listed twice (same directory as %s)' % (src, other))
                elif _within(real, other_real) or _within(other_real, real):
                    errors.append('sources %s and %s overlap (one is inside the other)' % (other, src))

        if backup_dir is None:
            backup_dir = os.path.join(DEFAULT_BACKUP_ROOT, time.strftime('%Y%m%dT%H%M%S'))
        if not os.path.isabs(backup_dir):
            errors.append('backup_dir %r must be an absolute path' % backup_dir)
            self.backup_dir = None
        else:
            self.backup_dir = os.path.normpath(backup_dir)
            bd_real = os.path.realpath(self.backup_dir)
            if self.dest_real is not None and _within(bd_real, self.dest_real):
                errors.append('backup_dir %s is inside dest %s' % (self.backup_dir, self.dest))
            for src, real in zip(self.sources, self.sources_real):
                if _within(bd_real, real):
                    errors.append('backup_dir %s is inside source %s' % (self.backup_dir, src))

        self.conflict_overrides = []
        for key, mode in (conflict_overrides or {}).items():
            if mode not in CONFLICT_MODES:
                errors.append('conflict_overrides[%r] must be one of %s, got %r'
                              % (key, ', '.join(CONFLICT_MODES), mode))
                continue
            if key.startswith('/'):
                if self.dest is None:
                    continue
                if not _within(os.path.normpath(key), self.dest):
                    errors.append('conflict_overrides key %r is not under dest %s' % (key, self.dest))
                    continue
                key = os.path.relpath(os.path.normpath(key), self.dest)
            self.conflict_overrides.append((key.strip('/'), mode))
        self._override_matcher = PathMatcher([key for key, mode in self.conflict_overrides])
        self._override_modes = dict(self.conflict_overrides)

        try:
            self.copy = normalize_copy_specs(copy)
        except EtcSymlinksError as e:
            errors.extend(e.errors)
            self.copy = []
        self._copy_matcher = PathMatcher([s.path for s in self.copy])
        self._copy_by_path = {}
        for s in self.copy:
            self._copy_by_path.setdefault(s.path, s)
        if self.state == 'capture' and not self.copy:
            errors.append('state=capture needs the copy paths to capture')

        try:
            self.secret_patterns = compile_secret_patterns(secret_patterns)
        except EtcSymlinksError as e:
            errors.extend(e.errors)
        if errors:
            raise EtcSymlinksError(errors)

    def conflict_mode(self, rel):
        pattern = self._override_matcher.best(rel) if self._override_matcher else None
        return self._override_modes[pattern] if pattern is not None else self.conflict

    def copy_spec(self, rel):
        pattern = self._copy_matcher.best(rel) if self._copy_matcher else None
        return self._copy_by_path[pattern] if pattern is not None else None

    def in_sources(self, path):
        """Whether an absolute, normalised path lies inside one of the layers."""
        for root in self.sources + self.sources_real:
            if _within(path, root):
                return True
        return False


# ---------------------------------------------------------------- planning

# st is the lstat of what is there now (None: absent); mode the conflict mode applied (None: no conflict).
DirFix = collections.namedtuple('DirFix', 'path mode st')
LinkAction = collections.namedtuple('LinkAction', 'dest target st mode')
CopyAction = collections.namedtuple('CopyAction', 'dest data spec st backup content')
Removal = collections.namedtuple('Removal', 'dest target')
Capture = collections.namedtuple('Capture', 'live target data mode newdirs')


class Plan(object):
    def __init__(self, opts):
        self.opts = opts
        self.stale = []        # temp leftovers of an interrupted run
        self.dir_fixes = []    # DirFix: a non-directory where a directory is needed
        self.mkdirs = []       # dest dirs to create, parents first
        self.links = []        # LinkAction
        self.copies = []       # CopyAction
        self.removals = []     # Removal
        self.captures = []     # Capture
        self.kept = []
        self.warnings = []
        self.created, self.updated, self.conflicts = [], [], []
        self.diff = []

    @property
    def changed(self):
        return bool(self.stale or self.dir_fixes or self.mkdirs or self.links or self.copies
                    or self.removals or self.captures)


def _walk_layer(opts, root, root_real, errors):
    """{rel: source path} for every file or symlink of one layer; dirs are walked, not followed."""
    files = {}
    stack = ['']
    while stack:
        reldir = stack.pop()
        try:
            it = os.scandir(os.path.join(root, reldir) if reldir else root)
        except OSError as e:
            errors.append('cannot read source directory %s: %s' % (os.path.join(root, reldir), e.strerror))
            continue
        with it:
            for entry in it:
                name = entry.name
                if is_temp_name(name):
                    continue
                rel = reldir + '/' + name if reldir else name
                if opts.excluder.name(name, rel):
                    continue
                if entry.is_symlink():
                    real = os.path.realpath(entry.path)
                    if not _within(real, root_real):
                        errors.append('source %s is a symlink to %s, outside its layer %s; refusing to follow it'
                                      % (entry.path, real, root))
                    elif real != root_real and opts.excluder.path(os.path.relpath(real, root_real)):
                        errors.append('source %s is a symlink to the excluded path %s' % (entry.path, real))
                    elif real == root_real:
                        errors.append('source %s is a symlink to its own layer root' % entry.path)
                    else:
                        files[rel] = entry.path
                elif entry.is_dir(follow_symlinks=False):
                    stack.append(rel)
                elif entry.is_file(follow_symlinks=False):
                    files[rel] = entry.path
                else:
                    errors.append('source %s is not a regular file, directory or symlink' % entry.path)
    return files


def _merge_layers(opts, errors):
    """rel -> (layer index, source path); later layers win."""
    merged = {}
    for i, (root, real) in enumerate(zip(opts.sources, opts.sources_real)):
        for rel, path in _walk_layer(opts, root, real, errors).items():
            merged[rel] = (i, path)
    dirs = set()
    for rel in merged:
        dirs.update(_parents(rel))
    for rel in sorted(dirs.intersection(merged)):
        errors.append('%s is a file in layer %s but a directory in another layer'
                      % (rel, opts.sources[merged[rel][0]]))
    return merged


class _DestState(object):
    """lstat cache: parent directories are shared by many files."""

    def __init__(self):
        self._cache = {}

    def lstat(self, path):
        if path not in self._cache:
            self._cache[path] = _lstat(path)
        return self._cache[path]


def _backup_path(opts, dest_path):
    return os.path.join(opts.backup_dir, os.path.relpath(dest_path, opts.dest))


def _symlinked_dir_problem(opts, p, copying):
    """For a symlink ``p`` to a directory that the sources pass through: None when it is followed
    (copies into a directory inside dest, as into /etc/pve's pmxcfs links), else why not.
    A link into the sources (an older whole-directory link to the checkout) returns False: it
    is a conflict like any other entry in the way."""
    target = os.path.normpath(os.path.join(os.path.dirname(p), os.readlink(p)))
    real = os.path.realpath(p)
    if opts.in_sources(target) or opts.in_sources(real):
        return False
    if not copying:
        return ('%s is a symlink to a directory (%s); etc_symlinks never replaces it and does not link '
                'through it: list the paths below it under copy, or remove the link' % (p, real))
    if not _within(real, opts.dest_real):
        return '%s is a symlink to %s, outside dest %s; refusing to copy through it' % (p, real, opts.dest)
    return None


def _plan_parents(plan, opts, state, rel, errors, fixed, copying=False):
    """Plan the directories above dest/rel; returns False if dest/rel cannot exist yet."""
    exists = True
    for prel in _parents(rel):
        p = os.path.join(opts.dest, prel)
        if p in fixed:
            exists = False
            continue
        if not exists:
            fixed.add(p)
            plan.mkdirs.append(p)
            continue
        st = state.lstat(p)
        if st is None:
            exists = False
            fixed.add(p)
            plan.mkdirs.append(p)
        elif stat.S_ISDIR(st.st_mode):
            continue
        elif stat.S_ISLNK(st.st_mode) and os.path.isdir(p) and \
                _symlinked_dir_problem(opts, p, copying) is not False:
            problem = _symlinked_dir_problem(opts, p, copying)
            if problem is None:
                continue
            if problem not in errors:
                errors.append(problem)
            return False
        else:
            mode = opts.conflict_mode(prel)
            fixed.add(p)
            plan.conflicts.append(p)
            if mode == 'error':
                errors.append('conflict: %s is a %s where a directory is needed (conflict mode error)'
                              % (p, _describe(st, path=p)))
            else:
                plan.dir_fixes.append(DirFix(p, mode, st))
                plan.mkdirs.append(p)
                plan.updated.append(p)
                plan.diff.append(_diff_entry(p, _describe(st, path=p), 'directory'))
            exists = False
    return exists


def _diff_entry(path, before, after):
    if not before.endswith('\n'):
        before += '\n'
    if not after.endswith('\n'):
        after += '\n'
    return {'before_header': path, 'after_header': path, 'before': before, 'after': after}


def _plan_link(plan, opts, state, rel, src, exists, errors):
    d = os.path.join(opts.dest, rel)
    st = state.lstat(d) if exists else None
    if st is None:
        plan.links.append(LinkAction(d, src, None, None))
        plan.created.append(d)
        plan.diff.append(_diff_entry(d, 'absent', 'link -> %s' % src))
        return
    if stat.S_ISLNK(st.st_mode):
        cur = os.readlink(d)
        if cur == src:
            plan.kept.append(d)
            return
        cur_abs = os.path.normpath(os.path.join(os.path.dirname(d), cur))
        if opts.in_sources(cur_abs):
            plan.links.append(LinkAction(d, src, st, None))
            plan.updated.append(d)
            plan.diff.append(_diff_entry(d, 'link -> %s' % cur, 'link -> %s' % src))
            return
    elif stat.S_ISDIR(st.st_mode):
        errors.append('%s is a directory, cannot link %s there (directories are never replaced)' % (d, src))
        return
    mode = opts.conflict_mode(rel)
    plan.conflicts.append(d)
    before = _describe(st, path=d)
    if mode == 'error':
        errors.append('conflict: %s is a %s, not a link into the sources (conflict mode error)' % (d, before))
        return
    plan.links.append(LinkAction(d, src, st, mode))
    plan.updated.append(d)
    plan.diff.append(_diff_entry(d, before, 'link -> %s' % src + (
        ' (previous %s backed up to %s)' % (before, _backup_path(opts, d)) if mode == 'backup' else '')))


def _plan_copy(plan, opts, state, rel, src, spec, exists, errors):
    d = os.path.join(opts.dest, rel)
    if not os.path.isfile(src):
        errors.append('copy source %s is not a regular file' % src)
        return
    try:
        data = _read_head(src, os.path.getsize(src) + 1)
    except OSError as e:
        errors.append('cannot read %s: %s' % (src, e.strerror))
        return
    st = state.lstat(d) if exists else None
    want = 'copy of %s' % src
    if st is None:
        plan.copies.append(CopyAction(d, data, spec, None, False, True))
        plan.created.append(d)
        plan.diff.append(_diff_entry(d, '', _diff_text(data, src)))
        return
    if stat.S_ISREG(st.st_mode):
        try:
            cur = _read_head(d, st.st_size + 1) if st.st_size == len(data) else None
        except OSError as e:
            errors.append('cannot read %s: %s' % (d, e.strerror))
            return
        same = cur == data
        meta_ok = ((spec.owner is None or st.st_uid == spec.owner)
                   and (spec.group is None or st.st_gid == spec.group)
                   and (spec.mode is None or stat.S_IMODE(st.st_mode) == spec.mode))
        if same and meta_ok:
            plan.kept.append(d)
            return
        # A managed copy that differs is overwritten; keep the old content unless told to replace.
        backup = not same and opts.conflict_mode(rel) != 'replace'
        plan.copies.append(CopyAction(d, data, spec, st, backup, not same))
        plan.updated.append(d)
        if same:
            uid = st.st_uid if spec.owner is None else spec.owner
            gid = st.st_gid if spec.group is None else spec.group
            mode = stat.S_IMODE(st.st_mode) if spec.mode is None else spec.mode
            plan.diff.append(_diff_entry(
                d, 'owner %d group %d mode %04o' % (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)),
                'owner %d group %d mode %04o' % (uid, gid, mode)))
        else:
            try:
                before = _diff_text(_read_head(d, DIFF_TEXT_BYTES + 1), d)
            except OSError:
                before = _describe(st, path=d)
            plan.diff.append(_diff_entry(d, before, _diff_text(data, src)))
        return
    if stat.S_ISDIR(st.st_mode):
        errors.append('%s is a directory, cannot copy %s there (directories are never replaced)' % (d, src))
        return
    if stat.S_ISLNK(st.st_mode):
        cur_abs = os.path.normpath(os.path.join(os.path.dirname(d), os.readlink(d)))
        if opts.in_sources(cur_abs):
            # Formerly linked, now copied: the link is ours, replace it without a backup.
            plan.copies.append(CopyAction(d, data, spec, st, False, True))
            plan.updated.append(d)
            plan.diff.append(_diff_entry(d, _describe(st, path=d), want))
            return
    mode = opts.conflict_mode(rel)
    plan.conflicts.append(d)
    if mode == 'error':
        errors.append('conflict: %s is a %s, not a managed copy (conflict mode error)' % (d, _describe(st, path=d)))
        return
    plan.copies.append(CopyAction(d, data, spec, st, mode == 'backup', True))
    plan.updated.append(d)
    plan.diff.append(_diff_entry(d, _describe(st, path=d), want))


def _walk_dest(opts, visited):
    """Yield (path, is_symlink, name) for entries of dest, not following links nor crossing mounts."""
    root_dev = os.stat(opts.dest).st_dev  # dest itself may be a link to the real directory
    stack = [opts.dest]
    while stack:
        d = stack.pop()
        try:
            it = os.scandir(d)
        except OSError:
            continue
        visited.add(d)
        with it:
            for entry in it:
                if entry.is_symlink():
                    yield entry.path, True, entry.name
                elif entry.is_dir(follow_symlinks=False):
                    try:
                        if entry.stat(follow_symlinks=False).st_dev != root_dev:
                            continue
                    except OSError:
                        continue
                    stack.append(entry.path)
                else:
                    yield entry.path, False, entry.name


def _plan_stale_and_prune(plan, opts, planned, planned_dirs):
    stale = set()
    visited = set()
    if opts.prune:
        for path, is_link, name in _walk_dest(opts, visited):
            if is_temp_name(name):
                stale.add(path)
                continue
            if not is_link or path in planned:
                continue
            target = read_link(path)
            if target is None:
                continue
            target_abs = os.path.normpath(os.path.join(os.path.dirname(path), target))
            if opts.in_sources(target_abs) and not os.path.lexists(target_abs):
                plan.removals.append(Removal(path, target))
                plan.diff.append(_diff_entry(path, 'link -> %s (source gone)' % target, 'absent'))
    # Temps can only be where links are switched: look there when the walk did not (no prune, other mounts).
    for d in planned_dirs - visited:
        try:
            names = os.listdir(d)
        except OSError:
            continue
        for name in names:
            path = os.path.join(d, name)
            # Only links and files are ever made under temp names; a directory is someone else's.
            if is_temp_name(name) and (os.path.islink(path) or not os.path.isdir(path)):
                stale.add(path)
    plan.stale = sorted(stale)


def _plan_link_state(opts, plan, errors):
    merged = _merge_layers(opts, errors)
    state = _DestState()
    fixed = set()
    planned = set()
    planned_dirs = set([opts.dest])
    for rel in sorted(merged):
        src = merged[rel][1]
        d = os.path.join(opts.dest, rel)
        planned.add(d)
        planned_dirs.add(os.path.dirname(d))
        spec = opts.copy_spec(rel)
        if os.path.isfile(src):
            try:
                hit = find_secret(src, opts.secret_patterns, opts.scan_bytes)
            except OSError as e:
                errors.append('cannot read source %s: %s' % (src, e.strerror))
                continue
            if hit:
                errors.append('refusing to %s %s: its content matches the secret pattern %r'
                              % ('copy' if spec else 'link', src, hit))
                continue
        exists = _plan_parents(plan, opts, state, rel, errors, fixed, spec is not None)
        if spec is not None:
            _plan_copy(plan, opts, state, rel, src, spec, exists, errors)
        else:
            _plan_link(plan, opts, state, rel, src, exists, errors)
    _plan_stale_and_prune(plan, opts, planned, planned_dirs)


def pve_private(rel, dest):
    """Whether ``rel`` (relative to ``dest``) lies under priv/ of a Proxmox /etc/pve tree."""
    parts = rel.split('/')
    if os.path.basename(dest.rstrip('/')) == PVE_PRIVATE[0]:
        parts = [PVE_PRIVATE[0]] + parts
    for i, part in enumerate(parts):
        if part == PVE_PRIVATE[0] and PVE_PRIVATE[1] in parts[i + 1:-1]:
            return True
    return False


def _capture_candidates(opts, plan, merged, errors):
    """rel paths to capture: copy paths found in the layers or live under dest. A directory of
    dest that is a symlink (/etc/pve's qemu-server, lxc, local) is followed when it stays in dest."""
    rels = set(rel for rel in merged if opts.copy_spec(rel) is not None)
    skipped_private = set()
    for spec in opts.copy:
        fixed = fixed_prefix(spec.path)
        if not has_magic(spec.path):
            if pve_private(spec.path + '/x', opts.dest):
                errors.append('copy entry %r is under priv/ of a Proxmox tree, which is never captured' % spec.path)
                continue
            if not os.path.isdir(os.path.join(opts.dest, spec.path)):
                rels.add(spec.path)
                continue
        top = os.path.join(opts.dest, *fixed) if fixed else opts.dest
        if not os.path.isdir(top):
            continue
        if os.path.islink(top) and not _within(os.path.realpath(top), opts.dest_real):
            plan.warnings.append('capture: %s is a symlink to %s, outside dest; not followed'
                                 % (top, os.path.realpath(top)))
            continue
        for dirpath, dirnames, filenames in os.walk(top):
            reldir = os.path.relpath(dirpath, opts.dest)
            for name in list(dirnames):
                rel = os.path.join(reldir, name) if reldir != '.' else name
                if pve_private(rel + '/x', opts.dest):
                    dirnames.remove(name)
                    skipped_private.add(os.path.join(dirpath, name))
            for name in filenames:
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, opts.dest)
                if is_temp_name(name) or opts.excluder.path(rel):
                    continue
                if opts.copy_spec(rel) is not None and os.path.isfile(full) and not os.path.islink(full):
                    rels.add(rel)
    for path in sorted(skipped_private):
        plan.warnings.append('capture: %s is priv/ of a Proxmox tree; nothing under it is ever captured' % path)
    return sorted(rel for rel in rels if not pve_private(rel, opts.dest))


def _plan_capture_state(opts, plan, errors):
    merged = _merge_layers(opts, errors)
    for rel in _capture_candidates(opts, plan, merged, errors):
        live = os.path.join(opts.dest, rel)
        st = _lstat(live)
        if st is None or not stat.S_ISREG(st.st_mode):
            plan.warnings.append('capture: %s is %s, nothing to capture' % (live, _describe(st, path=live)))
            continue
        if not st.st_mode & stat.S_IROTH and not opts.copy_spec(rel).private:
            plan.warnings.append('capture: %s is not world-readable (mode %04o), so it is not captured; '
                                 'set private: true on its copy entry to capture it with that mode'
                                 % (live, stat.S_IMODE(st.st_mode)))
            continue
        layer = merged[rel][0] if rel in merged else len(opts.sources) - 1
        root, root_real = opts.sources[layer], opts.sources_real[layer]
        target = os.path.join(root, rel)
        try:
            data = _read_head(live, st.st_size + 1)
        except OSError as e:
            errors.append('cannot read %s: %s' % (live, e.strerror))
            continue
        hit = match_secret(data[:opts.scan_bytes], opts.secret_patterns)
        if hit:
            errors.append('refusing to capture %s into %s: its content matches the secret pattern %r'
                          % (live, target, hit))
            continue
        # The path written must stay a plain file inside the layer: no writing through links.
        newdirs = []
        bad = False
        for prel in _parents(rel):
            p = os.path.join(root, prel)
            pst = _lstat(p)
            if pst is None:
                newdirs.append(p)
            elif not stat.S_ISDIR(pst.st_mode):
                errors.append('cannot capture %s: %s in the layer is not a directory' % (live, p))
                bad = True
                break
        if bad:
            continue
        tst = None if newdirs else _lstat(target)
        if tst is not None and not stat.S_ISREG(tst.st_mode):
            errors.append('cannot capture %s: %s is a %s, not a regular file' % (live, target, _describe(tst, path=target)))
            continue
        if not _within(os.path.realpath(os.path.dirname(target)) if not newdirs else root_real, root_real):
            errors.append('cannot capture %s: %s resolves outside its layer' % (live, target))
            continue
        old = None
        if tst is not None:
            old = _read_head(target, tst.st_size + 1)
            if old == data:
                plan.kept.append(live)
                continue
        # The checkout keeps the live mode: a file private on the host stays private there.
        plan.captures.append(Capture(live, target, data, stat.S_IMODE(st.st_mode) & 0o777, newdirs))
        plan.diff.append({'before_header': target, 'after_header': '%s (from %s)' % (target, live),
                          'before': _diff_text(old, target), 'after': _diff_text(data, live)})


def build_plan(opts):
    """Compute every action; raises EtcSymlinksError (listing all problems) before any write."""
    plan = Plan(opts)
    errors = []
    if opts.state == 'capture':
        _plan_capture_state(opts, plan, errors)
    else:
        _plan_link_state(opts, plan, errors)
    if errors:
        raise EtcSymlinksError(errors)
    return plan


# ---------------------------------------------------------------- applying

def _unique(path):
    candidate, n = path, 0
    while os.path.lexists(candidate):
        n += 1
        candidate = '%s.%d' % (path, n)
    return candidate


def _make_backup(opts, path, st):
    """Copy ``path`` (file or link) into backup_dir, leaving the original in place."""
    target = _unique(_backup_path(opts, path))
    parent = os.path.dirname(target)
    if not os.path.isdir(opts.backup_dir):
        os.makedirs(opts.backup_dir, mode=0o700)
    if not os.path.isdir(parent):
        os.makedirs(parent, mode=0o700)
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(path), target)
        return target
    try:
        # A hard link keeps owner, mode and times for free; the dest entry is then swapped atomically.
        os.link(path, target)
    except OSError:
        if not stat.S_ISREG(st.st_mode):
            raise
        shutil.copy2(path, target)
        os.chown(target, st.st_uid, st.st_gid)
    return target


def _write_copy(dest, data, spec, st):
    """Write ``data`` to a temp file beside ``dest`` and rename it over: readers never see a partial file."""
    keep_meta = st is not None and stat.S_ISREG(st.st_mode)
    mode = spec.mode if spec.mode is not None else (stat.S_IMODE(st.st_mode) if keep_meta else 0o644)
    tmp = temp_name(dest)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            # Explicit: os.open's mode passes through the umask (077 would make a 0644 file 0600).
            os.fchmod(fd, mode)
            uid = spec.owner if spec.owner is not None else (st.st_uid if keep_meta else -1)
            gid = spec.group if spec.group is not None else (st.st_gid if keep_meta else -1)
            if uid != -1 or gid != -1:
                try:
                    os.fchown(fd, uid, gid)
                except OSError:
                    # Preserving the old owner is best effort (pmxcfs refuses chown); asked-for ones are not.
                    if spec.owner is not None or spec.group is not None:
                        raise
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _set_meta(path, spec):
    if spec.owner is not None or spec.group is not None:
        os.chown(path, -1 if spec.owner is None else spec.owner, -1 if spec.group is None else spec.group,
                 follow_symlinks=False)
    if spec.mode is not None:
        os.chmod(path, spec.mode)


def _mkdir(path, mode=0o755):
    os.mkdir(path, mode)
    os.chmod(path, mode)    # whatever the umask


def _remove_path(path, st):
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(path)
    os.unlink(path)


def apply_plan(plan):
    """Carry out a plan; returns {dest: backup path}. Raises ApplyError with what was done."""
    opts = plan.opts
    done = {'backups': {}, 'cleaned': [], 'created': [], 'updated': [], 'removed': [], 'copied': [],
            'captured': [], 'captured_sources': []}
    touched = set()
    try:
        for path in plan.stale:
            st = _lstat(path)
            if st is None:
                continue
            if stat.S_ISLNK(st.st_mode) or stat.S_ISREG(st.st_mode):
                os.unlink(path)
            done['cleaned'].append(path)

        fixes = dict((f.path, f) for f in plan.dir_fixes)
        for d in plan.mkdirs:
            if d in fixes:
                if fixes[d].mode == 'backup':
                    done['backups'][d] = _make_backup(opts, d, fixes[d].st)
                _remove_path(d, fixes[d].st)
                done['updated'].append(d)
            try:
                _mkdir(d)
            except OSError as e:
                if e.errno != errno.EEXIST or not os.path.isdir(d):
                    raise

        for a in plan.links:
            if a.mode == 'backup':
                done['backups'][a.dest] = _make_backup(opts, a.dest, a.st)
            replace_symlink(a.target, a.dest, sync=False)
            touched.add(os.path.dirname(a.dest))
            done['created' if a.st is None else 'updated'].append(a.dest)

        for a in plan.copies:
            if a.backup:
                done['backups'][a.dest] = _make_backup(opts, a.dest, a.st)
            if a.content:
                _write_copy(a.dest, a.data, a.spec, a.st)
            else:
                _set_meta(a.dest, a.spec)
            touched.add(os.path.dirname(a.dest))
            done['copied'].append(a.dest)

        for a in plan.removals:
            # Re-check: only a link still pointing at the vanished source is removed.
            if read_link(a.dest) == a.target:
                os.unlink(a.dest)
                touched.add(os.path.dirname(a.dest))
                done['removed'].append(a.dest)

        for a in plan.captures:
            for nd in a.newdirs:
                if not os.path.isdir(nd):
                    _mkdir(nd)
            _write_copy(a.target, a.data, CopySpec(a.target, mode=a.mode), None)
            touched.add(os.path.dirname(a.target))
            done['captured'].append(a.live)
            done['captured_sources'].append(a.target)
    except (OSError, IOError) as e:
        raise ApplyError('failed after %d change(s): %s' % (
            sum(len(v) for k, v in done.items() if k != 'backups'), e), done)
    for d in sorted(touched):
        try:
            fsync_dir(d)
        except OSError:
            pass
    return done


def run(opts, check_mode=False, diff=False):
    """Plan, apply unless ``check_mode``, and build the module result.

    A run that may write holds an flock on dest (through a read-only descriptor: nothing is
    written for it) from planning to the end, so two runs never plan on the same state or
    remove each other's temporary files; check mode only reads and takes no lock."""
    if check_mode:
        plan = build_plan(opts)
        planned = ([a.dest for a in plan.links if a.mode == 'backup'] + [a.dest for a in plan.copies if a.backup]
                   + [f.path for f in plan.dir_fixes if f.mode == 'backup'])
        backups = dict((d, _unique(_backup_path(opts, d))) for d in planned)
        return _result(opts, plan, backups, diff)
    with RunLock(opts.dest, opts.lock_timeout, directory=True, error=EtcSymlinksError):
        plan = build_plan(opts)
        backups = apply_plan(plan)['backups'] if plan.changed else {}
    return _result(opts, plan, backups, diff)


def _result(opts, plan, backups, diff):
    copied = sorted(a.dest for a in plan.copies)
    copied_set = set(copied)
    created = sorted(p for p in plan.created if p not in copied_set)
    updated = sorted(p for p in plan.updated if p not in copied_set)
    removed = sorted(a.dest for a in plan.removals)
    result = {
        'changed': plan.changed,
        'created': created,
        'updated': updated,
        'removed': removed,
        'copied': copied,
        'captured': sorted(a.live for a in plan.captures),
        'captured_sources': sorted(a.target for a in plan.captures),
        'backed_up': sorted(backups),
        'backups': backups,
        'backup_dir': opts.backup_dir if backups else None,
        'conflicts': sorted(plan.conflicts),
        'kept': sorted(plan.kept),
        'cleaned': plan.stale,
        'dirs_created': list(plan.mkdirs),
        'changed_paths': sorted(set(created) | set(updated) | set(removed) | copied_set),
        'warnings': plan.warnings,
    }
    if diff:
        result['diff'] = plan.diff
    return result
