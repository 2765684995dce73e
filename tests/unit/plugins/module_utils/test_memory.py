"""memory_info on real /proc and cgroup trees laid out in temp dirs."""
import os

import pytest

from ansible_collections.commons.infra.plugins.module_utils.memory import (
    cgroup_memory_limit, meminfo_total_mb, memory_info, parse_proc_cgroup)

MIB = 1024 * 1024
V1_UNLIMITED = '9223372036854771712'
CONTAINER = '/docker/8347a63997b7'

V1_PROC_CGROUP = """\
12:net_cls,net_prio:/
4:memory:%(c)s/init.scope
1:cpu,cpuacct:%(c)s
0::%(c)s/init.scope
""" % {'c': CONTAINER}

V2_PROC_CGROUP = '0::/system.slice/docker-abc.scope/init.scope\n'


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as handle:
        handle.write(text)


def make_proc(root, total_kib, proc_cgroup):
    write(os.path.join(root, 'meminfo'), 'MemTotal:       %d kB\nMemFree:        1 kB\n' % total_kib)
    write(os.path.join(root, '1', 'cgroup'), proc_cgroup)
    return root


def test_meminfo_total():
    assert meminfo_total_mb('MemFree: 5 kB\nMemTotal:       24608668 kB\n') == 24031
    with pytest.raises(ValueError):
        meminfo_total_mb('MemFree: 5 kB\n')


def test_parse_proc_cgroup_maps_every_controller():
    paths = parse_proc_cgroup(V1_PROC_CGROUP)
    assert paths['memory'] == CONTAINER + '/init.scope'
    assert paths['cpuacct'] == CONTAINER
    assert paths[''] == CONTAINER + '/init.scope'


def test_v1_limit_on_parent_of_init_scope(tmp_path):
    # systemd in the container moves itself to init.scope; the limit sits on the container's cgroup.
    cg = str(tmp_path / 'cgroup')
    write(cg + '/memory' + CONTAINER + '/init.scope/memory.limit_in_bytes', V1_UNLIMITED)
    write(cg + '/memory' + CONTAINER + '/memory.limit_in_bytes', str(512 * MIB))
    write(cg + '/memory/docker/memory.limit_in_bytes', V1_UNLIMITED)
    write(cg + '/memory/memory.limit_in_bytes', V1_UNLIMITED)
    assert cgroup_memory_limit(V1_PROC_CGROUP, cg) == (512 * MIB, 'v1')


def test_tightest_ancestor_wins(tmp_path):
    cg = str(tmp_path / 'cgroup')
    write(cg + '/memory' + CONTAINER + '/memory.limit_in_bytes', str(2048 * MIB))
    write(cg + '/memory/docker/memory.limit_in_bytes', str(1024 * MIB))
    assert cgroup_memory_limit(V1_PROC_CGROUP, cg) == (1024 * MIB, 'v1')


def test_v2_memory_max(tmp_path):
    cg = str(tmp_path / 'cgroup')
    write(cg + '/cgroup.controllers', 'cpu memory pids\n')
    write(cg + '/system.slice/docker-abc.scope/init.scope/memory.max', 'max\n')
    write(cg + '/system.slice/docker-abc.scope/memory.max', '%d\n' % (768 * MIB))
    write(cg + '/system.slice/memory.max', 'max\n')
    assert cgroup_memory_limit(V2_PROC_CGROUP, cg) == (768 * MIB, 'v2')


def test_no_limit_anywhere(tmp_path):
    cg = str(tmp_path / 'cgroup')
    write(cg + '/memory/memory.limit_in_bytes', V1_UNLIMITED)
    assert cgroup_memory_limit('4:memory:/\n', cg) == (None, 'v1')


def test_memory_info_container(tmp_path):
    proc = make_proc(str(tmp_path / 'proc'), 24608668, V1_PROC_CGROUP)
    cg = str(tmp_path / 'cgroup')
    write(cg + '/memory' + CONTAINER + '/memory.limit_in_bytes', str(512 * MIB))
    assert memory_info(proc, cg) == {'total_mb': 24031, 'cgroup_limit_mb': 512, 'cgroup_version': 'v1', 'usable_mb': 512}


def test_memory_info_vm_without_limit(tmp_path):
    # ol-mem0 style VM: 9.7 GB of RAM, PID 1 in the root cgroup.
    proc = make_proc(str(tmp_path / 'proc'), 9932 * 1024, '0::/init.scope\n')
    cg = str(tmp_path / 'cgroup')
    write(cg + '/cgroup.controllers', 'memory\n')
    assert memory_info(proc, cg) == {'total_mb': 9932, 'cgroup_limit_mb': None, 'cgroup_version': 'v2', 'usable_mb': 9932}


def test_limit_above_ram_is_ignored(tmp_path):
    proc = make_proc(str(tmp_path / 'proc'), 1024 * 1024, V1_PROC_CGROUP)
    cg = str(tmp_path / 'cgroup')
    write(cg + '/memory' + CONTAINER + '/memory.limit_in_bytes', str(4096 * MIB))
    assert memory_info(proc, cg)['usable_mb'] == 1024


def test_memory_info_on_this_machine():
    info = memory_info()
    assert info['total_mb'] > 0
    assert 0 < info['usable_mb'] <= info['total_mb']
