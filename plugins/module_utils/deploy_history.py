# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hash-binned releases of a service with an append-only deploy history.

Layout under ``<root>/deploys/<service>/``::

    <release>/                 one complete release (a commit id or a content hash)
    .<release>.partial/        a release being built; holds MARKER_NAME
    .<release>.removing/       a release being deleted (already invisible)
    .mirror.git/               bare mirror used to fetch git sources
    history.jsonl              one JSON object per action, fsync'ed
    .lock                      flock() serialising runs for the service

``<root>/<service>`` (the active link) points at one release and is switched by
rename only. The history file, never mtime/ctime, decides which release was
active before (``previous``) and which releases are oldest (pruning).

Crash safety follows from the order of operations: a release becomes visible
(rename) only once complete, the link moves only to a visible release, and the
history line is written after the fact it records. A run killed between a fact
and its line leaves a gap that the next run detects and logs as ``reconciled``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import errno
import hashlib
import json
import os
import pwd
import re
import shutil
import stat
import subprocess
import tarfile
import zipfile
import zlib

from ansible_collections.commons.infra.plugins.module_utils.atomic_link import (
    fsync_dir,
    read_link,
    replace_symlink,
    temp_name_pattern,
)
from ansible_collections.commons.infra.plugins.module_utils.fs_rules import RunLock, resolve_id

STATES = ('present', 'active', 'rollback', 'query', 'absent')
HISTORY_NAME = 'history.jsonl'
MIRROR_NAME = '.mirror.git'
LOCK_NAME = '.lock'
PARTIAL_SUFFIX = '.partial'
INDEX_SUFFIX = '.partial.index'
REMOVING_SUFFIX = '.removing'
# Beside a release renamed into place whose history line is not written yet: proof that this
# module made it (a user-named release is adopted on that proof only).
STAMP_SUFFIX = '.new'
MIRROR_TMP_INFIX = '.tmp-'
# Everything a run creates beside a release, git's lock of the private index included.
LEFTOVER_RE = re.compile(r'^\.(?P<release>.+?)(?P<suffix>\.partial(?:\.index(?:\.lock)?)?|\.removing|\.new)$')
LEFTOVER_KINDS = {'.partial': 'partial', '.partial.index': 'index', '.partial.index.lock': 'index',
                  '.removing': 'removing', '.new': 'stamp'}
# Lives inside a release under construction; a name no project would use.
MARKER_NAME = '.commons-infra-deploy-in-progress'

SWITCH_ACTIONS = ('activate', 'rollback')
DEPLOY_ACTIONS = ('present', 'activate', 'rollback')
REMOVE_ACTIONS = ('prune', 'absent')

NAME_RE = re.compile(r'^[A-Za-z0-9_][A-Za-z0-9_.+@-]{0,127}$')
RESERVED_NAMES = (HISTORY_NAME, 'deploys')
HEX_RE = re.compile(r'^[0-9a-fA-F]{4,64}$')
FULL_ID_LENGTHS = (40, 64)  # sha1 and sha256 object ids
CONTENT_ID_LENGTH = 16
MIN_PREFIX = 4
# What a release this module names itself looks like: a full commit id or a content hash.
OWN_NAME_RE = re.compile(r'^(?:[0-9a-f]{%d}|[0-9a-f]{40}|[0-9a-f]{64})$' % CONTENT_ID_LENGTH)


class DeployHistoryError(Exception):
    """A refusal or failure with a message meant for the operator."""

    def __init__(self, msg, **details):
        super(DeployHistoryError, self).__init__(msg)
        self.msg = msg
        self.details = details


# --------------------------------------------------------------------------
# validation

def name_problem(name):
    """Why a service or release name is unusable (it could leave <root>/deploys/<service> or
    hide in it), or None. The one rule for the module and the app_release role's checks."""
    if not isinstance(name, str) or name == '':
        return 'must be a non-empty name'
    if '\x00' in name:
        return 'contains a NUL byte'
    if name.startswith('/'):
        return 'is an absolute path; a plain name is required'
    if '/' in name or '\\' in name:
        return 'contains a path separator; a plain name is required'
    if name.startswith('.'):
        return 'starts with a dot; such names are reserved or escape the root'
    if not NAME_RE.match(name):
        return 'may only contain letters, digits and . _ + @ - (at most 128 characters)'
    if name in RESERVED_NAMES:
        return 'is reserved'
    return None


def ref_problem(version):
    """Why ``version`` cannot be a branch, tag or commit id, or None (one rule, see name_problem)."""
    if not isinstance(version, str) or not version:
        return 'must be a branch, tag or commit id'
    if version.startswith('-') or '..' in version or any(c.isspace() or ord(c) < 32 for c in version):
        return 'is not a valid branch, tag or commit id'
    return None


def validate_name(name, what='release'):
    problem = name_problem(name)
    if problem:
        raise DeployHistoryError('%s name %r %s' % (what, name, problem))
    return name


def is_valid_name(name):
    try:
        validate_name(name)
    except DeployHistoryError:
        return False
    return True


def _validate_ref(version):
    problem = ref_problem(version)
    if problem:
        raise DeployHistoryError('version %r %s' % (version, problem))


def sanitize_source(source):
    """Drop credentials from an http(s) URL before it is written to the history."""
    return re.sub(r'^(https?|ftps?)://[^/@]*@', r'\1://', source or '') or None


def default_by():
    for var in ('SUDO_USER', 'USER', 'LOGNAME'):
        if os.environ.get(var):
            return os.environ[var]
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ')


class Options(object):
    """Module parameters checked for meaning; raises before anything is touched."""

    def __init__(self, params):
        p = dict(params)
        self.state = p.get('state') or 'present'
        if self.state not in STATES:
            raise DeployHistoryError('state must be one of %s' % ', '.join(STATES))
        root = p.get('root')
        if not root or not os.path.isabs(root) or '\x00' in root:
            raise DeployHistoryError('root must be an absolute path, got %r' % (root,))
        self.root = os.path.normpath(root)
        self.service = validate_name(p.get('service'), 'service')
        self.repo = p.get('repo') or None
        self.version = p.get('version') or None
        self.src_dir = p.get('src_dir') or None
        self.src_archive = p.get('src_archive') or None
        self.release = p.get('release')
        if self.release is not None:
            validate_name(self.release, 'release')
        keep = p.get('keep')
        if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 2):
            raise DeployHistoryError('keep must be an integer >= 2 (the active and the previous release are always kept) '
                                     'or null to keep every release, got %r' % (keep,))
        self.keep = keep
        self.by = p.get('by') or default_by()
        lines = p.get('history_lines', 10)
        self.history_lines = None if lines is None or lines < 0 else lines   # None: everything
        self.lock_timeout = p.get('lock_timeout', 300)
        self.sync = p.get('sync', True)
        self.owner = p.get('owner') or None
        self.group = p.get('group') or None
        try:
            uid, gid = resolve_id(self.owner, 'owner'), resolve_id(self.group, 'group')
        except ValueError as e:
            raise DeployHistoryError(str(e))
        self.uid = -1 if uid is None else uid
        self.gid = -1 if gid is None else gid

        sources = [n for n in ('repo', 'src_dir', 'src_archive') if getattr(self, n)]
        if len(sources) > 1:
            raise DeployHistoryError('repo, src_dir and src_archive are mutually exclusive, got %s' % ', '.join(sources))
        self.source_kind = sources[0] if sources else None
        if self.version and not self.repo:
            raise DeployHistoryError('version needs repo')
        if self.repo:
            if self.repo.startswith('-') or '\x00' in self.repo:
                raise DeployHistoryError('repo %r is not a valid repository' % (self.repo,))
            if self.release is not None:
                raise DeployHistoryError('release cannot be combined with repo: git releases are named by their commit id')
            self.version = self.version or 'HEAD'
            _validate_ref(self.version)
        for name in ('src_dir', 'src_archive'):
            value = getattr(self, name)
            if value is not None and not os.path.isabs(value):
                raise DeployHistoryError('%s must be an absolute path on the target, got %r' % (name, value))
        if self.src_dir and not os.path.isdir(self.src_dir):
            raise DeployHistoryError('src_dir %s is not a directory' % self.src_dir)
        if self.src_archive and not os.path.isfile(self.src_archive):
            raise DeployHistoryError('src_archive %s is not a file' % self.src_archive)

        if self.state == 'present' and not self.source_kind:
            raise DeployHistoryError('state=present needs a source: repo, src_dir or src_archive')
        if self.state in ('rollback', 'absent', 'query') and self.source_kind:
            raise DeployHistoryError('state=%s takes no source (repo, src_dir, src_archive); name a release instead' % self.state)
        if self.state == 'active' and not self.source_kind and self.release is None:
            raise DeployHistoryError('state=active needs a source (repo, src_dir, src_archive) or an existing release')
        if self.state == 'absent' and self.release is None:
            raise DeployHistoryError('state=absent needs release')

        self.layout = Layout(self.root, self.service, p.get('active_link'))


class Layout(object):
    """Paths of one service; knows nothing about their contents."""

    def __init__(self, root, service, active_link=None):
        self.root = root
        self.service = service
        self.deploys = os.path.join(root, 'deploys')
        self.service_dir = os.path.join(self.deploys, service)
        self.history = os.path.join(self.service_dir, HISTORY_NAME)
        self.mirror = os.path.join(self.service_dir, MIRROR_NAME)
        self.lock = os.path.join(self.service_dir, LOCK_NAME)
        link = active_link or os.path.join(root, service)
        if not os.path.isabs(link) or '\x00' in link:
            raise DeployHistoryError('active_link must be an absolute path, got %r' % (link,))
        self.active_link = os.path.normpath(link)
        deploys = self.deploys + os.sep
        if self.active_link == self.deploys or self.active_link.startswith(deploys):
            raise DeployHistoryError('active_link %s must not be inside %s' % (self.active_link, self.deploys))

    def release_path(self, release):
        return os.path.join(self.service_dir, release)

    def partial_path(self, release):
        return os.path.join(self.service_dir, '.%s%s' % (release, PARTIAL_SUFFIX))

    def index_path(self, release):
        return os.path.join(self.service_dir, '.%s%s' % (release, INDEX_SUFFIX))

    def removing_path(self, release):
        return os.path.join(self.service_dir, '.%s%s' % (release, REMOVING_SUFFIX))

    def stamp_path(self, release):
        return os.path.join(self.service_dir, '.%s%s' % (release, STAMP_SUFFIX))

    def release_of_target(self, target):
        """Release name a link target designates, or None if it lies elsewhere."""
        if target is None:
            return None
        if not os.path.isabs(target):
            target = os.path.join(os.path.dirname(self.active_link), target)
        target = os.path.normpath(target)
        parent, name = os.path.split(target)
        if parent != self.service_dir and os.path.realpath(parent) != os.path.realpath(self.service_dir):
            return None
        return name if is_valid_name(name) else None


# --------------------------------------------------------------------------
# history

class History(object):
    """Append-only JSON lines; the last line may be torn by a crash and is then skipped."""

    def __init__(self, path):
        self.path = path

    def read(self):
        try:
            with open(self.path, 'rb') as f:
                data = f.read()
        except (IOError, OSError) as e:
            if e.errno == errno.ENOENT:
                return []
            raise
        entries = []
        for number, line in enumerate(data.splitlines(), 1):
            try:
                entry = json.loads(line.decode('utf-8'))
            except ValueError:
                continue    # torn by a crash
            if isinstance(entry, dict) and entry.get('action') and entry.get('release'):
                problem = _entry_problem(entry)
                if problem:
                    raise DeployHistoryError('%s line %d is not a deploy history entry: %s; fix or remove that line'
                                             % (self.path, number, problem))
                entries.append(entry)
        return entries

    def append(self, entries):
        if not entries:
            return
        created = not os.path.exists(self.path)
        payload = ''.join(json.dumps(e, sort_keys=True) + '\n' for e in entries).encode('utf-8')
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            size = os.fstat(fd).st_size
            # A torn last line must not swallow the first new one.
            if size and os.pread(fd, 1, size - 1) != b'\n':
                payload = b'\n' + payload
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            fsync_dir(os.path.dirname(self.path))


def _entry_problem(entry):
    for key in ('action', 'release', 'ref', 'by', 'previous', 'time', 'source'):
        value = entry.get(key)
        if value is not None and not isinstance(value, str):
            return '%s must be a string, got %s' % (key, type(value).__name__)
    return None


def make_entry(action, release, ref=None, by=None, previous=None, **extra):
    entry = {'time': utc_now(), 'action': action, 'release': release, 'ref': ref, 'by': by, 'previous': previous}
    entry.update((k, v) for k, v in extra.items() if v is not None)
    return entry


# --------------------------------------------------------------------------
# snapshot: what is on disk and what the history says about it

class Snapshot(object):
    """Facts about a service, derived from disk plus the history. Read-only."""

    def __init__(self, layout, logged, on_disk, link_target, link_conflict, leftovers, by=None, foreign=()):
        self.layout = layout
        self.foreign = list(foreign)
        self.link_target = link_target
        self.link_conflict = link_conflict
        self.leftovers = leftovers
        self.active = layout.release_of_target(link_target)
        self.logged = list(logged)
        self.pending = reconcile(logged, on_disk, self.active, by)
        self.entries = self.logged + self.pending
        self.born, self.last_activated = _life(self.entries)
        # Order of first appearance of the current incarnation: pruning order.
        self.releases = sorted(on_disk, key=lambda r: (self.born[r][0] if r in self.born else len(self.entries), r))
        self.previous = previous_of(self.entries, self.active)

    @property
    def active_target(self):
        """What the history records as 'previous' when the link moves away."""
        if self.active is not None:
            return self.active
        if self.link_target is not None:
            return os.path.normpath(os.path.join(os.path.dirname(self.layout.active_link), self.link_target))
        return None


def _life(entries):
    born, last_activated = {}, {}
    for index, e in enumerate(entries):
        release = e['release']
        if e['action'] in REMOVE_ACTIONS:
            born.pop(release, None)
            last_activated.pop(release, None)
            continue
        if e['action'] in DEPLOY_ACTIONS and release not in born:
            born[release] = (index, e)
        if e['action'] in SWITCH_ACTIONS:
            last_activated[release] = e
    return born, last_activated


def last_switch(entries):
    for e in reversed(entries):
        if e['action'] in SWITCH_ACTIONS:
            return e
    return None


def previous_of(entries, active):
    """The release that was active before the current activation, from the log only."""
    e = last_switch(entries)
    if e is None or active is None or e['release'] != active:
        return None
    return e.get('previous')


def reconcile(logged, on_disk, active, by=None):
    """Entries the log lacks because a run died between a fact and its line."""
    born = _life(logged)[0]
    pending = []
    for release in sorted(set(born) - set(on_disk)):
        if release != active:
            pending.append(make_entry('absent', release, by=by, reconciled=True))
    for release in sorted(set(on_disk) - set(born)):
        pending.append(make_entry('present', release, by=by, reconciled=True))
    e = last_switch(logged)
    last_active = e['release'] if e else None
    if active is not None and active in on_disk and active != last_active:
        pending.append(make_entry('activate', active, by=by, previous=last_active, reconciled=True))
    return pending


def _leftover(service_dir, name):
    """Classify a hidden entry left behind by an interrupted run."""
    path = os.path.join(service_dir, name)
    found = LEFTOVER_RE.match(name)
    if found:
        kind = LEFTOVER_KINDS[found.group('suffix')]
        item = {'kind': kind, 'path': path, 'release': found.group('release')}
        if kind == 'partial':
            item.update(_read_marker(path))
        return item
    if name.startswith(MIRROR_NAME + MIRROR_TMP_INFIX):
        return {'kind': 'mirror', 'path': path, 'release': None}
    return None


def _read_marker(path):
    try:
        with open(os.path.join(path, MARKER_NAME)) as f:
            marker = json.load(f)
        return {'started': marker.get('started'), 'pid': marker.get('pid'), 'ref': marker.get('ref')}
    except (IOError, OSError, ValueError):
        return {'started': None, 'pid': None, 'ref': None}


def stale_git_locks(mirror):
    """Lock files a fetch killed mid-way leaves in the mirror; they make every later fetch fail."""
    found = []
    if not os.path.isdir(mirror):
        return found
    for name in os.listdir(mirror):
        if name.endswith('.lock'):
            found.append(os.path.join(mirror, name))
    for dirpath, dirnames, filenames in os.walk(os.path.join(mirror, 'refs')):
        found.extend(os.path.join(dirpath, n) for n in filenames if n.endswith('.lock'))
    return sorted(found)


def scan(layout, by=None):
    """What is on disk. Only directories that look like releases (a full commit id or a content
    hash, a name in the history, or one whose run left its stamp) are releases; anything else
    under deploys/<service> is reported as foreign and never adopted, pruned or removed."""
    logged = History(layout.history).read()
    known = set(e['release'] for e in logged)
    candidates, leftovers, foreign = [], [], []
    try:
        names = sorted(os.listdir(layout.service_dir))
    except OSError as e:
        if e.errno != errno.ENOENT:
            raise
        names = []
    for name in names:
        if name in (HISTORY_NAME, LOCK_NAME, MIRROR_NAME):
            continue
        path = os.path.join(layout.service_dir, name)
        if name.startswith('.'):
            item = _leftover(layout.service_dir, name)
            if item:
                leftovers.append(item)
        elif os.path.isdir(path) and not os.path.islink(path):
            candidates.append(name)
        else:
            foreign.append(path)
    stamped = set(i['release'] for i in leftovers if i['kind'] == 'stamp')
    on_disk = []
    for name in candidates:
        if is_valid_name(name) and (OWN_NAME_RE.match(name) or name in known or name in stamped):
            on_disk.append(name)
        else:
            foreign.append(os.path.join(layout.service_dir, name))
    link_dir = os.path.dirname(layout.active_link)
    pattern = temp_name_pattern(layout.active_link)
    try:
        for name in sorted(os.listdir(link_dir)):
            if pattern.match(name) and os.path.islink(os.path.join(link_dir, name)):
                leftovers.append({'kind': 'link', 'path': os.path.join(link_dir, name), 'release': None})
    except OSError:
        pass
    leftovers.extend({'kind': 'git-lock', 'path': p, 'release': None} for p in stale_git_locks(layout.mirror))
    target = read_link(layout.active_link)
    conflict = target is None and os.path.lexists(layout.active_link)
    return Snapshot(layout, logged, on_disk, target, conflict, leftovers, by, sorted(foreign))


# --------------------------------------------------------------------------
# sources

class Source(object):
    def __init__(self, kind, release, ref=None, origin=None, verified=True, path=None):
        self.kind = kind            # 'repo', 'src_dir' or 'src_archive'
        self.release = release      # None while a short commit id is unresolved
        self.ref = ref
        self.origin = origin        # what the history records as source
        self.verified = verified    # False: a commit id not yet seen in the mirror
        self.path = path


class Git(object):
    """Runs git non-interactively; children inherit the service lock."""

    def __init__(self, executable='git', keep_fds=()):
        self.executable = executable
        self.keep_fds = tuple(keep_fds)

    def try_run(self, args, env=None):
        """Returns (rc, stdout, stderr)."""
        full_env = dict(os.environ, LC_ALL='C', LANG='C', GIT_TERMINAL_PROMPT='0')
        full_env.update(env or {})
        # pass_fds: a git process orphaned by a killed run keeps the flock, so
        # the next run waits for it instead of deleting files under its feet.
        # Auto gc/maintenance after a fetch would detach and outlive the run;
        # in the foreground it stays under the lock.
        args = ['-c', 'gc.autoDetach=false', '-c', 'maintenance.autoDetach=false'] + list(args)
        proc = subprocess.run([self.executable] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              stdin=subprocess.DEVNULL, env=full_env, pass_fds=self.keep_fds, check=False)
        return proc.returncode, proc.stdout.decode('utf-8', 'replace'), proc.stderr.decode('utf-8', 'replace').strip()

    def run(self, args, env=None):
        rc, out, err = self.try_run(args, env)
        if rc != 0:
            raise GitError(args, rc, err)
        return out


class GitError(DeployHistoryError):
    def __init__(self, args, rc, stderr):
        super(GitError, self).__init__('git %s failed (rc=%s): %s' % (args[0] if args else '', rc, stderr),
                                       rc=rc, stderr=stderr)
        self.stderr = stderr


def parse_ls_remote(output, version):
    """Pick the commit ``version`` names, with git's precedence: exact ref, tag, branch."""
    refs = {}
    for line in output.splitlines():
        parts = line.split('\t', 1)
        if len(parts) == 2:
            refs[parts[1]] = parts[0]
    if version == 'HEAD' or version.startswith('refs/'):
        candidates = [version]
    else:
        candidates = ['refs/tags/' + version, 'refs/heads/' + version]
    for ref in candidates:
        # Annotated tags: the peeled entry is the commit.
        for name in (ref + '^{}', ref):
            if name in refs:
                return refs[name]
    return None


def resolve_git(git, repo, version, mirror, on_disk=()):
    """Commit id for version without changing anything (ls-remote, local mirror).

    A full commit id that is already a release or in the mirror never touches the remote:
    re-asserting a pinned release works offline."""
    if HEX_RE.match(version) and len(version) in FULL_ID_LENGTHS:
        commit = version.lower()
        if commit in on_disk or mirror_has(git, mirror, commit):
            return Source('repo', commit, version, sanitize_source(repo), True)
    try:
        # The peeled line of an annotated tag is only listed when asked for.
        out = git.run(['ls-remote', '--', repo, version, version + '^{}'])
    except GitError as e:
        raise DeployHistoryError('cannot read repository %s: %s' % (sanitize_source(repo), e.stderr), stderr=e.stderr)
    commit = parse_ls_remote(out, version)
    if commit:
        return Source('repo', commit.lower(), version, sanitize_source(repo), True)
    if not HEX_RE.match(version):
        raise DeployHistoryError('unknown ref %r: no such branch or tag in %s' % (version, sanitize_source(repo)))
    if len(version) in FULL_ID_LENGTHS:
        # Arbitrary commits are not advertised; verified against the mirror later.
        return Source('repo', version.lower(), version, sanitize_source(repo), mirror_has(git, mirror, version))
    found = mirror_resolve(git, mirror, version)
    return Source('repo', found, version, sanitize_source(repo), found is not None)


def mirror_has(git, mirror, commit):
    if not os.path.isdir(mirror):
        return False
    return git.try_run(['--git-dir=' + mirror, 'cat-file', '-e', commit + '^{commit}'])[0] == 0


def mirror_resolve(git, mirror, version):
    if not os.path.isdir(mirror):
        return None
    rc, out = git.try_run(['--git-dir=' + mirror, 'rev-parse', '--verify', '--quiet', version + '^{commit}'])[:2]
    return out.strip().lower() if rc == 0 and out.strip() else None


def tree_digest(path):
    """Content hash of a directory: names, types, exec bits, link targets, bytes."""
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, path).encode('utf-8', 'surrogateescape')
            st = os.lstat(full)
            if os.path.islink(full):
                digest.update(b'L\0' + rel + b'\0' + os.readlink(full).encode('utf-8', 'surrogateescape') + b'\0')
            elif os.path.isdir(full):
                digest.update(b'D\0' + rel + b'\0')
            elif os.path.isfile(full):
                digest.update(b'F\0' + rel + b'\0' + (b'x' if st.st_mode & 0o111 else b'-') + b'\0')
                digest.update(file_digest(full).encode('ascii') + b'\0')
            else:
                raise DeployHistoryError('src_dir contains %s which is not a file, directory or symlink' % full)
    return digest.hexdigest()


def file_digest(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def resolve_source(opts, git, snap=None):
    if opts.source_kind == 'repo':
        return resolve_git(git, opts.repo, opts.version, opts.layout.mirror, snap.releases if snap else ())
    if opts.source_kind == 'src_dir':
        release = opts.release or tree_digest(opts.src_dir)[:CONTENT_ID_LENGTH]
        return Source('src_dir', release, None, opts.src_dir, True, opts.src_dir)
    if opts.source_kind == 'src_archive':
        check_archive(opts.src_archive)
        release = opts.release or file_digest(opts.src_archive)[:CONTENT_ID_LENGTH]
        return Source('src_archive', release, None, opts.src_archive, True, opts.src_archive)
    return None


# --------------------------------------------------------------------------
# planning: decide everything before touching anything

class Plan(object):
    def __init__(self):
        self.release = None        # the release this run is about
        self.materialise = False
        self.switch = False
        self.switch_action = None  # 'activate' or 'rollback'
        self.remove = None
        self.prune = []
        self.active_after = None
        self.previous_after = None
        self.warnings = []


def match_release(name, snap):
    """Exact name, else a unique prefix of an existing release (commit ids are long)."""
    validate_name(name, 'release')
    if name in snap.releases:
        return name
    matches = [r for r in snap.releases if r.startswith(name)] if len(name) >= MIN_PREFIX else []
    if len(matches) > 1:
        raise DeployHistoryError('release %r is ambiguous: %s' % (name, ', '.join(matches)))
    return matches[0] if matches else name


def make_plan(opts, snap, source):
    layout, plan = opts.layout, Plan()
    if opts.state in ('active', 'rollback') and snap.link_conflict:
        raise DeployHistoryError('active_link %s exists and is not a symlink; move it away first' % layout.active_link)

    if opts.state in ('present', 'active'):
        if source is not None:
            plan.release = source.release
            if source.release is None:
                plan.warnings.append('check mode does not fetch: %r could not be resolved from the local mirror' % source.ref)
            elif not source.verified and source.release not in snap.releases:
                plan.warnings.append('commit %s is not in the local mirror yet; it is verified when fetched' % source.release)
        else:
            plan.release = match_release(opts.release, snap)
            if plan.release not in snap.releases:
                raise DeployHistoryError('release %s does not exist in %s; give repo, src_dir or src_archive to deploy it'
                                         % (opts.release, layout.service_dir))
        plan.materialise = plan.release not in snap.releases
        if plan.materialise and plan.release is not None and os.path.lexists(layout.release_path(plan.release)):
            raise DeployHistoryError('%s exists and is not a release made by deploy_history; move it away to deploy '
                                     'release %s' % (layout.release_path(plan.release), plan.release))
        if opts.state == 'active':
            plan.switch = plan.release is None or plan.release != snap.active
            plan.switch_action = 'activate'

    elif opts.state == 'rollback':
        if opts.release is not None:
            plan.release = match_release(opts.release, snap)
            if plan.release not in snap.releases:
                raise DeployHistoryError('cannot roll back to %s: no such release in %s' % (opts.release, layout.service_dir))
        else:
            previous = snap.previous
            if previous is not None and not is_valid_name(previous):
                raise DeployHistoryError('cannot roll back %s: the previous target %s is not a release managed here; '
                                         'name a release to roll back to' % (opts.service, previous))
            if previous is None:
                raise DeployHistoryError('cannot roll back %s: the history records no previous release for the active one (%s); '
                                         'name a release to roll back to' % (opts.service, snap.active))
            if previous not in snap.releases:
                raise DeployHistoryError('cannot roll back %s: the previous release %s is no longer on disk'
                                         % (opts.service, previous))
            plan.release = previous
        plan.switch = plan.release != snap.active
        plan.switch_action = 'rollback'

    elif opts.state == 'absent':
        plan.release = match_release(opts.release, snap)
        if plan.release == snap.active:
            raise DeployHistoryError('refusing to remove %s: it is the active release of %s' % (plan.release, opts.service))
        if plan.release in snap.releases:
            plan.remove = plan.release

    if plan.switch:
        plan.active_after, plan.previous_after = plan.release, snap.active_target
    else:
        plan.active_after, plan.previous_after = snap.active, snap.previous

    if opts.keep is not None and opts.state in ('present', 'active', 'rollback'):
        after = [r for r in snap.releases if r != plan.remove]
        if plan.materialise and plan.release is not None:
            after.append(plan.release)
        protected = set([plan.active_after, plan.previous_after, plan.release])
        candidates = [r for r in after if r not in protected]
        plan.prune = candidates[:max(0, len(after) - opts.keep)]
    return plan


def plan_changes(snap, plan):
    return bool(snap.pending or snap.leftovers or plan.materialise or plan.switch or plan.remove or plan.prune)


# --------------------------------------------------------------------------
# applying

def _rmtree(path):
    if os.path.islink(path) or not os.path.isdir(path):
        os.unlink(path)
    else:
        shutil.rmtree(path)


def cleanup(layout, snap):
    """Remove what interrupted runs left behind. Only called under the lock,
    which every process of a run (git included) holds until it exits."""
    cleaned = []
    for item in snap.leftovers:
        try:
            _rmtree(item['path'])
        except OSError as e:
            if e.errno != errno.ENOENT:
                raise
        cleaned.append(item['path'])
    if cleaned:
        fsync_dir(layout.service_dir)
    return cleaned


def _mkdir(path, mode=0o755):
    os.mkdir(path, mode)
    os.chmod(path, mode)    # whatever the umask


def sync_filesystem(path):
    """Flush release files before the link can point at them (power loss)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            if hasattr(libc, 'syncfs') and libc.syncfs(fd) == 0:
                return
        except (OSError, AttributeError, ImportError):
            pass
        os.sync()
    finally:
        os.close(fd)


def ensure_mirror(git, layout, repo, commit):
    """Make sure the mirror has ``commit`` (or refs for a short id); returns what was done."""
    if not os.path.isdir(layout.mirror):
        # Cloned aside and renamed so a killed clone never looks like a mirror.
        tmp = '%s%s%d' % (layout.mirror, MIRROR_TMP_INFIX, os.getpid())
        try:
            # --no-local: a repository on the same host is copied as one pack, as a remote one
            # is, instead of as hard links to its loose objects (one file to open per blob).
            git.run(['clone', '--mirror', '--no-local', '--quiet', '--', repo, tmp])
        except GitError as e:
            raise DeployHistoryError('cannot clone %s: %s' % (sanitize_source(repo), e.stderr), stderr=e.stderr)
        os.rename(tmp, layout.mirror)
        return 'cloned'
    if commit is not None and mirror_has(git, layout.mirror, commit):
        return None
    url = git.try_run(['--git-dir=' + layout.mirror, 'config', '--get', 'remote.origin.url'])[1]
    if url.strip() != repo:
        git.run(['--git-dir=' + layout.mirror, 'remote', 'set-url', 'origin', repo])
    try:
        git.run(['--git-dir=' + layout.mirror, 'fetch', '--prune', '--quiet', 'origin'])
    except GitError as e:
        raise DeployHistoryError('cannot fetch %s: %s' % (sanitize_source(repo), e.stderr), stderr=e.stderr)
    return 'fetched'


def _write_marker(partial, source, by):
    with open(os.path.join(partial, MARKER_NAME), 'w') as f:
        json.dump({'pid': os.getpid(), 'started': utc_now(), 'ref': source.ref, 'source': source.origin, 'by': by}, f)


def checkout_commit(git, mirror, commit, dest, index):
    # A private index keeps the bare mirror untouched; `read-tree -u` writes a
    # clean tree (no .git) with git's checkout code, here with one worker per core
    # (checkout.workers=0), where a plain clone uses one.
    env = {'GIT_INDEX_FILE': index}
    try:
        git.run(['-c', 'checkout.workers=0', '--git-dir=' + mirror, '--work-tree=' + dest,
                 'read-tree', '--reset', '-u', commit], env=env)
    finally:
        if os.path.exists(index):
            os.unlink(index)


try:
    import lzma
    _LZMA_ERRORS = (lzma.LZMAError,)
except ImportError:     # Pythons built without liblzma
    _LZMA_ERRORS = ()

# What a corrupt, truncated or unsupported archive raises while it is read.
ARCHIVE_ERRORS = (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, ValueError, RuntimeError,
                  NotImplementedError, OSError, UnicodeError) + _LZMA_ERRORS


def _member_path(archive, name):
    """The member's path relative to the release, or a refusal naming the archive."""
    parts = [p for p in name.replace('\\', '/').split('/') if p not in ('', '.')]
    if name.startswith('/') or '\x00' in name or '..' in parts:
        raise DeployHistoryError('src_archive %s: member %r would escape the release directory' % (archive, name))
    return '/'.join(parts)


def _archive_members(path):
    """(name, kind, mode, linkname, open) for each member; kind is file, dir, sym or hard."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                mode = info.external_attr >> 16 if info.create_system == 3 else 0
                if stat.S_ISLNK(mode):
                    yield info.filename, 'sym', 0o777, z.read(info).decode('utf-8', 'surrogateescape'), None
                elif info.is_dir():
                    yield info.filename, 'dir', stat.S_IMODE(mode) or 0o755, None, None
                else:
                    yield info.filename, 'file', stat.S_IMODE(mode) or 0o644, None, (lambda info=info: z.open(info))
        return
    with tarfile.open(path) as t:
        for m in t:
            if m.isfile():
                yield m.name, 'file', m.mode, None, (lambda m=m: t.extractfile(m))
            elif m.isdir():
                yield m.name, 'dir', m.mode, None, None
            elif m.issym():
                yield m.name, 'sym', 0o777, m.linkname, None
            elif m.islnk():
                yield m.name, 'hard', m.mode, m.linkname, None
            else:
                raise DeployHistoryError('src_archive %s: member %r is a device or fifo' % (path, m.name))


def walk_archive(path, dest=None):
    """Check every member of a tar or zip archive and, with ``dest``, extract it there.

    Safe on every Python (no reliance on tarfile's extraction filters): each member's path is
    resolved against the release, no member may pass through a symlink of the archive (the
    chain a/l -> .., a/l/m -> .., a/l/m/EVIL), symlinks must point inside the release, hard links
    at an earlier file; setuid, setgid and sticky bits and the archive's owners are dropped
    (files belong to the running user, then to owner/group when given). Any error of a corrupt
    archive is a DeployHistoryError naming it."""
    links, files, dirs = set(), set(), {}
    try:
        for name, kind, mode, linkname, reader in _archive_members(path):
            rel = _member_path(path, name)
            if not rel:
                continue
            for parent in _parents_of(rel) + [rel]:
                if parent in links:
                    raise DeployHistoryError('src_archive %s: member %r passes through the archive symlink %r'
                                             % (path, name, parent))
            if kind == 'sym':
                resolved = os.path.normpath(os.path.join(os.path.dirname(rel), linkname))
                if linkname.startswith('/') or resolved == '..' or resolved.startswith('../'):
                    raise DeployHistoryError('src_archive %s: symlink %r -> %r points outside the release'
                                             % (path, name, linkname))
            if kind == 'hard':
                source = _member_path(path, linkname)
                if source not in files:
                    raise DeployHistoryError('src_archive %s: hard link %r -> %r does not name an earlier file'
                                             % (path, name, linkname))
            if kind == 'dir' and rel in files:
                raise DeployHistoryError('src_archive %s: %r is both a file and a directory' % (path, name))
            if kind == 'sym':
                links.add(rel)
            elif kind == 'dir':
                dirs[rel] = mode
            else:
                files.add(rel)
            if dest is not None:
                _extract_member(dest, rel, kind, mode, linkname, reader)
    except DeployHistoryError:
        raise
    except ARCHIVE_ERRORS as e:
        detail = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise DeployHistoryError('cannot read src_archive %s: it is neither a tar nor a zip archive, or it is '
                                 'corrupt or truncated (%s)' % (path, detail))
    if dest is not None:
        # Deepest first, once every file is in: a read-only directory must not stop its own content.
        for rel in sorted(dirs, key=lambda r: -r.count('/')):
            os.chmod(os.path.join(dest, rel), dirs[rel] & 0o777)
    return 'zip' if zipfile.is_zipfile(path) else 'tar'


def _parents_of(rel):
    parts = rel.split('/')
    return ['/'.join(parts[:i]) for i in range(1, len(parts))]


def _extract_member(dest, rel, kind, mode, linkname, reader):
    target = os.path.join(dest, rel)
    _makedirs(os.path.dirname(target))
    if kind == 'dir':
        if not os.path.isdir(target):
            _mkdir(target, 0o755)
        return
    if os.path.lexists(target):
        os.unlink(target)   # a later member of the same name wins, as with tar
    if kind == 'sym':
        os.symlink(linkname, target)
    elif kind == 'hard':
        os.link(os.path.join(dest, _member_path(dest, linkname)), target)
    else:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, 'wb') as out:
            source = reader()
            try:
                shutil.copyfileobj(source, out, 1 << 20)
            finally:
                source.close()
            os.fchmod(out.fileno(), mode & 0o777)


def _makedirs(path, mode=0o755):
    if not os.path.isdir(path):
        _makedirs(os.path.dirname(path), mode)
        _mkdir(path, mode)


def check_archive(path):
    """Refuse unsafe archives before anything is written; returns 'zip' or 'tar'."""
    return walk_archive(path)


def extract_archive(path, dest):
    walk_archive(path, dest)


def copy_tree(src, dest):
    """Copy the content of ``src`` into the existing ``dest`` (symlinks as links)."""
    for entry in os.scandir(src):
        target = os.path.join(dest, entry.name)
        if entry.is_symlink():
            os.symlink(os.readlink(entry.path), target)
        elif entry.is_dir():
            shutil.copytree(entry.path, target, symlinks=True)
        else:
            shutil.copy2(entry.path, target)


def materialise(opts, git, source):
    """Build the release in .<id>.partial, then make it visible with one rename."""
    layout = opts.layout
    release = source.release
    partial = layout.partial_path(release)
    if os.path.lexists(partial):
        _rmtree(partial)
    _mkdir(partial)
    _write_marker(partial, source, opts.by)
    try:
        if source.kind == 'repo':
            checkout_commit(git, layout.mirror, release, partial, layout.index_path(release))
        elif source.kind == 'src_dir':
            copy_tree(source.path, partial)
        else:
            extract_archive(source.path, partial)
    except Exception:
        # A failure (not a kill) cleans up at once instead of waiting for the next run.
        shutil.rmtree(partial, ignore_errors=True)
        raise
    os.unlink(os.path.join(partial, MARKER_NAME))
    if opts.uid != -1 or opts.gid != -1:
        os.lchown(partial, opts.uid, opts.gid)
        for dirpath, dirnames, filenames in os.walk(partial):
            for name in dirnames + filenames:
                os.lchown(os.path.join(dirpath, name), opts.uid, opts.gid)
    if opts.sync:
        sync_filesystem(partial)
    if not OWN_NAME_RE.match(release):
        # Until its history line is written, this stamp is what makes a user-named release ours.
        os.close(os.open(layout.stamp_path(release), os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))
    os.rename(partial, layout.release_path(release))
    fsync_dir(layout.service_dir)


def remove_release(layout, history, release, action, by):
    # Renamed out of sight first: a half-deleted tree is never a release.
    removing = layout.removing_path(release)
    if os.path.lexists(removing):
        _rmtree(removing)
    os.rename(layout.release_path(release), removing)
    fsync_dir(layout.service_dir)
    history.append([make_entry(action, release, by=by)])
    _rmtree(removing)


def apply_plan(opts, snap, plan, source, git):
    layout = opts.layout
    history = History(layout.history)
    result = {'pruned': [], 'removed': None}
    if plan.materialise and source.kind == 'repo':
        ensure_mirror(git, layout, opts.repo, source.release)

    if plan.materialise:
        materialise(opts, git, source)
        history.append([make_entry('present', plan.release, source.ref, opts.by, source=source.origin)])
        if os.path.lexists(layout.stamp_path(plan.release)):
            os.unlink(layout.stamp_path(plan.release))

    if plan.switch:
        _makedirs(os.path.dirname(layout.active_link))
        replace_symlink(layout.release_path(plan.release), layout.active_link)
        history.append([make_entry(plan.switch_action, plan.release, source.ref if source else None, opts.by,
                                   previous=snap.active_target)])

    if plan.remove:
        remove_release(layout, history, plan.remove, 'absent', opts.by)
        result['removed'] = plan.remove
    for release in plan.prune:
        remove_release(layout, history, release, 'prune', opts.by)
        result['pruned'].append(release)
    return result


# --------------------------------------------------------------------------
# results

def simulate(opts, snap, plan, source):
    """The snapshot check mode predicts, without touching the disk."""
    entries = list(snap.entries)
    ref = source.ref if source else None
    on_disk = [r for r in snap.releases if r != plan.remove and r not in plan.prune]
    release = plan.release or '(unresolved)'
    if plan.materialise:
        entries.append(make_entry('present', release, ref, opts.by, source=source.origin if source else None))
        on_disk.append(release)
    target = snap.link_target
    if plan.switch:
        entries.append(make_entry(plan.switch_action, release, ref, opts.by, previous=snap.active_target))
        target = opts.layout.release_path(release)
    if plan.remove:
        entries.append(make_entry('absent', plan.remove, by=opts.by))
    entries.extend(make_entry('prune', r, by=opts.by) for r in plan.prune)
    return Snapshot(opts.layout, entries, on_disk, target, snap.link_conflict, [], opts.by, snap.foreign)


def build_result(opts, snap, release, changed):
    layout = opts.layout
    releases = []
    for r in snap.releases:
        born = snap.born.get(r, (None, {}))[1]
        last = snap.last_activated.get(r, {})
        releases.append({
            'release': r,
            'path': layout.release_path(r),
            'active': r == snap.active,
            'previous': r == snap.previous,
            'first_deployed': born.get('time'),
            'last_activated': last.get('time'),
            'ref': born.get('ref'),
            'source': born.get('source'),
        })
    if opts.history_lines is None:
        history = snap.entries
    else:
        history = snap.entries[-opts.history_lines:] if opts.history_lines else []
    return {
        'changed': changed,
        'service': opts.service,
        'release': release,
        'path': layout.release_path(release) if release else None,
        'active': snap.active,
        'active_link': layout.active_link,
        'active_target': snap.link_target,
        'previous': snap.previous,
        'releases': releases,
        'history': history,
        'unfinished': snap.leftovers,
        'foreign': snap.foreign,
    }


def link_diff(layout, before, after):
    return {
        'before_header': layout.active_link, 'after_header': layout.active_link,
        'before': (before or '(absent)') + '\n', 'after': (after or '(absent)') + '\n',
    }


def needs_fetch_to_resolve(source, snap):
    return (source is not None and source.kind == 'repo' and
            (source.release is None or (not source.verified and source.release not in snap.releases)))


def resolve_in_mirror(opts, git, source):
    """Short or unadvertised commit ids: fetch into the mirror, then look them up."""
    ensure_mirror(git, opts.layout, opts.repo, source.release)
    found = mirror_resolve(git, opts.layout.mirror, source.release or source.ref)
    if found is None or (source.release is not None and found != source.release):
        raise DeployHistoryError('unknown ref %r: no such branch, tag or commit in %s' % (source.ref, source.origin))
    source.release, source.verified = found, True


def foreign_warnings(snap):
    return ['%s is not a release made by deploy_history (not a commit id, a content hash or a name in the '
            'history); it is left alone and never pruned' % path for path in snap.foreign]


def run(params, check_mode=False, git_executable='git'):
    """Do what the parameters ask; returns the module result or raises DeployHistoryError."""
    # Modes are the module's, not the caller's umask's (git's checkout and copies included).
    umask = os.umask(0o022)
    try:
        return _run(params, check_mode, git_executable)
    finally:
        os.umask(umask)


def _run(params, check_mode, git_executable):
    opts = Options(params)
    layout = opts.layout
    snap = scan(layout, opts.by)
    if opts.state == 'query':
        result = build_result(opts, snap, snap.active, False)
        result.update(pruned=[], cleaned=[], removed=None, warnings=foreign_warnings(snap))
        return result

    git = Git(git_executable)
    source = resolve_source(opts, git, snap)    # read-only: ls-remote (unless known locally), hashing
    plan = make_plan(opts, snap, source)        # refusals happen here, before any change
    changed = plan_changes(snap, plan)
    if check_mode or not changed:
        # Nothing to do needs no lock and writes nothing.
        after = simulate(opts, snap, plan, source) if changed else snap
        result = build_result(opts, after, plan.release, changed)
        result.update(pruned=plan.prune, removed=plan.remove, cleaned=[i['path'] for i in snap.leftovers],
                      warnings=plan.warnings + foreign_warnings(snap),
                      diff=link_diff(layout, snap.link_target, after.link_target))
        return result

    _makedirs(layout.service_dir)
    with RunLock(layout.lock, opts.lock_timeout, error=DeployHistoryError) as lock:
        git.keep_fds = (lock.fd,)
        # Decide again under the lock: another run may have finished meanwhile.
        snap = scan(layout, opts.by)
        # The log first: a stamp removed below is then no longer needed to adopt its release.
        History(layout.history).append(snap.pending)
        cleaned = cleanup(layout, snap)     # before git runs: its stale locks would fail it
        if needs_fetch_to_resolve(source, snap):
            resolve_in_mirror(opts, git, source)
        plan = make_plan(opts, snap, source)
        changed = plan_changes(snap, plan)
        done = apply_plan(opts, snap, plan, source, git) if changed else {'pruned': [], 'removed': None}
        after = scan(layout, opts.by)
    result = build_result(opts, after, plan.release, changed)
    result.update(pruned=done['pruned'], removed=done['removed'], cleaned=cleaned, warnings=foreign_warnings(after),
                  diff=link_diff(layout, snap.link_target, after.link_target))
    return result
