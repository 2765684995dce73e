"""The site playbook composes the layers: each host group got its service."""
testinfra_hosts = ['site-mem0']


def test_memcached_layer_sized_to_the_host(host):
    out = host.check_output("printf 'stats settings\\r\\nquit\\r\\n' | nc -N 127.0.0.1 11211")
    maxbytes = next(int(line.split()[2]) for line in out.splitlines() if line.startswith('STAT maxbytes '))
    assert maxbytes == (768 - 300) * 1024 * 1024
