# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rules etc_symlinks and deploy_history share: globs, precedence, modes, containment."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.commons.infra.plugins.module_utils.fs_rules import (
    PathMatcher, fixed_prefix, glob_regex, parse_mode, within)


@pytest.mark.parametrize('pattern,path,matches', [
    ('pve/*.cfg', 'pve/storage.cfg', True),
    ('pve/*.cfg', 'pve/priv/shadow.cfg', False),          # * never crosses /
    ('pve/?.cfg', 'pve/a.cfg', True),
    ('pve/?', 'pve/a/b', False),
    ('pve/[a-c]*.cfg', 'pve/b.cfg', True),
    ('pve/[!a-c]*.cfg', 'pve/b.cfg', False),
    ('pve/**/*.conf', 'pve/qemu-server/100.conf', True),
    ('pve/**/*.conf', 'pve/nodes/n1/qemu-server/100.conf', True),
    ('pve/**/*.conf', 'pve/100.conf', True),               # ** is zero or more directories
    ('pve/**', 'pve/a/b/c', True),
    ('**/*.swp', 'a/b/c.swp', True),
    ('*.swp', 'a/c.swp', False),
    ('a.b', 'axb', False),                                 # . is literal
])
def test_glob_regex(pattern, path, matches):
    assert bool(glob_regex(pattern).match(path)) is matches


def test_most_specific_pattern_wins_whatever_the_order():
    for patterns in (['pve', 'pve/*.cfg', 'pve/storage.cfg'], ['pve/storage.cfg', 'pve/*.cfg', 'pve']):
        m = PathMatcher(patterns)
        assert m.best('pve/storage.cfg') == 'pve/storage.cfg'
        assert m.best('pve/user.cfg') == 'pve/*.cfg'
        assert m.best('pve/nodes/x.conf') == 'pve'
        assert m.best('other') is None


def test_fixed_prefix_and_within_and_modes():
    assert fixed_prefix('pve/qemu-server/*.conf') == ['pve', 'qemu-server']
    assert within('/etc/pve', '/etc') and not within('/etcx', '/etc') and within('/x', '/')
    assert parse_mode('0640') == 0o640 and parse_mode('755') == 0o755 and parse_mode(None) is None
    for bad in ('rw-r--r--', '0999', 'u+x', True):
        with pytest.raises(ValueError):
            parse_mode(bad)
