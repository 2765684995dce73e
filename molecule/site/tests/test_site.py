"""The site playbook composes the layers, and the cross-role contract holds:
memcached (cache layer) is reachable through base's firewall from the web group
only, and listens on the lab's private network, not on every address."""
from conftest import host_address, tcp_connect, tcp_listeners

testinfra_hosts = ['ol-mem0']


def test_memcached_layer_sized_to_the_host(host):
    out = host.check_output("printf 'stats settings\\r\\nquit\\r\\n' | nc -N 127.0.0.1 11211")
    maxbytes = next(int(line.split()[2]) for line in out.splitlines() if line.startswith('STAT maxbytes '))
    # 1 GiB limit - 300 MiB reserve = 724 MiB, in 64 MiB steps
    assert maxbytes == 704 * 1024 * 1024


def test_memcached_listens_on_loopback_and_the_private_network_only(host):
    assert tcp_listeners(host, 11211) == {'127.0.0.1', host_address(host)}


def test_web_group_reaches_memcached(host, lab):
    assert tcp_connect(lab('ol-web1'), host_address(host), 11211)


def test_other_groups_do_not(host, lab):
    assert not tcp_connect(lab('ol-home0'), host_address(host), 11211)


def test_every_host_got_the_base_layer(lab):
    for name in ('ol-mem0', 'ol-web1', 'ol-home0'):
        node = lab(name)
        assert node.service('nftables').is_enabled, name
        assert node.user('admin').exists, name
        assert 'passwordauthentication no' in node.check_output('sshd -T').lower(), name
