"""memcached_memory_mb: the Open Library sizing rule, on the numbers operators meet."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.commons.infra.plugins.filter.memory import FilterModule, memcached_memory_mb


def test_registered_under_its_documented_name():
    assert FilterModule().filters()['memcached_memory_mb'] is memcached_memory_mb


def test_runbook_example_9_7_gb_host():
    # "if the machine has 9.7GB, use -m 9300 or a bit higher": 9932 MiB - 300 MiB
    assert memcached_memory_mb(9932) == 9632


def test_cgroup_limit_wins_over_ram():
    assert memcached_memory_mb({'total_mb': 24032, 'cgroup_limit_mb': 512, 'usable_mb': 512}) == 212


def test_usable_computed_when_only_total_and_limit_given():
    assert memcached_memory_mb({'total_mb': 24032, 'cgroup_limit_mb': 1024}) == 724
    assert memcached_memory_mb({'total_mb': 2048, 'cgroup_limit_mb': None}) == 1748


def test_ram_wins_when_limit_is_higher():
    assert memcached_memory_mb({'total_mb': 1000, 'cgroup_limit_mb': 4000}) == 700


def test_floor_applies_when_little_is_left():
    assert memcached_memory_mb(320, reserve_mb=300, floor_mb=64) == 64


def test_override_wins_and_skips_reserve_check():
    assert memcached_memory_mb(100, reserve_mb=300, override_mb=50) == 50


def test_step_absorbs_a_small_memtotal_shift():
    # a kernel update moves MemTotal by a few MiB: the cache size, and so the config, stays put
    sizes = {memcached_memory_mb({'total_mb': total, 'cgroup_limit_mb': None}, step_mb=64) for total in (16006, 16012, 16030)}
    assert sizes == {15680}
    assert memcached_memory_mb({'total_mb': 24032, 'cgroup_limit_mb': 512}, step_mb=64) == 192
    assert memcached_memory_mb({'total_mb': 24032, 'cgroup_limit_mb': 530}, step_mb=64) == 192


def test_step_never_goes_below_the_floor_and_leaves_overrides_alone():
    assert memcached_memory_mb(400, reserve_mb=300, floor_mb=64, step_mb=256) == 64
    assert memcached_memory_mb(9932, override_mb=1000, step_mb=64) == 1000


def test_custom_reserve():
    assert memcached_memory_mb(4096, reserve_mb=1024) == 3072


@pytest.mark.parametrize('memory,kwargs,message', [
    (300, {}, 'reserve_mb (300 MiB) leaves nothing of the 300 MiB'),
    (512, {'reserve_mb': 600}, 'reserve_mb (600 MiB) leaves nothing of the 512 MiB'),
    (512, {'reserve_mb': -1}, 'reserve_mb must be >= 0'),
    (512, {'floor_mb': 0}, 'floor_mb >= 1'),
    ('lots', {}, "memory must be a whole number of MiB, got 'lots'"),
    (512.5, {}, 'memory must be a whole number of MiB'),
    (True, {}, 'memory must be a whole number of MiB'),
    ({'cgroup_limit_mb': 512}, {}, 'memory must hold total_mb'),
    (512, {'override_mb': 0}, 'override_mb must be at least 1'),
    (512, {'reserve_mb': 'x'}, 'reserve_mb must be a whole number'),
    (512, {'step_mb': 0}, 'step_mb must be at least 1'),
])
def test_bad_input_names_the_argument(memory, kwargs, message):
    with pytest.raises(AnsibleFilterError) as err:
        memcached_memory_mb(memory, **kwargs)
    assert message in str(err.value)
