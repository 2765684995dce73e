"""memcached: sized to the cgroup limit, TCP only, listening only on the private network."""
import ipaddress
import subprocess

import pytest

from conftest import (assert_refused, host_address, recap_counts, run_playbook, tcp_connect,
                      tcp_listeners, udp_answers, udp_listeners, wait_for_listener)

testinfra_hosts = ['mc-server']

MIB = 1024 * 1024
CONTAINER_LIMIT_MB = 512  # molecule.yml: memory: 512m
RESERVE_MB = 300          # the role's default
STEP_MB = 64              # the role's default: 512 - 300 = 212, rounded down to 192
CACHE_MB = (CONTAINER_LIMIT_MB - RESERVE_MB) // STEP_MB * STEP_MB
PRIVATE_NETWORK = 'commons-infra-memcached-private'
# memcached's UDP frame header (request 0, 1 datagram) + "stats\r\n"
UDP_STATS = '0000000000010000' + b'stats\r\n'.hex()


def memcached_stats(host, section='settings'):
    out = host.check_output("printf 'stats %s\\r\\nquit\\r\\n' | nc -N 127.0.0.1 11211", section)
    stats = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == 'STAT':
            stats[parts[1]] = parts[2]
    return stats


def test_cache_is_container_limit_minus_reserve(host):
    # /proc/meminfo shows the whole machine (GiBs); the cache must follow the 512 MiB limit.
    assert int(host.check_output("awk '/MemTotal/ {print $2}' /proc/meminfo")) // 1024 > 2 * CONTAINER_LIMIT_MB
    assert int(memcached_stats(host)['maxbytes']) == CACHE_MB * MIB


def test_settings_from_inventory_are_live(host):
    settings = memcached_stats(host)
    assert settings['tcpport'] == '11211'
    assert settings['udpport'] == '0'
    assert settings['maxconns'] == '1024'
    assert settings['num_threads'] == '2'


def test_udp_is_closed(host, lab):
    # prepare.yml seeded -U 11211; the role must have closed it.
    assert udp_listeners(host, 11211) == set()
    client = lab('mc-client')
    assert not udp_answers(client, host_address(host), 11211, UDP_STATS)


def private_subnet():
    return subprocess.check_output(
        ['docker', 'network', 'inspect', '-f', '{{(index .IPAM.Config 0).Subnet}}', PRIVATE_NETWORK], text=True).strip()


def private_address(host):
    subnet = ipaddress.ip_network(private_subnet())
    facts = host.ansible('setup', 'gather_subset=network', check=False)['ansible_facts']
    return next(a for a in facts['ansible_all_ipv4_addresses'] if ipaddress.ip_address(a) in subnet)


def test_listens_only_on_loopback_and_the_private_network(host):
    # prepare.yml seeded -l 0.0.0.0; the default route (the "public" side) is another network
    default = host_address(host)
    assert ipaddress.ip_address(default) not in ipaddress.ip_network(private_subnet())
    assert tcp_listeners(host, 11211) == {'127.0.0.1', private_address(host)}


def test_client_reaches_the_private_address_only(host, lab):
    client = lab('mc-client')
    assert tcp_connect(client, private_address(host), 11211)
    assert not tcp_connect(client, host_address(host), 11211)


def test_memtotal_change_keeps_memcached_running(host):
    # A new cgroup limit (as a kernel update shifts MemTotal) that rounds to the same size:
    # nothing real changed, so the cache must survive the run.
    pid = host.check_output('systemctl show -p MainPID --value memcached')
    subprocess.check_call(['docker', 'update', '--memory', '540m', '--memory-swap', '1080m', 'mc-server'],
                          stdout=subprocess.DEVNULL)
    try:
        rc, out = run_playbook('converge.yml')
        assert rc == 0, out[-3000:]
        assert recap_counts(out, 'mc-server')['changed'] == 0, out[-3000:]
        assert host.check_output('systemctl show -p MainPID --value memcached') == pid
        assert int(memcached_stats(host)['maxbytes']) == CACHE_MB * MIB
    finally:
        subprocess.check_call(['docker', 'update', '--memory', '512m', '--memory-swap', '1024m', 'mc-server'],
                              stdout=subprocess.DEVNULL)


def test_service_enabled_and_survives_restart(host):
    assert host.service('memcached').is_enabled
    host.check_output('systemctl restart memcached')
    assert host.service('memcached').is_running
    wait_for_listener(host, 11211)
    assert int(memcached_stats(host)['maxbytes']) == CACHE_MB * MIB


def test_check_mode_reports_no_drift():
    rc, out = run_playbook('converge.yml', check=True)
    assert rc == 0, out[-3000:]
    assert recap_counts(out, 'mc-server')['changed'] == 0


def test_override_wins_over_sizing(host):
    rc, out = run_playbook('converge.yml', extra_vars={'memcached_memory_mb': 100})
    assert rc == 0, out[-3000:]
    assert int(memcached_stats(host)['maxbytes']) == 100 * MIB
    rc, out = run_playbook('converge.yml')
    assert rc == 0, out[-3000:]
    assert int(memcached_stats(host)['maxbytes']) == CACHE_MB * MIB


BAD_INPUT = [
    pytest.param({'memcached_memory_reserve_mb': 600},
                 ['memcached_memory_reserve_mb (600 MiB)', 'usable memory (512 MiB)'], id='reserve-above-memory'),
    pytest.param({'memcached_port': 'eleven'},
                 ['memcached_port', 'int'], id='port-wrong-type'),
    pytest.param({'memcached_listen': '127.0.0.1'},
                 ['memcached_listen must be a list of addresses, got "127.0.0.1"'], id='listen-not-a-list'),
    pytest.param({'memcached_listen': ['127.0.0.1', '192.0.2.10']},
                 ['memcached_listen', 'not an address of mc-server: 192.0.2.10'], id='listen-unknown-address'),
    pytest.param({'memcached_listen': ['memcache.example']},
                 ['memcached_listen', 'not an IP address: memcache.example'], id='listen-not-an-ip'),
    pytest.param({'memcached_port': 70000},
                 ['memcached_port', 'port=70000'], id='port-out-of-range'),
    pytest.param({'memcached_listen': ['127.0.0.1', '0.0.0.0']},
                 ['memcached would listen on the public or wildcard address 0.0.0.0'], id='listen-wildcard'),
    pytest.param({'memcached_listen_networks': ['10.99.0.0/16']},
                 ['memcached_listen_networks: mc-server has no address in 10.99.0.0/16'], id='network-misses-host'),
    pytest.param({'memcached_listen_networks': ['10.0.1.5/24']},
                 ['memcached_listen_networks must list networks in CIDR notation', '10.0.1.5/24'], id='network-not-cidr'),
]


@pytest.mark.parametrize('extra_vars,messages', BAD_INPUT)
def test_bad_input_fails_before_any_change(host, extra_vars, messages):
    conf_before = host.file('/etc/memcached.conf').sha256sum
    pid_before = host.check_output('systemctl show -p MainPID --value memcached')
    assert_refused('converge.yml', extra_vars, messages, 'mc-server')
    assert host.file('/etc/memcached.conf').sha256sum == conf_before
    assert host.check_output('systemctl show -p MainPID --value memcached') == pid_before


def test_check_mode_on_a_fresh_host_changes_nothing(lab):
    client = lab('mc-client')
    assert not client.package('memcached').is_installed
    rc, out = run_playbook('check_fresh.yml', check=True)
    assert rc == 0, out[-3000:]
    counts = recap_counts(out, 'mc-client')
    assert counts['failed'] == 0
    assert counts['changed'] >= 2  # package and config would change
    assert '+-m ' in out            # the diff shows the sized config
    assert not client.package('memcached').is_installed
    assert not client.file('/etc/memcached.conf').exists
