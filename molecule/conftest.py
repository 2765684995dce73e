"""Helpers shared by every scenario's testinfra tests.

molecule runs pytest with the scenario's inventory in MOLECULE_INVENTORY_FILE
and its ansible.cfg/collection path in the environment; these helpers reuse
both so a test can reach any lab host or re-run a playbook against it.
"""
import json
import os
import subprocess
import time

import pytest
import testinfra

SCENARIO_DIR = os.environ.get('MOLECULE_SCENARIO_DIRECTORY', '')
INVENTORY = os.environ.get('MOLECULE_INVENTORY_FILE', '')


def lab_host(name):
    """A testinfra host for another instance of the scenario."""
    return testinfra.get_host('ansible://%s' % name, ansible_inventory=INVENTORY)


@pytest.fixture
def lab():
    return lab_host


def host_address(host):
    """The host's address on the scenario network."""
    return host.ansible('setup', 'gather_subset=network', check=False)['ansible_facts']['ansible_default_ipv4']['address']


def tcp_connect(from_host, address, port, timeout=3):
    """True when from_host opens a TCP connection to address:port."""
    probe = (
        'import socket,sys\n'
        's=socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET)\n'
        's.settimeout(%d)\n'
        'try:\n s.connect((sys.argv[1], int(sys.argv[2])))\nexcept OSError as e:\n print(e); sys.exit(1)\n'
    ) % timeout
    return from_host.run('python3 -c %s %s %s', probe, address, str(port)).rc == 0


def udp_answers(from_host, address, port, payload_hex, timeout=2):
    """True when a UDP datagram to address:port draws any reply."""
    probe = (
        'import socket,sys,binascii\n'
        's=socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n'
        's.settimeout(%d)\n'
        's.sendto(binascii.unhexlify(sys.argv[3]), (sys.argv[1], int(sys.argv[2])))\n'
        'try:\n s.recvfrom(65536)\nexcept OSError:\n sys.exit(1)\n'
    ) % timeout
    return from_host.run('python3 -c %s %s %s %s', probe, address, str(port), payload_hex).rc == 0


def wait_for(predicate, timeout, interval=0.5):
    """Poll predicate until it is true or timeout seconds pass; its last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def wait_for_listener(host, port, timeout=30):
    """Wait until something on host listens on TCP port (a started unit may not listen yet)."""
    deadline = time.monotonic() + timeout
    while not tcp_listeners(host, port):
        assert time.monotonic() < deadline, 'nothing listens on %s after %d s' % (port, timeout)
        time.sleep(0.2)


def tcp_listeners(host, port):
    """The local addresses with a TCP listener on port, e.g. {'127.0.0.1'}."""
    out = host.check_output('ss -Htln sport = :%s', str(port))
    return {line.split()[3].rsplit(':', 1)[0].strip('[]') for line in out.splitlines() if line.strip()}


def udp_listeners(host, port):
    out = host.check_output('ss -Hluan sport = :%s', str(port))
    return {line.split()[3].rsplit(':', 1)[0].strip('[]') for line in out.splitlines() if line.strip()}


def run_playbook(playbook, extra_vars=None, check=False, limit=None, inventories=()):
    """Run a playbook of the scenario against its instances; returns (rc, output).

    inventories: more inventory sources after the scenario's (their host_vars win), e.g.
    a directory standing for the operator's inventory update after a runbook."""
    cmd = ['ansible-playbook', '-i', INVENTORY]
    for inventory in inventories:
        cmd += ['-i', str(inventory)]
    cmd.append(os.path.join(SCENARIO_DIR, playbook))
    if extra_vars:
        cmd += ['-e', json.dumps(extra_vars)]
    if check:
        cmd += ['--check', '--diff']
    if limit:
        cmd += ['--limit', limit]
    env = dict(os.environ, ANSIBLE_FORCE_COLOR='0', ANSIBLE_NOCOLOR='1')
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True, timeout=600, check=False)
    return proc.returncode, proc.stdout


def recap_counts(output, host):
    """{'ok': n, 'changed': n, ...} from the PLAY RECAP line of host."""
    for line in output.splitlines():
        if line.startswith(host + ' ') and 'ok=' in line:
            return {k: int(v) for k, v in (field.split('=') for field in line.split()[2:])}
    raise AssertionError('no recap for %s in:\n%s' % (host, output[-3000:]))


def http_get(from_host, url, timeout=3):
    """(status, body) of a GET from from_host, or (None, error text) when nothing answers."""
    probe = (
        'import sys,urllib.request,urllib.error\n'
        'try:\n'
        ' r=urllib.request.urlopen(sys.argv[1], timeout=%d)\n'
        ' print(r.status); sys.stdout.write(r.read().decode())\n'
        'except urllib.error.HTTPError as e:\n'
        ' print(e.code); sys.stdout.write(e.read().decode())\n'
        'except OSError as e:\n'
        ' print(0); sys.stdout.write(str(e))\n'
    ) % timeout
    status, body = (from_host.run('python3 -c %s %s', probe, url).stdout.split('\n', 1) + [''])[:2]
    return (int(status) or None) if status.strip().isdigit() else None, body


def assert_refused(playbook, extra_vars, messages, host_name):
    """Run playbook with bad input: it must fail, say every message (whitespace
    folded) and change nothing on host_name. Returns the output."""
    rc, out = run_playbook(playbook, extra_vars=extra_vars)
    assert rc != 0, out[-3000:]
    flat = ' '.join(out.split())
    for message in messages:
        assert message in flat, out[-3000:]
    assert recap_counts(out, host_name)['changed'] == 0
    return out
