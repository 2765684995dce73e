"""staging: every tier of the site on one host (ol-dev01), from production's tier data plus
a one-host overlay; the machine running the tests is the outside world."""
import testinfra

from conftest import host_address, tcp_connect, tcp_listeners

testinfra_hosts = ['ol-dev01']

# The tiers' services, each as its role runs it.
UNITS = ['memcached', 'postgresql@15-main', 'haproxy', 'nginx', 'fail2ban', 'nftables', 'ssh']
APP_PASSWORD = 'lab-staging-openlibrary'  # inventory/staging/group_vars/all/vault.yml (lab)


def test_every_tier_runs_on_the_one_host(host):
    failed = [unit for unit in UNITS if not host.service(unit).is_running]
    assert failed == []


def test_each_service_listens_where_staging_puts_it(host):
    """Loopback for what serves this host only; the edge on every address; no port taken twice
    (a clash would have failed a start: the point is which address each one got)."""
    found = {
        'memcached 11211': tcp_listeners(host, 11211),
        'postgres 5432': tcp_listeners(host, 5432),
        'edge haproxy 8081': tcp_listeners(host, 8081),
        'nginx 80': tcp_listeners(host, 80),
        'nginx 443': tcp_listeners(host, 443),
    }
    print('listeners on ol-dev01:', found)
    assert found['memcached 11211'] == {'127.0.0.1'}
    assert found['postgres 5432'] == {'127.0.0.1'}
    assert found['edge haproxy 8081'] == {'127.0.0.1'}
    assert found['nginx 80'] & {'0.0.0.0', '*'}
    assert found['nginx 443'] & {'0.0.0.0', '*'}


def test_the_one_haproxy_carries_the_edge_tier(host):
    config = host.file('/etc/haproxy/haproxy.cfg').content_string
    assert 'bind 127.0.0.1:8081' in config
    web = config.split('\nbackend web', 1)[1].split('\nbackend ', 1)[0]
    assert ':8080 check' in web and 'ol-dev01' in web


def test_the_database_and_the_cache_serve_the_services_beside_them(host):
    result = host.run('PGPASSWORD=%s psql -w -XAtq -h 127.0.0.1 -U openlibrary -d openlibrary -c %s',
                      APP_PASSWORD, 'SELECT extname FROM pg_extension ORDER BY 1')
    assert result.rc == 0, result.stderr
    assert 'pg_trgm' in result.stdout.split()
    stats = host.run('python3 -c %s', "import socket; s = socket.create_connection(('127.0.0.1', 11211), 3); "
                     "s.sendall(b'stats\\r\\nquit\\r\\n'); print(s.recv(65536).decode())")
    limit = [line for line in stats.stdout.splitlines() if line.startswith('STAT limit_maxbytes')]
    assert limit == ['STAT limit_maxbytes %d' % (256 * 1024 * 1024)], stats.stdout[-500:]


def test_the_edge_answers_for_staging_through_nginx_and_haproxy(host):
    """https://staging.openlibrary.org/ on this host goes nginx -> haproxy -> the web group."""
    result = host.run('curl -sk -o /dev/null -w "%{http_code}" --resolve staging.openlibrary.org:443:127.0.0.1 '
                      'https://staging.openlibrary.org/')
    print('https://staging.openlibrary.org/ on ol-dev01:', result.stdout)
    assert result.stdout in ('200', '503'), result.stdout
    plain = host.run('curl -s -o /dev/null -w "%{http_code} %{redirect_url}" -H "Host: staging.openlibrary.org" '
                     'http://127.0.0.1/')
    assert plain.stdout.startswith('301 https://staging.openlibrary.org/'), plain.stdout


def test_from_outside_only_ssh_and_the_edge_answer(host):
    outsider = testinfra.get_host('local://')
    address = host_address(host)
    table = {port: tcp_connect(outsider, address, port) for port in (22, 80, 443, 5432, 8081, 8404, 11211)}
    print('ol-dev01 %s from outside: %s' % (address, ', '.join(
        '%d %s' % (port, 'open' if is_open else 'closed') for port, is_open in sorted(table.items()))))
    assert table == {22: True, 80: True, 443: True, 5432: False, 8081: False, 8404: False, 11211: False}
