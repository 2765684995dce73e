"""atomic_link on real directories: switch, idempotence, scoped cleanup."""
import os

import pytest

from ansible_collections.commons.infra.plugins.module_utils.atomic_link import (
    read_link, replace_symlink, temp_name, temp_name_pattern)


def test_replace_creates_then_switches_then_is_a_no_op(tmp_path):
    link = str(tmp_path / 'current')
    assert replace_symlink('releases/a', link) is True
    assert read_link(link) == 'releases/a'
    assert replace_symlink('releases/b', link) is True
    assert read_link(link) == 'releases/b'
    assert replace_symlink('releases/b', link) is False
    assert sorted(os.listdir(str(tmp_path))) == ['current']


def test_replace_refuses_a_real_directory(tmp_path):
    (tmp_path / 'current').mkdir()
    with pytest.raises(IsADirectoryError):
        replace_symlink('releases/a', str(tmp_path / 'current'))
    assert sorted(os.listdir(str(tmp_path))) == ['current']


def test_replace_over_a_regular_file(tmp_path):
    (tmp_path / 'motd').write_text('hand edited')
    assert replace_symlink('/opt/olsystem/etc/motd', str(tmp_path / 'motd')) is True
    assert read_link(str(tmp_path / 'motd')) == '/opt/olsystem/etc/motd'


def test_temp_pattern_matches_only_its_own_link(tmp_path):
    mine = temp_name(str(tmp_path / 'openlibrary'))
    other = temp_name(str(tmp_path / 'olsystem'))
    pattern = temp_name_pattern(str(tmp_path / 'openlibrary'))
    assert pattern.match(os.path.basename(mine))
    assert not pattern.match(os.path.basename(other))
