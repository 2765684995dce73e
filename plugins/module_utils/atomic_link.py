# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Symlink helpers shared by the modules that switch links in place.

A link is never removed and then re-created: the new link is made under a
temporary name in the same directory and renamed over the old one, so that
every reader sees either the old target or the new one and never a gap.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import uuid

TMP_PREFIX = '.commons-infra-tmp-'


def fsync_dir(path):
    """Flush a directory entry so a rename survives a crash of the host."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_name(path):
    """A sibling name for ``path`` that cleanup code can recognise later."""
    directory, base = os.path.split(path)
    return os.path.join(directory, '%s%s.%s' % (TMP_PREFIX, base, uuid.uuid4().hex[:12]))


def is_temp_name(name):
    return os.path.basename(name).startswith(TMP_PREFIX)


def temp_name_pattern(path):
    """Matches the names temp_name(path) makes, and no other: a cleanup that
    uses it leaves alone the temporaries of other links being switched in the
    same directory by another run."""
    return re.compile('^%s%s\\.[0-9a-f]{12}$' % (re.escape(TMP_PREFIX), re.escape(os.path.basename(path))))


def read_link(path):
    """The target of ``path`` if it is a symlink, else None."""
    try:
        return os.readlink(path)
    except OSError:
        return None


def replace_symlink(target, link_path, sync=True):
    """Point ``link_path`` at ``target`` atomically.

    Returns True when the link changed. A directory that is not a link at
    ``link_path`` is refused: rename would fail on it, and a caller that meant
    to replace a directory must move it away itself.
    """
    if read_link(link_path) == target:
        return False
    if os.path.isdir(link_path) and not os.path.islink(link_path):
        raise IsADirectoryError('%s is a directory, not a link' % link_path)
    tmp = temp_name(link_path)
    os.symlink(target, tmp)
    try:
        os.replace(tmp, link_path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if sync:
        fsync_dir(os.path.dirname(link_path) or '.')
    return True
