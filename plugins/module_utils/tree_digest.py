# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A manifest of a directory tree, to prove that a copy is the same tree.

Each entry (by path relative to the root, as bytes, so odd names survive) records
what a faithful copy must keep: type, mode, owner and group (numeric), extended
attributes (ACLs are ``system.posix_acl_*`` attributes), the target of a symlink,
and for a regular file its size, whether it is sparse, which earlier path it is a
hard link of, and the SHA-256 of its content. Two trees are the same when their
manifests are equal; ``compare`` names the first differences.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import os
import stat

KINDS = (
    (stat.S_ISDIR, 'dir'), (stat.S_ISREG, 'file'), (stat.S_ISLNK, 'link'),
    (stat.S_ISFIFO, 'fifo'), (stat.S_ISSOCK, 'socket'), (stat.S_ISCHR, 'chr'), (stat.S_ISBLK, 'blk'),
)


def _kind(mode):
    for test, name in KINDS:
        if test(mode):
            return name
    return 'other'


def _xattrs(path):
    try:
        names = sorted(os.listxattr(path, follow_symlinks=False))
    except (OSError, AttributeError):
        return ()
    values = []
    for name in names:
        try:
            values.append((name, hashlib.sha256(os.getxattr(path, name, follow_symlinks=False)).hexdigest()[:16]))
        except OSError:
            values.append((name, None))
    return tuple(values)


def file_sha256(path, bufsize=1 << 20):
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        while True:
            chunk = handle.read(bufsize)
            if not chunk:
                break
            digest.update(chunk)
    return digest.hexdigest()


def _sampled(rel, sample):
    """A stable choice of about one file in `sample` (0: every file), by name."""
    if not sample:
        return True
    return int(hashlib.sha256(rel).hexdigest()[:8], 16) % sample == 0


def manifest(root, checksum=True, sample=0):
    """{relative path (bytes): tuple of facts} for everything below root (root itself
    included as b'.'). Symlinks are recorded, never followed."""
    root = os.fsencode(root)
    entries = {}
    first_path = {}

    def record(full, rel):
        st = os.lstat(full)
        kind = _kind(st.st_mode)
        facts = [kind, '%04o' % stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, _xattrs(full)]
        if kind == 'link':
            facts.append(os.readlink(full))
        elif kind == 'file':
            facts.append(st.st_size)
            facts.append('sparse' if st.st_blocks * 512 < st.st_size else 'dense')
            if st.st_nlink > 1:
                facts.append(b'hardlink-of:' + first_path.setdefault((st.st_dev, st.st_ino), rel))
            if checksum and _sampled(rel, sample):
                facts.append(file_sha256(full))
        elif kind in ('chr', 'blk'):
            facts.append(st.st_rdev)
        entries[rel] = tuple(facts)

    record(root, b'.')
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            record(full, os.path.relpath(full, root))
    return entries


def digest(entries):
    """One SHA-256 over a manifest, for a quick comparison or a record."""
    whole = hashlib.sha256()
    for rel in sorted(entries):
        whole.update(rel + b'\0' + repr(entries[rel]).encode() + b'\n')
    return whole.hexdigest()


def compare(source, copy, limit=20):
    """The first differences between two manifests, as readable strings."""
    out = []
    for rel in sorted(set(source) | set(copy)):
        if source.get(rel) == copy.get(rel):
            continue
        name = rel.decode('utf-8', 'backslashreplace')
        if rel not in copy:
            out.append('missing in the copy: %s' % name)
        elif rel not in source:
            out.append('only in the copy: %s' % name)
        else:
            out.append('differs: %s (%r != %r)' % (name, source[rel], copy[rel]))
        if len(out) >= limit:
            break
    return out


def summary(entries):
    counts = {}
    for facts in entries.values():
        counts[facts[0]] = counts.get(facts[0], 0) + 1
    return counts
