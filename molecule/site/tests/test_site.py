"""The site playbook composes the layers, and the cross-role contracts hold: memcached
(cache layer) is reachable through base's firewall from its client groups only and
listens on the lab's private network, not on every address; every host is converged
over ssh as the admin user. test_site_edge.py: the site through its edge, the port
scan from an outsider, the converged site in --check."""
import os
import subprocess

import yaml
from conftest import host_address, tcp_connect, tcp_listeners

LAB_HOSTS = ('ol-www0', 'ol-web1', 'ol-web2', 'ol-home0', 'ol-db1', 'ol-db2', 'ol-mem0')
KEY = os.path.join(os.environ.get('MOLECULE_PROJECT_DIRECTORY', '.'), '.cache', 'lab', 'admin_ed25519')

testinfra_hosts = ['ol-mem0']


def test_memcached_layer_sized_to_the_host(host):
    out = host.check_output("printf 'stats settings\\r\\nquit\\r\\n' | nc -N 127.0.0.1 11211")
    maxbytes = next(int(line.split()[2]) for line in out.splitlines() if line.startswith('STAT maxbytes '))
    # 1 GiB limit - 300 MiB reserve = 724 MiB, in 64 MiB steps
    assert maxbytes == 704 * 1024 * 1024


def test_memcached_listens_on_loopback_and_the_private_network_only(host):
    assert tcp_listeners(host, 11211) == {'127.0.0.1', host_address(host)}


def test_memcached_clients_reach_memcached(host, lab):
    for name in ('ol-web1', 'ol-web2', 'ol-home0'):
        assert tcp_connect(lab(name), host_address(host), 11211), name


def test_other_groups_do_not(host, lab):
    for name in ('ol-www0', 'ol-db1'):
        assert not tcp_connect(lab(name), host_address(host), 11211), name


def test_every_host_got_the_base_layer(lab):
    for name in LAB_HOSTS:
        node = lab(name)
        assert node.service('nftables').is_enabled, name
        assert node.user('admin').exists, name
        assert 'passwordauthentication no' in node.check_output('sshd -T').lower(), name


def lab_address(name):
    """The fixed address the lab inventory gives the host (host_vars/<name>.yml, or the
    lab overlay of a host whose production host_vars are linked in host_vars/<name>/)."""
    base = os.path.join(os.environ['MOLECULE_PROJECT_DIRECTORY'], 'inventory', 'lab', 'host_vars', name)
    path = base + '.yml' if os.path.exists(base + '.yml') else os.path.join(base, '20-lab.yml')
    with open(path, encoding='utf-8') as handle:
        return yaml.safe_load(handle)['ansible_host']


def ssh(name, *args):
    cmd = ['ssh', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
           '-o', 'LogLevel=ERROR', '-o', 'ConnectTimeout=5', *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)


def test_the_site_is_converged_over_ssh_as_the_admin_with_its_key(host):
    # These tests reach the host as converge did (the lab inventory): ssh as admin, sudo.
    assert host.check_output('echo $SUDO_USER') == 'admin'
    assert host_address(host) == lab_address('ol-mem0')
    for name in LAB_HOSTS:
        address = lab_address(name)
        login = ssh(name, '-i', KEY, 'admin@' + address, 'sudo', '-n', 'id', '-un')
        assert login.returncode == 0 and login.stdout.strip() == 'root', (name, login.stderr)


def test_password_logins_and_root_logins_are_refused(host):
    for name in LAB_HOSTS:
        address = lab_address(name)
        password = ssh(name, '-o', 'PreferredAuthentications=password,keyboard-interactive',
                       '-o', 'PubkeyAuthentication=no', 'admin@' + address, 'true')
        assert password.returncode == 255 and 'Permission denied' in password.stderr, (name, password.stderr)
        root = ssh(name, '-i', KEY, 'root@' + address, 'true')
        assert root.returncode == 255, (name, root.stderr)
