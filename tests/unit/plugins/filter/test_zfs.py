"""zfs, sanoid and syncoid input rules: each bad input is refused naming its variable."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.commons.infra.plugins.filter.zfs import (FilterModule, sanoid_errors, sanoid_value,
                                                                  syncoid_plan, syncoid_sources, syncoid_targets,
                                                                  zfs_datasets, zfs_errors, zpool_create_argv)

POOLS = [{'name': 'tank', 'file': {'path': '/var/lib/zfs-lab/tank.img', 'size': '512M'}}]


def errors(datasets=None, pools=None, version=23, platform='fuse', **kwargs):
    merged = zfs_datasets(datasets or [], kwargs.pop('flavors', ['off']), 'tank')
    return ' | '.join(zfs_errors(merged, POOLS if pools is None else pools, version, platform, **kwargs))


def test_one_dataset_per_flavor_at_mnt_with_overrides():
    merged = zfs_datasets([{'name': 'tank/off', 'quota': '50G', 'atime': True}], ['off', 'obf'], 'tank',
                          '/mnt', {'compression': 'on', 'atime': 'off'})
    assert [d['name'] for d in merged] == ['tank/off', 'tank/obf']
    assert merged[0]['properties'] == {'compression': 'on', 'atime': 'on', 'quota': '50G', 'mountpoint': '/mnt/off'}
    assert merged[1]['properties']['mountpoint'] == '/mnt/obf'


def test_a_flavor_yaml_read_as_a_boolean_is_named():
    with pytest.raises(AnsibleFilterError) as error:
        zfs_datasets([], ['obf', False], 'tank')
    assert 'zfs_flavors[1] must be a flavor name' in str(error.value) and 'quote it' in str(error.value)


def test_good_input_has_no_errors():
    assert errors([{'name': 'tank/images', 'compression': 'gzip-6', 'recordsize': '128K', 'quota': 'none'}]) == ''


def test_a_dataset_outside_its_pool_is_named():
    text = errors([{'name': 'data/off'}])
    assert 'zfs_datasets[0] (data/off)' in text and 'outside its pool' in text and 'pool data is not in zfs_pools' in text


def test_an_existing_pool_counts_as_a_pool():
    assert errors([{'name': 'data/off'}], existing_pools=['data']) == ''


def test_a_compression_the_pool_version_lacks_is_named():
    text = errors([{'name': 'tank/off', 'compression': 'lz4'}])
    assert 'zfs_datasets[0] (tank/off): compression lz4 needs pool version with feature flags' in text
    assert 'pool tank has version 23' in text and 'lzjb' in text
    assert errors([{'name': 'tank/off', 'compression': 'lz4'}], version=5000, platform='zfsutils') == ''
    assert 'zle needs pool version 20' in errors([{'name': 'tank/off', 'compression': 'zle'}],
                                                 pools=[dict(POOLS[0], version=15)])


@pytest.mark.parametrize('item, message', [
    ({'name': 'tank/off', 'recordsize': '96K'}, 'recordsize 96K must be a power of two from 512 to 128K'),
    ({'name': 'tank/off', 'recordsize': '1M'}, 'recordsize 1M'),
    ({'name': 'tank/off', 'quota': '-5G'}, 'quota -5G must be a size'),
    ({'name': 'tank/off', 'atime': 'maybe'}, 'atime must be on or off'),
    ({'name': 'tank/off', 'mountpoint': 'mnt/off'}, 'mountpoint mnt/off must be an absolute path'),
    ({'name': 'tank/off', 'comression': 'on'}, 'unknown keys comression'),
    ({'name': 'tank/of@f'}, 'no @'),
    ({'name': 'tank'}, 'must live inside a pool'),
])
def test_bad_dataset_settings_are_named(item, message):
    assert message in errors([item])


def test_a_property_the_platform_cannot_manage_is_named():
    text = errors([{'name': 'tank/off', 'readonly': True}], unmanageable={'readonly': 'reported wrongly'})
    assert 'zfs_datasets[0] (tank/off): readonly cannot be managed on fuse: reported wrongly' in text


def test_pools_need_vdevs_by_id():
    text = errors(pools=[{'name': 'tank', 'vdevs': ['/dev/sda']}, {'name': 'fast'}])
    assert 'zfs_pools[0] (tank): vdev /dev/sda is a kernel name' in text
    assert 'zfs_pools[1] (fast): give vdevs' in text
    assert 'version 5000 is above what fuse supports (23)' in errors(pools=[dict(POOLS[0], version=5000)])


def test_destroying_a_kept_dataset_is_refused():
    assert 'zfs_destroy[0] (tank/off) is also a dataset to keep' in errors(destroy=['tank/off'])


def test_a_staging_name_equal_to_a_production_dataset_is_refused():
    text = errors(flavors=['off', 'obf'], staging=[{'name': 'tank/obf', 'production': 'tank/off'}])
    assert 'zfs_staging[0] (tank/obf): the staging name tank/obf is a production dataset' in text
    text = errors(staging=[{'name': 'tank/off/staging', 'production': 'tank/off'}])
    assert 'nests with a production dataset' in text
    text = errors(staging=[{'name': 'other/off-staging', 'production': 'tank/off'}])
    assert "a clone stays in its origin's pool" in text
    assert errors(staging=[{'name': 'tank/off-staging', 'production': 'tank/off', 'path': '/mnt/off-staging'}]) == ''


def test_zpool_create_never_forces():
    argv = zpool_create_argv({'name': 'tank', 'vdevs': ['mirror', '/dev/disk/by-id/a', '/dev/disk/by-id/b'],
                              'options': {'ashift': 12}})
    assert argv == ['zpool', 'create', '-m', 'none', '-o', 'ashift=12', 'tank', 'mirror', '/dev/disk/by-id/a',
                    '/dev/disk/by-id/b']
    assert zpool_create_argv(dict(POOLS[0], version=23))[-3:] == ['version=23', 'tank', '/var/lib/zfs-lab/tank.img']
    assert '-f' not in argv


TEMPLATES = {'production': {'hourly': 36, 'daily': 30, 'monthly': 3, 'autosnap': True, 'hourly_warn': '90m'}}


def test_a_policy_with_a_negative_count_is_named():
    assert sanoid_errors([{'name': 'tank/off'}], TEMPLATES) == []
    text = ' | '.join(sanoid_errors([{'name': 'tank/off', 'daily': -1}], TEMPLATES))
    assert text == 'sanoid_datasets[0] (tank/off).daily must not be negative, got -1'
    text = ' | '.join(sanoid_errors([], {'production': {'hourly': -3}}))
    assert 'sanoid_templates.production.hourly must not be negative, got -3' in text
    assert 'must be an age' in ' | '.join(sanoid_errors([], {'p': {'daily_crit': '-2d'}}))
    unknown = sanoid_errors([{'name': 't/a', 'template': 'gone'}], TEMPLATES)
    assert 'template gone is not in sanoid_templates' in ' | '.join(unknown)
    assert 'must be a whole number' in ' | '.join(sanoid_errors([{'name': 't/a', 'hourly': True}], TEMPLATES))


def test_sanoid_values():
    assert (sanoid_value(True), sanoid_value(False), sanoid_value(3)) == ('yes', 'no', '3')


HOSTVARS = {'backup1': {'syncoid_replications': [{'source_host': 'prod1', 'source': 'tank/off', 'target': 'tank/p/off'},
                                                 {'source_host': 'prod2', 'source': 'tank/obf', 'target': 'tank/p/obf'}],
                        'syncoid_public_key': 'ssh-ed25519 AAAA syncoid@backup1'},
            'prod1': {}, 'prod2': {}}


def test_syncoid_units_are_named_and_checked():
    plan = syncoid_plan(HOSTVARS['backup1']['syncoid_replications'], HOSTVARS)
    assert plan['errors'] == []
    assert [u['name'] for u in plan['units']] == ['prod1-tank-off', 'prod2-tank-obf']
    bad = syncoid_plan([{'source_host': 'nowhere', 'source': 'tank/off', 'target': 'tank/x', 'bwlimit': '10 MB',
                         'identifier': 'a b'}, {'source_host': 'prod1'}], HOSTVARS)
    text = ' | '.join(bad['errors'])
    assert 'source_host nowhere is not in the inventory' in text
    assert 'bwlimit 10 MB must be a rate' in text and 'identifier a b' in text
    assert 'syncoid_replications[1]: source is required' in text


def test_sources_learn_which_backup_host_reads_what():
    assert syncoid_sources(HOSTVARS, 'prod1', ['backup1']) == [
        {'backup_host': 'backup1', 'datasets': ['tank/off'], 'key': 'ssh-ed25519 AAAA syncoid@backup1'}]
    assert syncoid_sources(HOSTVARS, 'prod3', ['backup1']) == []
    assert syncoid_targets(HOSTVARS, 'prod1', ['backup1'], 'tank/off') == [{'backup_host': 'backup1', 'target': 'tank/p/off'}]


def test_every_filter_is_exported():
    assert set(FilterModule().filters()) == {'zfs_datasets', 'zfs_errors', 'zpool_create_argv', 'sanoid_errors',
                                             'sanoid_value', 'syncoid_plan', 'syncoid_sources', 'syncoid_targets'}
