"""Solr's haproxy: the edge's commons.infra.haproxy role with the solr backend, rendered
and checked by haproxy itself. Routing to a backend is the edge scenario's test (the
same role); here, without a Solr, the backend is seen down and 8984 says so."""
from conftest import http_get, wait_for_listener

testinfra_hosts = ['solr-host']


def backend_section(config, name):
    lines, inside = [], False
    for line in config.splitlines():
        if line and not line[0].isspace():
            inside = line.split() == ['backend', name]
            continue
        if inside and line.strip():
            lines.append(' '.join(line.split()))
    return lines


def test_the_solr_backend_renders_as_asked(host):
    config = host.file('/etc/haproxy/haproxy.cfg').content_string
    backend = backend_section(config, 'solr')
    assert 'balance leastconn' in backend
    assert any(line.startswith('option httpchk') for line in backend), backend
    assert 'http-check send meth GET uri /solr/lab/admin/ping' in backend, backend
    assert 'http-check expect status 200' in backend, backend
    assert any(line.startswith('default-server check ') for line in backend), backend
    server = [line for line in backend if line.startswith('server ')]
    assert len(server) == 1 and '127.0.0.1:8983' in server[0], server


def test_haproxy_accepts_the_configuration(host):
    checked = host.run('haproxy -c -f /etc/haproxy/haproxy.cfg')
    assert checked.rc == 0, checked.stdout + checked.stderr


def test_frontend_answers_on_8984(host):
    wait_for_listener(host, 8984)
    status = http_get(host, 'http://127.0.0.1:8984/solr/lab/admin/ping')[0]
    assert status == (200 if host.service('solr').is_running else 503)
