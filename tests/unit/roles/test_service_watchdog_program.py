"""The decisions of roles/service_watchdog/files/service_watchdog.py, without a clock,
and one step of it against real local HTTP servers (the service and a webhook)."""
import http.server
import importlib.util
import json
import os
import socket
import threading

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PROGRAM = os.path.join(ROOT, 'roles', 'service_watchdog', 'files', 'service_watchdog.py')
spec = importlib.util.spec_from_file_location('service_watchdog_program', PROGRAM)
wd = importlib.util.module_from_spec(spec)
spec.loader.exec_module(wd)

CONFIG = {'name': 'demo', 'url': 'http://127.0.0.1:1/', 'unit': 'demo.service', 'interval': 1, 'timeout': 1,
          'unhealthy_after': 10, 'backoff': 60, 'max_restarts': 2}


def run(results, state=None, config=None):
    """Feed (time, healthy) probes; returns [(time, decision)] of the decisions taken and the last state."""
    state = state or wd.new_state()
    config = config or CONFIG
    decisions = []
    for now, healthy in results:
        decision, state = wd.decide(config, state, healthy, now)
        if decision:
            decisions.append((now, decision))
    return decisions, state


def test_healthy_service_is_never_restarted():
    decisions, state = run([(t, True) for t in range(0, 100000, 7)])
    assert decisions == []
    assert state['failed_restarts'] == 0


def test_restart_after_unhealthy_time_and_not_before():
    decisions = run([(t, t < 100) for t in range(0, 115)])[0]
    assert decisions == [(100, wd.UNHEALTHY), (110, wd.RESTART)]


def test_short_outage_is_not_restarted():
    decisions = run([(t, not 100 <= t < 109) for t in range(0, 200)])[0]
    assert decisions == [(100, wd.UNHEALTHY), (109, wd.RECOVERED)]


def test_second_wedge_in_backoff_window_waits_for_the_window():
    # wedged at 100, restarted at 110, healthy at 112, wedged again at 115:
    # unhealthy long enough at 125, but the window ends at 170.
    probes = [(t, not (100 <= t < 112 or t >= 115)) for t in range(0, 200)]
    decisions = run(probes)[0]
    assert decisions[:6] == [(100, wd.UNHEALTHY), (110, wd.RESTART), (112, wd.RECOVERED), (115, wd.UNHEALTHY),
                             (125, wd.BACKOFF), (170, wd.RESTART)]


def test_gives_up_after_max_restarts_that_did_not_help_and_says_it_once():
    decisions, state = run([(t, t < 100) for t in range(0, 1000)])
    assert decisions == [(100, wd.UNHEALTHY), (110, wd.RESTART), (120, wd.BACKOFF), (170, wd.RESTART),
                         (180, wd.BACKOFF), (230, wd.GIVE_UP)]
    assert state['gave_up'] and state['failed_restarts'] == 2


def test_given_up_service_that_recovers_is_watched_again():
    probes = [(t, t < 100 or 400 <= t < 500) for t in range(0, 515)]
    decisions, state = run(probes)
    assert decisions[-3:] == [(400, wd.RECOVERED), (500, wd.UNHEALTHY), (510, wd.RESTART)]
    assert state['failed_restarts'] == 1 and not state['gave_up']


def test_restart_that_helped_resets_the_count():
    # Each wedge is healed by its restart: the watchdog never gives up.
    probes = [(t, (t % 200) < 100 or (t % 200) >= 112) for t in range(0, 2000)]
    decisions = run(probes)[0]
    assert [d for unused, d in decisions].count(wd.RESTART) == 10
    assert wd.GIVE_UP not in [d for unused, d in decisions]


def test_state_survives_a_watchdog_restart(tmp_path):
    path = str(tmp_path / 'demo.json')
    state = run([(t, t < 100) for t in range(0, 111)])[1]
    wd.save_state(path, state)
    loaded = wd.load_state(path)
    decision = wd.decide(CONFIG, loaded, False, 130)[0]
    assert decision == wd.BACKOFF  # the window of the restart at 110 still holds


def test_torn_state_file_starts_a_new_episode(tmp_path):
    path = tmp_path / 'demo.json'
    path.write_text('{"unhealthy_si')
    assert wd.load_state(str(path)) == wd.new_state()


def test_restart_argv():
    assert wd.restart_argv(CONFIG) == ['systemctl', 'restart', 'demo.service']
    compose = dict(CONFIG, unit=None, compose_service='solr', compose_project='ol', compose_project_dir='/opt/ol')
    assert wd.restart_argv(compose) == ['docker-compose', '--project-name', 'ol', 'restart', 'solr']


class Recorder(http.server.BaseHTTPRequestHandler):
    status = 200
    posts = []

    def do_GET(self):  # noqa: N802
        self.send_response(self.status)
        self.end_headers()
        self.wfile.write(b'ok')

    def do_POST(self):  # noqa: N802
        length = int(self.headers['Content-Length'])
        Recorder.posts.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    Recorder.posts = []
    Recorder.status = 200
    yield 'http://127.0.0.1:%d' % httpd.server_address[1]
    httpd.shutdown()


def test_probe_http_status_and_tcp(server):
    assert wd.probe(dict(CONFIG, url=server + '/'))[0]
    Recorder.status = 503
    healthy, detail = wd.probe(dict(CONFIG, url=server + '/'))
    assert not healthy and detail == 'HTTP 503'
    assert wd.probe(dict(CONFIG, url=server + '/', expect_status=[503]))[0]
    port = int(server.rsplit(':', 1)[1])
    assert wd.probe({'port': port, 'timeout': 1})[0]


def test_probe_times_out_on_a_listener_that_never_answers():
    # A frozen process: the kernel accepts the connection, nobody answers.
    listener = socket.socket()
    listener.bind(('127.0.0.1', 0))
    listener.listen(5)
    try:
        healthy = wd.probe(dict(CONFIG, url='http://127.0.0.1:%d/' % listener.getsockname()[1], timeout=1))[0]
        assert not healthy
    finally:
        listener.close()


def test_step_restarts_and_posts_each_decision(server, tmp_path, capsys):
    state = str(tmp_path / 'state.json')
    config = dict(CONFIG, url='http://127.0.0.1:1/', unit=None, compose_service='demo', compose_command=['true'],
                  compose_project_dir=str(tmp_path), webhook_url=server + '/hook')
    assert wd.step(config, state, now=100) == wd.UNHEALTHY
    assert wd.step(config, state, now=105) is None
    assert wd.step(config, state, now=110) == wd.RESTART
    failing = dict(config, compose_command=['false'])
    assert wd.step(failing, state, now=200) == wd.RESTART_FAILED
    assert [p['decision'] for p in Recorder.posts] == ['unhealthy', 'restart', 'restart', 'restart_failed']
    assert Recorder.posts[1]['service'] == 'demo' and Recorder.posts[1]['failed_restarts'] == 1
    out = capsys.readouterr().out
    assert 'decision=restart demo: unhealthy for 10s, restarting compose service demo (restart 1 of 2)' in out


def test_dead_webhook_does_not_stop_the_watchdog(tmp_path, capsys):
    config = dict(CONFIG, webhook_url='http://127.0.0.1:1/hook')
    assert wd.step(config, str(tmp_path / 'state.json'), now=1) == wd.UNHEALTHY
    assert 'webhook http://127.0.0.1:1/hook failed' in capsys.readouterr().out


def test_config_needs_a_probe_and_a_target(tmp_path):
    path = tmp_path / 'c.json'
    path.write_text(json.dumps(dict(CONFIG, url=None)))
    with pytest.raises(SystemExit, match='needs url or port'):
        wd.load_config(str(path))
