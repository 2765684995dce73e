"""haproxy_admin against a unix socket that answers as haproxy 2.6's admin socket does."""
import os
import socket
import tempfile
import threading

import pytest

from ansible_collections.commons.infra.plugins.module_utils import haproxy_admin

STATE_HEADER = ('1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight '
                'srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state '
                'srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port '
                'srv_check_addr srv_agent_addr srv_agent_port\n')
STAT_HEADER = '# pxname,svname,qcur,qmax,scur,smax,slim,stot,status\n'


class FakeHaproxy(object):
    """servers: {(backend, server): {'op': int, 'admin': int, 'scur': int}}; scur drops by one a `show stat`."""

    def __init__(self, servers, refuse=False):
        self.servers = servers
        self.refuse = refuse
        self.commands = []
        self.dir = tempfile.mkdtemp()
        self.path = os.path.join(self.dir, 'admin.sock')
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(8)
        threading.Thread(target=self.serve, daemon=True).start()

    def answer(self, line):
        self.commands.append(line)
        if line == 'show servers state':
            rows = ['%d %s 1 %s 10.0.0.1 %d %d 1 1 5 6 3 4 6 0 0 0 - 8080 - 0 0 - - 0'
                    % (i, be, srv, s['op'], s['admin']) for i, ((be, srv), s) in enumerate(sorted(self.servers.items()))]
            return STATE_HEADER + '\n'.join(rows) + '\n\n'
        if line == 'show stat':
            rows = []
            for (be, srv), s in sorted(self.servers.items()):
                status = 'MAINT' if s['admin'] & 1 else ('DOWN' if s['op'] == 0 else ('DRAIN' if s['admin'] & 8 else 'UP'))
                rows.append('%s,%s,0,0,%d,5,,100,%s' % (be, srv, s['scur'], status))
                if s['scur'] and s['admin'] & (1 | 8) and not s.get('stuck'):
                    s['scur'] -= 1
            return STAT_HEADER + 'web,FRONTEND,,,1,1,,1,OPEN\n' + '\n'.join(rows) + '\n\n'
        if line.startswith('set server '):
            if self.refuse:
                return 'No such server.\n'
            target, dummy, state = line[len('set server '):].partition(' state ')
            be, srv = target.split('/')
            s = self.servers[(be, srv)]
            s['admin'] = {'drain': 8, 'maint': 1, 'ready': 0}[state]
            if state == 'ready' and s.get('healthy', True):
                s['op'] = 2
            return '\n'
        return 'Unknown command\n'

    def serve(self):
        while True:
            conn, dummy = self.sock.accept()
            data = b''
            while not data.endswith(b'\n'):
                data += conn.recv(4096)
            conn.sendall(self.answer(data.decode().strip()).encode())
            conn.close()


def run(fake, server, action, **kwargs):
    kwargs.setdefault('interval', 0.01)
    return haproxy_admin.set_state(fake.path, server, action, **kwargs)


def test_drain_waits_for_in_flight_sessions_in_every_backend():
    fake = FakeHaproxy({('web', 'w1'): {'op': 2, 'admin': 0, 'scur': 3}, ('api', 'w1'): {'op': 2, 'admin': 0, 'scur': 1},
                        ('web', 'w2'): {'op': 2, 'admin': 0, 'scur': 2}})
    result = run(fake, 'w1', 'drain', timeout=5)
    assert result['changed'] and sorted(result['backends']) == ['api', 'web']
    assert all(r['scur'] == 0 and r['drain'] for r in result['after'])
    assert 'set server web/w1 state drain' in fake.commands and 'set server api/w1 state drain' in fake.commands
    assert fake.servers[('web', 'w2')]['admin'] == 0
    assert not run(fake, 'w1', 'drain', timeout=5)['changed']


def test_drain_of_a_server_already_down_returns_at_once():
    fake = FakeHaproxy({('web', 'w1'): {'op': 0, 'admin': 0, 'scur': 0}})
    result = run(fake, 'w1', 'drain', timeout=0.5)
    assert result['changed'] and result['waited'] < 0.5
    assert result['after'][0]['status'] == 'DOWN' and result['after'][0]['drain']


def test_drain_that_does_not_finish_fails_within_the_bound():
    fake = FakeHaproxy({('web', 'w1'): {'op': 2, 'admin': 0, 'scur': 4, 'stuck': True}})
    with pytest.raises(haproxy_admin.HaproxyAdminError, match=r'drain of w1 not verified after 0.3s: web: status DRAIN, 4 current'):
        run(fake, 'w1', 'drain', timeout=0.3)


def test_disable_and_enable():
    fake = FakeHaproxy({('web', 'w1'): {'op': 2, 'admin': 0, 'scur': 1}})
    assert run(fake, 'w1', 'disable', timeout=5)['after'][0]['maint']
    result = run(fake, 'w1', 'enable', timeout=5)
    assert result['changed'] and result['after'][0]['up'] and not result['after'][0]['maint']
    assert not run(fake, 'w1', 'enable', timeout=5)['changed']


def test_enable_of_an_unhealthy_server_fails_unless_told_not_to_wait():
    fake = FakeHaproxy({('web', 'w1'): {'op': 0, 'admin': 1, 'scur': 0, 'healthy': False}})
    with pytest.raises(haproxy_admin.HaproxyAdminError, match='enable of w1 not verified'):
        run(fake, 'w1', 'enable', timeout=0.2)
    assert not run(fake, 'w1', 'enable', timeout=0.2, wait_up=False)['changed']


def test_check_mode_sends_no_command():
    fake = FakeHaproxy({('web', 'w1'): {'op': 2, 'admin': 0, 'scur': 1}})
    assert run(fake, 'w1', 'drain', check_mode=True)['changed']
    assert not [c for c in fake.commands if c.startswith('set ')]


def test_unknown_server_and_refused_command():
    fake = FakeHaproxy({('web', 'w1'): {'op': 2, 'admin': 0, 'scur': 0}}, refuse=True)
    with pytest.raises(haproxy_admin.HaproxyAdminError, match="no backend holds a server named 'w9'"):
        run(fake, 'w9', 'drain')
    with pytest.raises(haproxy_admin.HaproxyAdminError, match='haproxy refused'):
        run(fake, 'w1', 'drain')
    with pytest.raises(haproxy_admin.HaproxyAdminError, match='admin socket'):
        haproxy_admin.set_state('/nonexistent/admin.sock', 'w1', 'drain')
