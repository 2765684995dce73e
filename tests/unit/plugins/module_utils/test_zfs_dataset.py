"""zfs_dataset: values compared as zfs means them, so a second run changes nothing and a real
change is reported (the molecule zfs scenario runs it against zfs-fuse)."""
from ansible_collections.commons.infra.plugins.module_utils.zfs_dataset import differences, ensure, normalize


class FakeZfs(object):
    """Stands in for the zfs command: datasets and their local properties, parsable output."""

    def __init__(self, datasets=None):
        self.datasets = datasets or {}
        self.calls = []

    def __call__(self, argv):
        self.calls.append(argv[1:])
        verb, args = argv[1], argv[2:]
        if verb == 'list':
            return (0, args[-1] + '\n', '') if args[-1] in self.datasets else (1, '', 'does not exist')
        if verb == 'create':
            props = dict(a.split('=', 1) for a in args[2:-1:2])
            self.datasets[args[-1]] = props
            return 0, '', ''
        if verb == 'get':
            props = self.datasets[args[-1]]
            lines = []
            for prop in args[-2].split(','):
                value = props.get(prop)
                lines.append('%s\t%s\t%s' % (prop, normalize(prop, value) if value else 'default-value',
                                             'local' if value else 'default'))
            return 0, '\n'.join(lines) + '\n', ''
        if verb == 'set':
            prop, value = args[0].split('=', 1)
            self.datasets[args[1]][prop] = value
            return 0, '', ''
        raise AssertionError(argv)


WANTED = {'compression': 'gzip', 'quota': '200M', 'recordsize': '64K', 'atime': False, 'mountpoint': '/mnt/off'}


def test_sizes_compression_and_booleans_compare_as_zfs_means_them():
    assert normalize('quota', '200M') == '209715200' == normalize('quota', '209715200')
    assert normalize('quota', '1.5G') == str(1536 << 20)
    assert normalize('quota', '0') == normalize('quota', 'none')
    assert normalize('compression', 'gzip') == 'gzip-6'
    assert normalize('atime', False) == 'off'


def test_create_then_nothing_then_a_real_change_is_reported():
    zfs = FakeZfs()
    changed, diff = ensure(zfs, 'zfs', 'tank/off', WANTED)
    assert changed and diff['before'] == {'state': 'absent'}
    assert ['create', '-p', '-o', 'atime=off', '-o', 'compression=gzip', '-o', 'mountpoint=/mnt/off', '-o',
            'quota=200M', '-o', 'recordsize=64K', 'tank/off'] in zfs.calls
    assert ensure(zfs, 'zfs', 'tank/off', WANTED) == (False, {'before': {}, 'after': {}})
    assert not any(call[0] == 'set' for call in zfs.calls)
    changed, diff = ensure(zfs, 'zfs', 'tank/off', dict(WANTED, compression='lzjb'))
    assert changed and diff == {'before': {'compression': 'gzip-6'}, 'after': {'compression': 'lzjb'}}
    assert zfs.datasets['tank/off']['compression'] == 'lzjb'


def test_an_inherited_value_is_set_on_the_dataset():
    assert differences({'atime': 'off'}, {'atime': ('off', 'inherited from tank')}) == {'atime': ('off', 'off')}
    assert differences({'atime': 'off'}, {'atime': ('off', 'local')}) == {}


def test_check_mode_changes_nothing():
    zfs = FakeZfs({'tank/off': {'quota': '100M'}})
    changed = ensure(zfs, 'zfs', 'tank/off', {'quota': '200M'}, check_mode=True)[0]
    assert changed and zfs.datasets['tank/off']['quota'] == '100M'
    changed = ensure(zfs, 'zfs', 'tank/new', {}, check_mode=True)[0]
    assert changed and 'tank/new' not in zfs.datasets
