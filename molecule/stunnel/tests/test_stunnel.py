"""stunnel: each client reaches the server's services through its own PSK tunnel, and nobody else does."""
import base64
import time

import pytest

from conftest import assert_refused, host_address, http_get, recap_counts, run_playbook, tcp_connect

testinfra_hosts = ['st-server']

HOSTS = ['st-server', 'st-client1', 'st-client2', 'st-outsider']
DIR = '/etc/stunnel/commons-infra'
KEYS = DIR + '/keys'
MEMCACHED_TLS = 11212
WEB_TLS = 8443
KEY = 'a1' * 32


def memcached_ask(host, request, address='127.0.0.1', port=11211):
    """memcached's reply to request (plaintext) at address:port, '' when nothing answers."""
    probe = (
        'import socket,sys\n'
        's=socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)\n'
        's.sendall(sys.argv[3].encode().decode("unicode_escape").encode())\n'
        'data=b""\n'
        'try:\n'
        ' while not data.endswith(b"\\r\\n"):\n'
        '  chunk=s.recv(4096)\n'
        '  if not chunk: break\n'
        '  data+=chunk\n'
        'except OSError: pass\n'
        'print(data.decode(errors="replace"))\n'
    )
    return host.run('python3 -c %s %s %s %s', probe, address, str(port), request).stdout


def psk_session(client, identity, key_file, port, tls='-tls1_3', cipher=''):
    """memcached's answer to `version` over a TLS-PSK session opened by hand with openssl,
    the key read from key_file on the client (never passed through the test)."""
    cmd = ('key=$(cut -d: -f2 %s); printf "version\\r\\n" | timeout 5 openssl s_client -quiet %s %s '
           '-psk_identity %s -psk "$key" -connect st-server:%d 2>&1') % (key_file, tls, cipher, identity, port)
    return client.run(cmd).stdout


def wait_until(predicate, seconds=10):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def main_pid(host, unit):
    return host.check_output('systemctl show -p MainPID --value %s', unit)


def all_key_material(lab):
    keys = set()
    server = lab('st-server')
    for line in server.check_output('cat %s/*/*.psk', KEYS).splitlines():
        keys.add(line.split(':', 1)[1])
    return keys


def test_each_client_reaches_memcached_through_its_tunnel(lab):
    one, two = lab('st-client1'), lab('st-client2')
    assert 'STORED' in memcached_ask(one, 'set tunnel 0 0 5\\r\\nhello\\r\\n')
    # The same memcached, seen from the other client's tunnel.
    assert 'VALUE tunnel 0 5' in memcached_ask(two, 'get tunnel\\r\\n')
    # Neither client runs memcached itself.
    assert not one.package('memcached').is_installed and not two.package('memcached').is_installed


def test_web_client_reaches_nginx_and_the_other_has_no_tunnel(lab):
    status, body = http_get(lab('st-client1'), 'http://127.0.0.1:8080/')
    assert status == 200 and 'nginx' in body
    assert http_get(lab('st-client2'), 'http://127.0.0.1:8080/')[0] is None


def test_accept_port_does_not_speak_plaintext(host, lab):
    client = lab('st-client1')
    assert 'VERSION' in memcached_ask(host, 'version\\r\\n')             # control: memcached itself
    assert tcp_connect(client, 'st-server', MEMCACHED_TLS)              # the port is open to this client
    assert 'VERSION' not in memcached_ask(client, 'version\\r\\n', 'st-server', MEMCACHED_TLS)
    assert 'VERSION' not in memcached_ask(client, 'GET / HTTP/1.0\\r\\n\\r\\n', 'st-server', WEB_TLS)


@pytest.mark.parametrize('tls', ['-tls1_3', '-tls1_2'])
def test_own_identity_and_key_work_over_tls12_and_tls13(lab, tls):
    client = lab('st-client1')
    assert 'VERSION' in psk_session(client, 'memcached@st-client1', DIR + '/client-memcached.psk', MEMCACHED_TLS, tls)


def test_another_clients_identity_is_refused(lab):
    client = lab('st-client1')
    out = psk_session(client, 'memcached@st-client2', DIR + '/client-memcached.psk', MEMCACHED_TLS)
    assert 'VERSION' not in out
    out = psk_session(client, 'memcached@st-client2', DIR + '/client-memcached.psk', MEMCACHED_TLS, '-tls1_2')
    assert 'VERSION' not in out


def test_own_key_for_another_service_is_refused(lab):
    client = lab('st-client1')
    out = psk_session(client, 'memcached@st-client1', DIR + '/client-memcached.psk', WEB_TLS)
    assert 'VERSION' not in out and 'nginx' not in out
    # and the web key does not open memcached
    out = psk_session(client, 'web@st-client1', DIR + '/client-web.psk', MEMCACHED_TLS)
    assert 'VERSION' not in out


def test_dhe_psk_is_not_offered(lab):
    out = psk_session(lab('st-client1'), 'memcached@st-client1', DIR + '/client-memcached.psk', MEMCACHED_TLS,
                      '-tls1_2', '-cipher DHE-PSK-AES256-GCM-SHA384')
    assert 'VERSION' not in out


def test_only_clients_reach_accept_ports(host, lab):
    address = host_address(host)
    assert tcp_connect(lab('st-client1'), address, MEMCACHED_TLS)
    assert tcp_connect(lab('st-client2'), address, MEMCACHED_TLS)
    assert tcp_connect(lab('st-client1'), address, WEB_TLS)
    assert not tcp_connect(lab('st-client2'), address, WEB_TLS)         # not a client of web
    assert not tcp_connect(lab('st-outsider'), address, MEMCACHED_TLS)
    assert not tcp_connect(lab('st-outsider'), address, WEB_TLS)


def test_one_instance_a_tunnel_without_dh_parameters(host, lab):
    for unit in ('stunnel-psk@server-memcached', 'stunnel-psk@server-web'):
        assert host.service(unit).is_running and host.service(unit).is_enabled
        assert host.check_output('ps -o user= -p %s', main_pid(host, unit)) == 'stunnel4'
        log = host.check_output('journalctl -b -u %s', unit)
        assert 'Configuration successful' in log
        # With a DHE cipher stunnel logs "Updating DH parameters" at start (seconds on 2 cores).
        assert 'DH parameters' not in log
    assert lab('st-client2').service('stunnel-psk@client-memcached').is_running
    assert not lab('st-client2').file(DIR + '/client-web.conf').exists
    assert not lab('st-outsider').package('stunnel4').is_installed


def test_keys_are_0600_and_each_client_holds_only_its_own(host, lab):
    for path in host.check_output('ls %s/memcached/*.psk %s/web/*.psk', KEYS, KEYS).split():
        assert host.file(path).mode == 0o600 and host.file(path).user == 'root'
    for path in (DIR + '/server-memcached.psk', DIR + '/server-web.psk'):
        assert host.file(path).mode == 0o600 and host.file(path).user == 'stunnel4'
    server_ids = [line.split(':')[0] for line in host.check_output('cat %s/server-memcached.psk', DIR).splitlines()]
    assert sorted(server_ids) == ['memcached@st-client1', 'memcached@st-client2']
    for name in ('st-client1', 'st-client2'):
        secrets = lab(name).file(DIR + '/client-memcached.psk')
        assert secrets.mode == 0o600 and secrets.user == 'stunnel4'
        lines = lab(name).check_output('cat %s', secrets.path).splitlines()
        assert [line.split(':')[0] for line in lines] == ['memcached@' + name]
    keys = all_key_material(lab)
    assert len(keys) == 3 and all(len(k) == 64 for k in keys)   # three connections, three keys


def test_layer_playbook_in_check_mode_changes_nothing():
    # playbooks/stunnel.yml alone, all hosts in one batch; molecule's idempotence covers converge.yml.
    rc, out = run_playbook('../../playbooks/stunnel.yml', extra_vars={'stunnel_serial': 4}, check=True)
    assert rc == 0, out[-3000:]
    for name in HOSTS:
        assert recap_counts(out, name)['changed'] == 0, (name, out[-3000:])


PROBE = '''
import os, socket, sys, time
s = socket.create_connection(("127.0.0.1", 11211), timeout=5)
answered = 0
while not os.path.exists("/root/probe.stop") and answered < 2000:
    s.sendall(b"version\\r\\n")
    if not s.recv(100).startswith(b"VERSION"):
        print("FAILED after", answered); sys.exit(1)
    answered += 1
    with open("/root/probe.count", "w") as f:
        f.write(str(answered))
    time.sleep(0.05)
print("OK", answered)
'''


def test_rotating_one_key_keeps_the_other_client_connected_and_prints_no_key(host, lab, monkeypatch):
    one, two = lab('st-client1'), lab('st-client2')
    old_key = one.check_output('cut -d: -f2 %s/client-memcached.psk', DIR)
    two_secrets = two.file(DIR + '/client-memcached.psk').sha256sum
    two_pid = main_pid(two, 'stunnel-psk@client-memcached')
    server_pid = main_pid(host, 'stunnel-psk@server-memcached')
    web_secrets = host.file(DIR + '/server-web.psk').sha256sum

    # st-client2 keeps one connection open through its tunnel across the rotation.
    two.run('rm -f /root/probe.stop /root/probe.count /root/probe.out')
    two.check_output('echo %s | base64 -d > /root/probe.py', base64.b64encode(PROBE.encode()).decode())
    two.check_output('systemd-run --unit stunnel-probe --collect -p StandardOutput=file:/root/probe.out '
                     'python3 /root/probe.py')
    assert wait_until(lambda: two.file('/root/probe.count').exists)

    monkeypatch.setenv('ANSIBLE_VERBOSITY', '1')
    rc, out = run_playbook('tunnels.yml', extra_vars={'stunnel_rotate': ['memcached@st-client1']})
    assert rc == 0, out[-3000:]
    two.check_output('touch /root/probe.stop')
    assert wait_until(lambda: two.run('systemctl is-active stunnel-probe').stdout.strip() != 'active')
    result = two.check_output('cat /root/probe.out')
    assert result.startswith('OK') and int(result.split()[1]) > 20, result

    new_key = one.check_output('cut -d: -f2 %s/client-memcached.psk', DIR)
    assert new_key != old_key
    # The server reloaded (same process), client 2 was not touched, web was not touched.
    assert main_pid(host, 'stunnel-psk@server-memcached') == server_pid
    assert main_pid(two, 'stunnel-psk@client-memcached') == two_pid
    assert two.file(DIR + '/client-memcached.psk').sha256sum == two_secrets
    assert host.file(DIR + '/server-web.psk').sha256sum == web_secrets
    # Both clients still get through; the old key no longer does.
    assert 'VERSION' in memcached_ask(one, 'version\\r\\n')
    assert 'VERSION' in memcached_ask(two, 'version\\r\\n')
    one.check_output('printf "memcached@st-client1:%s\\n" > /root/old.psk', old_key)
    assert 'VERSION' not in psk_session(one, 'memcached@st-client1', '/root/old.psk', MEMCACHED_TLS)
    one.run('rm -f /root/old.psk')

    # Not one key, old or new, in the -v output.
    for key in all_key_material(lab) | {old_key}:
        assert key not in out and key.upper() not in out


def test_a_key_from_the_vault_replaces_the_generated_one_without_showing_it(host, lab, monkeypatch):
    vault_key = '5e' * 32
    two = lab('st-client2')
    monkeypatch.setenv('ANSIBLE_VERBOSITY', '1')
    rc, out = run_playbook('tunnels.yml', extra_vars={'stunnel_psks': {'memcached@st-client2': vault_key}})
    assert rc == 0, out[-3000:]
    assert vault_key not in out
    assert two.check_output('cat %s/client-memcached.psk', DIR) == 'memcached@st-client2:' + vault_key
    assert 'memcached@st-client2:' + vault_key in host.check_output('cat %s/server-memcached.psk', DIR)
    assert host.file(KEYS + '/memcached/memcached@st-client2.psk').mode == 0o600
    assert 'VERSION' in memcached_ask(two, 'version\\r\\n')
    assert 'VERSION' in memcached_ask(lab('st-client1'), 'version\\r\\n')


BAD_INPUT = [
    pytest.param('tunnels.yml', {'stunnel_psks': {'memcached@st-client1': KEY, 'memcached@st-client2': KEY}},
                 ['stunnel_psks: memcached@st-client1 and memcached@st-client2 share one key'], id='psk-reused'),
    pytest.param('tunnels.yml', {
        'lab_server_view': [{'name': 'memcached', 'server': 'st-server', 'accept_port': MEMCACHED_TLS,
                             'connect': '127.0.0.1:11211', 'client_hosts': ['st-client1']}],
        'lab_client_view': [{'name': 'memcached', 'server': 'st-server', 'accept_port': MEMCACHED_TLS,
                             'connect': '127.0.0.1:11211', 'client_hosts': ['st-client1', 'st-client2']}],
        'stunnel_services': "{{ lab_server_view if inventory_hostname == 'st-server' else lab_client_view }}"},
        ['stunnel_services[0] (memcached): client(s) st-client2 listed for memcached, but server st-server does not know them'],
        id='client-unknown-to-server'),
    pytest.param('tunnels.yml', {'stunnel_client_name': 'web'},
                 ['identity collision: st-client1 and st-client2 both get identity memcached@web'], id='identity-collision'),
    pytest.param('tunnels.yml', {'stunnel_services': [{'name': 'memcached', 'server': 'st-server', 'accept_port': 11212,
                                                       'connect': '127.0.0.1:11211', 'client_groups': ['nosuch'],
                                                       'client_hosts': ['ghost']}]},
                 ['stunnel_services[0] (memcached): client_groups names unknown inventory group(s) nosuch',
                  'client_hosts names unknown inventory host(s) ghost'], id='unknown-group-and-host'),
    pytest.param('tunnels.yml', {'stunnel_services': [{'name': 'memcached', 'server': 'st-server', 'accept_port': 70000,
                                                       'connect': '127.0.0.1:11211', 'client_groups': ['stunnel_clients']}]},
                 ['stunnel_services[0] (memcached): accept_port must be a port 1-65535, got 70000'], id='port-out-of-range'),
]


@pytest.mark.parametrize('playbook,extra_vars,messages', BAD_INPUT)
def test_bad_input_fails_before_any_change(host, lab, playbook, extra_vars, messages):
    def state():
        return {name: lab(name).check_output(
            'cat %s/*.conf %s/*.psk 2>/dev/null | sha256sum; systemctl show -p MainPID --value "stunnel-psk@*"', DIR, DIR)
            for name in HOSTS[:3]}
    before = state()
    out = assert_refused(playbook, extra_vars, messages, 'st-server')
    for name in HOSTS:
        counts = recap_counts(out, name) if name + ' ' in out else {'changed': 0}
        assert counts['changed'] == 0, (name, out[-3000:])
    assert KEY not in out
    assert state() == before


def test_configuration_stunnel_refuses_never_goes_live(host, lab):
    conf = DIR + '/server-memcached.conf'
    before = host.file(conf).sha256sum
    pid = main_pid(host, 'stunnel-psk@server-memcached')
    assert_refused('tunnels.yml', {'stunnel_ciphers': 'NO-SUCH-CIPHER'},
                   ['failed to validate', 'is not a working stunnel configuration'], 'st-server')
    # The last good configuration is still the live one, and it still works.
    assert host.file(conf).sha256sum == before
    assert main_pid(host, 'stunnel-psk@server-memcached') == pid
    assert 'VERSION' in memcached_ask(lab('st-client2'), 'version\\r\\n')
