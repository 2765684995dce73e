"""tree_digest on real trees: a faithful copy (rsync -aHAXS) is the same tree; copies
that lose hard links, sparseness, symlinks, modes or content are not, and say where."""
import os
import shutil
import subprocess

import pytest

from ansible_collections.commons.infra.plugins.module_utils.tree_digest import compare, digest, manifest, summary

ODD = b'odd name \xe9 \n with newline'


def make_tree(root):
    os.makedirs(os.path.join(root, 'deploys', 'olsystem', 'a' * 40))
    with open(os.path.join(root, 'deploys', 'olsystem', 'a' * 40, 'config.yml'), 'w') as handle:
        handle.write('db: ol-db1\n')
    os.symlink('deploys/olsystem/' + 'a' * 40, os.path.join(root, 'olsystem'))
    with open(os.path.join(root, 'data.bin'), 'wb') as handle:
        handle.write(b'x' * 4096)
    os.link(os.path.join(root, 'data.bin'), os.path.join(root, 'data-hardlink.bin'))
    with open(os.path.join(root, 'sparse.img'), 'wb') as handle:
        handle.truncate(8 * 1024 * 1024)
        handle.write(b'head')
    with open(os.path.join(os.fsencode(root), ODD), 'wb') as handle:
        handle.write(b'odd')
    os.chmod(os.path.join(root, 'data.bin'), 0o640)
    return root


@pytest.fixture
def tree(tmp_path):
    return make_tree(str(tmp_path / 'src'))


def test_a_tree_is_itself(tree):
    assert compare(manifest(tree), manifest(tree)) == []
    assert summary(manifest(tree)) == {'dir': 4, 'file': 5, 'link': 1}


@pytest.mark.skipif(not shutil.which('rsync'), reason='rsync is not installed on this machine')
def test_an_rsync_archive_copy_is_the_same_tree(tree, tmp_path):
    copy = str(tmp_path / 'copy')
    subprocess.run(['rsync', '-aHAXS', '--numeric-ids', tree + '/', copy + '/'], check=True)
    assert compare(manifest(tree), manifest(copy)) == []
    assert digest(manifest(tree)) == digest(manifest(copy))


def test_a_copy_that_splits_hard_links_and_fills_sparse_files_differs(tree, tmp_path):
    copy = str(tmp_path / 'copy')
    shutil.copytree(tree, copy, symlinks=True)  # keeps modes and links, not hard links or holes
    found = ' '.join(compare(manifest(tree), manifest(copy)))
    assert 'data-hardlink.bin' in found
    assert 'sparse.img' in found


def test_content_mode_and_link_changes_are_named(tree, tmp_path):
    copy = str(tmp_path / 'copy')
    subprocess.run(['cp', '-a', tree + '/.', copy], check=True)
    with open(os.path.join(copy, 'deploys', 'olsystem', 'a' * 40, 'config.yml'), 'w') as handle:
        handle.write('db: ol-db2\n')
    os.chmod(os.path.join(copy, 'sparse.img'), 0o600)
    os.unlink(os.path.join(copy, 'olsystem'))
    os.symlink('/elsewhere', os.path.join(copy, 'olsystem'))
    os.unlink(os.path.join(os.fsencode(copy), ODD))
    found = compare(manifest(tree), manifest(copy))
    assert any(line.startswith('differs: deploys/olsystem/') for line in found), found
    assert any(line.startswith('differs: sparse.img') for line in found), found
    assert any(line.startswith('differs: olsystem') for line in found), found
    assert any(line.startswith('missing in the copy: odd name') for line in found), found


def test_metadata_only_does_not_read_content(tree, tmp_path):
    copy = str(tmp_path / 'copy')
    subprocess.run(['cp', '-a', tree + '/.', copy], check=True)
    with open(os.path.join(copy, 'data.bin'), 'r+b') as handle:
        handle.write(b'y')  # same size, other content
    assert compare(manifest(tree, checksum=False), manifest(copy, checksum=False)) == []
    assert compare(manifest(tree), manifest(copy)) != []


def test_a_sample_hashes_the_same_files_on_both_sides(tree):
    sampled = manifest(tree, sample=3)
    hashed = {rel for rel, facts in sampled.items() if facts[0] == 'file' and len(facts[-1]) == 64}
    assert hashed == {rel for rel, facts in manifest(tree, sample=3).items() if facts[0] == 'file' and len(facts[-1]) == 64}
    assert len(hashed) < 5


def test_differences_are_capped(tree, tmp_path):
    copy = str(tmp_path / 'copy')
    os.makedirs(copy)
    assert len(compare(manifest(tree), manifest(copy), limit=3)) == 3
