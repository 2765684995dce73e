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
    assert wait_for(lambda: tcp_listeners(host, port), timeout, interval=0.2), \
        'nothing listens on %s after %d s' % (port, timeout)


def tcp_listeners(host, port):
    """The local addresses with a TCP listener on port, e.g. {'127.0.0.1'}."""
    out = host.check_output('ss -Htln sport = :%s', str(port))
    return {line.split()[3].rsplit(':', 1)[0].strip('[]') for line in out.splitlines() if line.strip()}


def udp_listeners(host, port):
    out = host.check_output('ss -Hluan sport = :%s', str(port))
    return {line.split()[3].rsplit(':', 1)[0].strip('[]') for line in out.splitlines() if line.strip()}


def playbook_command(playbook, extra_vars=None, check=False, limit=None, inventories=(), directory=False):
    """The ansible-playbook command line for a playbook of the scenario.

    inventories: more inventory sources after the scenario's (their host_vars win), e.g.
    a directory standing for the operator's inventory update after a runbook.
    directory: read the scenario's whole inventory directory (molecule's inventory plus
    the files a scenario adds beside it, such as extra_hosts.ini)."""
    cmd = ['ansible-playbook', '-i', os.path.dirname(INVENTORY) if directory else INVENTORY]
    for inventory in inventories:
        cmd += ['-i', str(inventory)]
    cmd.append(os.path.join(SCENARIO_DIR, playbook))
    if extra_vars:
        cmd += ['-e', json.dumps(extra_vars)]
    if check:
        cmd += ['--check', '--diff']
    if limit:
        cmd += ['--limit', limit]
    return cmd


def start_playbook(playbook, extra_vars=None, **options):
    """ansible-playbook in the background (a Popen with text output); options as playbook_command."""
    env = dict(os.environ, ANSIBLE_FORCE_COLOR='0', ANSIBLE_NOCOLOR='1')
    return subprocess.Popen(playbook_command(playbook, extra_vars, **options), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=env, text=True)


def run_playbook(playbook, extra_vars=None, **options):
    """Run a playbook of the scenario against its instances; returns (rc, output).
    Options as playbook_command."""
    proc = start_playbook(playbook, extra_vars, **options)
    try:
        out = proc.communicate(timeout=600)[0]
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return proc.returncode, out


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


def assert_refused(playbook, extra_vars, messages, host_name, **options):
    """Run playbook with bad input: it must fail, say every message (whitespace
    folded) and change nothing on host_name. Returns the output. Options as
    playbook_command."""
    rc, out = run_playbook(playbook, extra_vars=extra_vars, **options)
    assert rc != 0, out[-3000:]
    flat = ' '.join(out.split())
    for message in messages:
        assert message in flat, out[-3000:]
    assert recap_counts(out, host_name)['changed'] == 0
    return out


# ------------------------------------------------------------------ haproxy and request loops

def admin(edge, command, socket='/run/haproxy/admin.sock'):
    """haproxy's answer to a command on its admin socket (socat on the edge host)."""
    return edge.check_output('echo %s | socat -t 5 stdio unix-connect:%s', command, socket)


def server_rows(edge, backend='web'):
    """{server: {'status': ..., 'scur': int}} from `show stat`."""
    lines = admin(edge, 'show stat').splitlines()
    header = lines[0][2:].split(',')
    rows = {}
    for line in lines[1:]:
        row = dict(zip(header, line.split(',')))
        if row.get('pxname') == backend and row.get('svname') not in ('FRONTEND', 'BACKEND'):
            rows[row['svname']] = {'status': row['status'], 'scur': int(row['scur'] or 0)}
    return rows


def wait_status(edge, server, prefix, timeout=30, backend='web'):
    deadline = time.monotonic() + timeout
    while not server_rows(edge, backend)[server]['status'].startswith(prefix):
        assert time.monotonic() < deadline, '%s not %s after %ds: %s' % (server, prefix, timeout, server_rows(edge, backend))
        time.sleep(0.2)


def run_load(client, count, url, concurrency=4, until=None, name='load', wait=True, timeout=10, expect=(), max_requests=20000, pause=0):
    """Start edge_load.py (molecule/edge/files) on client; with wait, return its summary."""
    out = '/tmp/%s.json' % name
    client.run('rm -f %s %s.progress %s', out, out, until or '/nonexistent')
    command = 'python3 /usr/local/bin/edge_load.py %s --count %d --concurrency %d --timeout %s --progress %s.progress --max %d --pause %s' % (
        url, count, concurrency, timeout, out, max_requests, pause)
    if until:
        command += ' --until %s' % until
    for item in expect:
        command += ' --expect %s' % item
    client.run("sh -c 'nohup %s > %s.part 2>/tmp/%s.err && mv %s.part %s' >/dev/null 2>&1 &" % (command, out, name, out, out))
    return load_result(client, name) if wait else out


def load_progress(client, name):
    result = client.run('cat /tmp/%s.json.progress', name)
    return int(result.stdout or 0) if result.rc == 0 else 0


def wait_progress(client, name, at_least, timeout=60):
    deadline = time.monotonic() + timeout
    while load_progress(client, name) < at_least:
        assert time.monotonic() < deadline, 'load %s made no progress' % name
        time.sleep(0.2)


def load_result(client, name, timeout=240):
    deadline = time.monotonic() + timeout
    while not client.file('/tmp/%s.json' % name).exists:
        assert time.monotonic() < deadline, 'load %s did not finish: %s' % (name, client.run('cat /tmp/%s.err', name).stdout)
        time.sleep(0.3)
    return json.loads(client.file('/tmp/%s.json' % name).content_string)


def report(label, result):
    print('\n%s: %d requests, %d failures, p50 %s ms, p99 %s ms, %s req/s, statuses %s, hosts %s, errors %s' % (
        label, result['requests'], result['failures'], result['p50_ms'], result['p99_ms'], result['rps'],
        result['statuses'], result['hosts'], result['errors'][:3]))
