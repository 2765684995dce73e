"""The site playbook composes the layers, and the cross-role contract holds:
memcached (cache layer) is reachable through base's firewall from the web group
only."""
from conftest import host_address, tcp_connect

testinfra_hosts = ['site-mem0']


def test_memcached_layer_sized_to_the_host(host):
    out = host.check_output("printf 'stats settings\\r\\nquit\\r\\n' | nc -N 127.0.0.1 11211")
    maxbytes = next(int(line.split()[2]) for line in out.splitlines() if line.startswith('STAT maxbytes '))
    assert maxbytes == (768 - 300) * 1024 * 1024


def test_web_group_reaches_memcached(host, lab):
    assert tcp_connect(lab('site-web1'), host_address(host), 11211)


def test_other_groups_do_not(host, lab):
    assert not tcp_connect(lab('site-home0'), host_address(host), 11211)


def test_every_host_got_the_base_layer(lab):
    for name in ('site-mem0', 'site-web1', 'site-home0'):
        node = lab(name)
        assert node.service('nftables').is_enabled, name
        assert node.user('admin').exists, name
        assert 'passwordauthentication no' in node.check_output('sshd -T').lower(), name
