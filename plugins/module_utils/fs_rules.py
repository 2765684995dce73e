# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rules the file-writing modules (etc_symlinks, deploy_history) share, each declared once:
path containment, owner and mode input, shell globs and their precedence, the run lock."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import fcntl
import grp
import os
import pwd
import re
import time

OCTAL_MODE_RE = re.compile(r'^0?[0-7]{3,4}$')


def within(path, root):
    """Whether normalised absolute ``path`` is ``root`` or below it."""
    if root == '/':
        return path.startswith('/')
    return path == root or path.startswith(root + '/')


def mode_problem(value):
    """Why ``value`` is not an octal mode string such as "0640", or None."""
    if not isinstance(value, str) or not OCTAL_MODE_RE.match(value.strip()):
        return 'must be an octal string such as "0640", got %r' % (value,)
    return None


def parse_mode(value):
    """An octal mode string (or an int) as an int; None for None or ''. Raises ValueError."""
    if value is None or value == '':
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    problem = mode_problem(str(value))
    if problem:
        raise ValueError('mode %s' % problem)
    return int(str(value).strip(), 8)


def resolve_id(value, kind):
    """A user ('owner') or group ('group') name or numeric id as a number; None for None or ''.
    Raises ValueError naming what does not exist on the host."""
    if value is None or value == '':
        return None
    text = str(value)
    if text.isdigit():
        return int(text)
    try:
        if kind == 'owner':
            return pwd.getpwnam(text).pw_uid
        return grp.getgrnam(text).gr_gid
    except KeyError:
        raise ValueError('unknown %s %r: it does not exist on the host' % ('user' if kind == 'owner' else 'group', text))


# ---------------------------------------------------------------- globs

def glob_regex(pattern):
    """A shell glob as a regular expression over a relative path: ``*``, ``?`` and ``[...]``
    never match ``/``; ``**`` as a whole component matches any number of components."""
    parts = pattern.strip('/').split('/')
    out = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part == '**':
            out.append('.*' if last else '(?:[^/]+/)*')
            continue
        out.append(_component(part) + ('' if last else '/'))
    return re.compile('^' + ''.join(out) + '$')


def _component(part):
    rx, i = [], 0
    while i < len(part):
        c = part[i]
        if c == '*':
            rx.append('[^/]*')
        elif c == '?':
            rx.append('[^/]')
        elif c == '[':
            end = part.find(']', i + 2 if part[i + 1:i + 2] in ('!', ']') else i + 1)
            if end < 0:
                rx.append(re.escape(c))
            else:
                body = part[i + 1:end]
                if body.startswith('!'):
                    body = '^' + body[1:]
                rx.append('[%s]' % body.replace('\\', '\\\\').replace('/', ''))
                i = end
        else:
            rx.append(re.escape(c))
        i += 1
    return ''.join(rx)


def has_magic(pattern):
    return any(c in pattern for c in '*?[')


def fixed_prefix(pattern):
    """The leading components of ``pattern`` that hold no glob characters."""
    fixed = []
    for part in pattern.strip('/').split('/'):
        if has_magic(part):
            break
        fixed.append(part)
    return fixed


def parents(rel):
    """'a/b/c' -> ['a', 'a/b']."""
    parts = rel.split('/')
    return ['/'.join(parts[:i]) for i in range(1, len(parts))]


class PathMatcher(object):
    """Shell globs over relative paths; a pattern naming a directory covers everything below it.

    One precedence rule for every caller: the most specific pattern wins, that is the one
    matching the deepest path (the path itself over a parent directory), then a pattern
    without glob characters over a glob, then the longer pattern. The order of the list
    does not matter.
    """

    def __init__(self, patterns):
        self.patterns = list(patterns)
        self._rx = [glob_regex(p) for p in self.patterns]

    def best(self, rel):
        """The most specific pattern matching ``rel`` or one of its parents, else None."""
        candidates = parents(rel) + [rel]
        best, best_key = None, None
        for pattern, rx in zip(self.patterns, self._rx):
            for depth in range(len(candidates) - 1, -1, -1):
                if rx.match(candidates[depth]):
                    key = (depth, not has_magic(pattern), len(pattern))
                    if best_key is None or key > best_key:
                        best, best_key = pattern, key
                    break
        return best

    def __bool__(self):
        return bool(self.patterns)

    __nonzero__ = __bool__


# ---------------------------------------------------------------- run lock

class RunLock(object):
    """Exclusive flock() serialising runs; the kernel releases it when its holders die.

    ``path`` is a lock file (created) or, with ``directory=True``, an existing directory
    locked through a read-only descriptor, so that nothing is written there.
    """

    def __init__(self, path, timeout, directory=False, error=RuntimeError):
        self.path = path
        self.timeout = timeout
        self.directory = directory
        self.error = error
        self.fd = None

    def __enter__(self):
        if self.directory:
            self.fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        else:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        deadline = time.monotonic() + (self.timeout or 0)
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except (IOError, OSError) as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
            if time.monotonic() >= deadline:
                os.close(self.fd)
                self.fd = None
                raise self.error('another run holds %s; gave up after %ss' % (self.path, self.timeout))
            time.sleep(0.05)

    def __exit__(self, *exc):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def describe_error(error):
    """A one-line message for an unexpected exception, naming the path(s) of an OSError."""
    if isinstance(error, EnvironmentError) and getattr(error, 'filename', None):
        paths = error.filename if not getattr(error, 'filename2', None) else '%s -> %s' % (error.filename, error.filename2)
        return '%s: %s' % (paths, error.strerror or error)
    return '%s: %s' % (type(error).__name__, error)
