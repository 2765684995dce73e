"""syncoid-guard, the forced command of the syncoid key on a source: what a pulling syncoid
sends passes, anything that writes or escapes is refused (and never run)."""
import importlib.machinery
import importlib.util
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
GUARD = os.path.join(ROOT, 'roles', 'syncoid', 'files', 'syncoid-guard')


def load():
    loader = importlib.machinery.SourceFileLoader('syncoid_guard', GUARD)
    spec = importlib.util.spec_from_loader('syncoid_guard', loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


guard = load()
DATASETS = ['tank/off']

# What syncoid 2.1.0 sends in pull mode (read from its source and a debug run).
ALLOWED = [
    'exit',
    'echo -n',
    'command -v lzop',
    'command -v mbuffer',
    "zfs get -H name 'tank/off'",
    "zfs get -H syncoid:sync 'tank/off'",
    "zfs get -Hpd 1 -t snapshot guid,creation 'tank/off'",
    "zpool get -o value -H feature@extensible_dataset 'tank'",
    "zfs snapshot 'tank/off'@syncoid_prod-tank-off_zfs-backup_2026-11-30:01:44:56",
    " zfs send  -I 'tank/off'@autosnap_a 'tank/off'@syncoid_x | lzop  | mbuffer  -q -s 128k -m 16M 2>/dev/null",
    " zfs send  'tank/off'@'autosnap_2026-11-30_01:45:21_monthly' | lzop  | mbuffer  -q -s 128k -m 16M 2>/dev/null",
    "zfs destroy 'tank/off'@syncoid_x_1; zfs destroy 'tank/off'@syncoid_x_2",
    "zfs list -o name,origin -t filesystem,volume -Hr 'tank/off'",
]

REFUSED = [
    ("zfs receive -F 'tank/off'", 'zfs receive'),
    ("zfs destroy 'tank/off'", 'only snapshots of tank/off'),
    ("zfs destroy -r 'tank/off'@syncoid_x", 'takes no options'),
    ("zfs destroy 'tank/off'@autosnap_daily", 'only syncoid_* snapshots'),
    ("zfs destroy 'tank/off'@syncoid_x,autosnap_y", 'only syncoid_* snapshots'),
    ("zfs send 'tank/secret'@a", 'only tank/off'),
    ("zfs get all tank/offsite", 'only tank/off'),
    ("zfs rollback 'tank/off'@a", 'zfs rollback'),
    ("zfs set readonly=off 'tank/off'", 'zfs set'),
    ('echo hi > /etc/passwd', 'shell syntax'),
    ('zfs list 2>/dev/nullx', 'shell syntax'),
    ('zfs list 2>/etc/passwd', 'shell syntax'),
    ('zfs list $(id)', 'shell syntax'),
    ('cat /etc/shadow', 'cat'),
    ('bash -i', 'bash'),
    ('mbuffer -o /etc/cron.d/x', 'mbuffer'),
    ('lzop -d | sh', 'sh'),
    ('zfs list ||', 'operator'),
    ('', 'empty command'),
]


@pytest.mark.parametrize('command', ALLOWED)
def test_what_syncoid_sends_passes(command):
    for segment in guard.split(command):
        guard.check(segment, DATASETS)


@pytest.mark.parametrize('command, reason', REFUSED)
def test_everything_else_is_refused(command, reason):
    with pytest.raises(guard.Refused) as refusal:
        for segment in guard.split(command):
            guard.check(segment, DATASETS)
    assert reason in str(refusal.value)


def run(command, *datasets):
    env = dict(os.environ, SSH_ORIGINAL_COMMAND=command)
    return subprocess.run([sys.executable, GUARD] + list(datasets), env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=30, check=False)


def test_an_allowed_command_runs(tmp_path):
    result = run('echo -n', 'tank/off')
    assert result.returncode == 0, result.stderr


def test_a_refused_command_is_never_run(tmp_path):
    marker = tmp_path / 'ran'
    result = run('zfs receive tank/off; touch %s' % marker, 'tank/off')
    assert result.returncode == 126
    assert 'syncoid-guard: refused' in result.stderr
    assert not marker.exists()


def test_a_key_without_datasets_allows_nothing():
    result = run('echo -n')
    assert result.returncode == 126 and 'no dataset is allowed' in result.stderr
