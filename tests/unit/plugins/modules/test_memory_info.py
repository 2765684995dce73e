"""memory_info end to end: the module run as Ansible runs it, on this machine."""
import json
import os
import subprocess
import sys

import ansible_collections


def run_module(tmp_path, args):
    args_file = tmp_path / 'args.json'
    args_file.write_text(json.dumps({'ANSIBLE_MODULE_ARGS': args}))
    pypath = os.path.dirname(list(ansible_collections.__path__)[0])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([pypath] + sys.path))
    proc = subprocess.run(
        [sys.executable, '-m', 'ansible_collections.commons.infra.plugins.modules.memory_info', str(args_file)],
        capture_output=True, text=True, env=env, check=False)
    return proc.returncode, json.loads(proc.stdout)


def test_reports_memory_and_changes_nothing(tmp_path):
    rc, result = run_module(tmp_path, {'_ansible_check_mode': True})
    assert rc == 0, result
    assert result['changed'] is False
    memory = result['memory']
    with open('/proc/meminfo') as handle:
        total_kib = int(next(line for line in handle if line.startswith('MemTotal:')).split()[1])
    assert memory['total_mb'] == total_kib // 1024
    assert memory['usable_mb'] == min(memory['total_mb'], memory['cgroup_limit_mb'] or memory['total_mb'])


def test_unknown_option_is_refused(tmp_path):
    rc, result = run_module(tmp_path, {'pid': 1, 'bogus': True})
    assert rc != 0
    assert 'bogus' in result['msg']
