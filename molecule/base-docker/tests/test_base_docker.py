"""base with Docker: the firewall table and Docker's chains live side by side."""
import pytest

from conftest import host_address, lab_host, recap_counts, run_playbook, tcp_connect

testinfra_hosts = ['base-docker-host']

IMAGE = 'commons-infra/busybox:lab'


@pytest.fixture(scope='module')
def client():
    return lab_host('base-docker-client')


@pytest.fixture(scope='module')
def outsider():
    return lab_host('base-docker-outsider')


@pytest.fixture(scope='module')
def address(host):
    return host_address(host)


@pytest.fixture(scope='module')
def published(host):
    """A container answering on the host's port 8080, from a one-file busybox image."""
    host.check_output('mkdir -p /root/img/bin /root/img/www && cp /bin/busybox /root/img/bin/busybox'
                      ' && echo hello > /root/img/www/index.html'
                      ' && tar -C /root/img -c . | docker import - %s', IMAGE)
    host.check_output('docker run -d --name web -p 8080:80 %s /bin/busybox httpd -f -p 80 -h /www', IMAGE)
    yield
    host.run('docker rm -f web')


def reachable(client, address):
    return tcp_connect(client, address, 8080)


def test_docker_runs_with_apparmor_and_live_restore(host):
    assert host.service('docker').is_running
    assert host.package('apparmor').is_installed
    assert 'Live Restore Enabled: true' in host.check_output('docker info')


def test_published_port_answers(published, client, address):
    assert reachable(client, address)
    # The firewall is on: a host port nothing allows stays closed.
    host_port_open = tcp_connect(client, address, 9101)
    assert not host_port_open


def test_published_port_is_closed_to_hosts_outside_its_contract(published, host, outsider, address):
    # Docker DNATs 8080 before the input chain; base's forward chain holds it to the contract.
    assert not tcp_connect(outsider, address, 8080)
    assert 'ct original proto-dst 8080' in host.check_output('nft list chain inet commons_infra published')


def test_containers_reach_host_services_by_the_contracts(published, host):
    gateway = host.check_output("ip -4 -o addr show docker0 | awk '{print $4}' | cut -d/ -f1")
    units = []
    for port in (9100, 9300):  # 9100: open to group clients only; 9300: to this host (group base)
        units.append('hostsvc%d' % port)
        host.check_output('systemd-run --unit hostsvc%s /bin/busybox httpd -f -p %s -h /root/img/www', str(port), str(port))
    try:
        # (busybox's static wget crashes resolving; nc with a bare request does not)
        fetch = 'docker run --rm %s /bin/busybox sh -c "printf \'GET / HTTP/1.0\\r\\n\\r\\n\' | /bin/busybox nc -w 3 %s %s"'
        assert 'hello' in host.run(fetch, IMAGE, gateway, '9300').stdout
        assert 'hello' not in host.run(fetch, IMAGE, gateway, '9100').stdout
    finally:
        for unit in units:
            host.run('systemctl stop %s', unit)


def docker_state(host):
    """dockerd's PID and the web container's start time and PID: a restart changes them."""
    return (host.check_output('systemctl show -p MainPID --value docker'),
            host.check_output("docker inspect -f '{{.State.StartedAt}} {{.State.Pid}}' web"))


OPTIONS = {'live-restore': True, 'log-driver': 'json-file', 'log-opts': {'max-size': '10m', 'max-file': '3'}}


def test_daemon_json_changes_reload_docker_and_group_follows_the_list(published, host, client, address):
    before = docker_state(host)
    changed = dict(OPTIONS, debug=True, **{'log-opts': {'max-size': '20m', 'max-file': '3'}})
    rc, out = run_playbook('converge.yml', extra_vars={'base_docker_daemon_options': changed,
                                                       'base_docker_users': ['olddev']})
    assert rc == 0, out[-3000:]
    flat = ' '.join(out.split())
    assert 'RUNNING HANDLER [commons.infra.base : Reload docker]' in flat
    assert 'WARNING: log-opts changed in /etc/docker/daemon.json' in flat  # restart-only, not restarted
    assert docker_state(host) == before
    assert 'Debug Mode: true' in host.check_output('docker info')        # applied by the reload
    assert reachable(client, address)
    assert 'docker' in host.user('olddev').groups
    rc, out = run_playbook('converge.yml')
    assert rc == 0, out[-3000:]
    assert docker_state(host) == before
    assert 'Debug Mode: false' in host.check_output('docker info')
    assert 'docker' not in host.user('olddev').groups


def test_published_port_survives_every_firewall_reload(published, host, client, address):
    for command in ('nft -f /etc/nftables.d/commons-infra.nft',
                    'systemctl reload nftables',
                    'systemctl restart nftables'):
        host.check_output(command)
        assert reachable(client, address), command
    assert 'table inet commons_infra' in host.check_output('nft list tables')


def test_published_port_survives_a_changed_rule_set(published, host, client, address):
    before = host.file('/etc/nftables.d/commons-infra.nft').sha256sum
    rc, out = run_playbook('converge.yml', extra_vars={
        'base_firewall_allow': [{'name': 'metrics', 'port': 9100, 'from_groups': ['clients']},
                                {'name': 'extra', 'port': 9200, 'from_cidrs': ['192.0.2.0/24']}]})
    assert rc == 0, out[-3000:]
    assert recap_counts(out, 'base-docker-host')['changed'] > 0
    assert host.file('/etc/nftables.d/commons-infra.nft').sha256sum != before
    assert reachable(client, address)
    rc, out = run_playbook('converge.yml')
    assert rc == 0, out[-3000:]
    assert reachable(client, address)


def test_docker_chains_are_intact(host):
    tables = host.check_output('nft list tables')
    assert 'table ip nat' in tables and 'table ip filter' in tables
    assert 'DOCKER' in host.check_output('nft list table ip nat')


def test_control_a_flushing_reload_wipes_dockers_tables(published, host, client, address):
    # What Debian's stock nftables.conf (and ferm) do on every reload, and the role never
    # does: flush the ruleset, then load the firewall. Docker's DNAT is gone; the port now
    # answers only through docker-proxy on the input chain, where the same contract holds.
    host.check_output('nft flush ruleset && nft -f /etc/nftables.d/commons-infra.nft')
    assert 'table ip nat' not in host.check_output('nft list tables')
    assert reachable(client, address)
