# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""service_watchdog: probe one service itself (a URL or a TCP port), restart it when it
stays unhealthy, and stop trying when restarts do not help.

Python 3 standard library only: it runs on every host without a virtualenv, started as
`/usr/bin/python3 service_watchdog.py` by its unit (no shebang of its own). One
process a watched service (service-watchdog@<name>.service), configured by
/etc/service-watchdog/<name>.json, which the commons.infra.service_watchdog role
writes with every duration already in seconds. State (when the service became
unhealthy, the last restart, how many restarts did not help) lives in
/var/lib/service-watchdog/<name>.json, so a restart of the watchdog, or of the
host, neither forgets a back-off window nor restarts the count.

The decisions are a pure function, decide(config, state, healthy, now), so they are
unit-tested without a clock, a network or systemd.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

# Decisions, each written to the journal (and posted to the webhook) when taken.
UNHEALTHY = 'unhealthy'      # first failed probe: the unhealthy clock starts
RESTART = 'restart'          # unhealthy long enough, outside the back-off window
BACKOFF = 'backoff'          # would restart, but the last restart is too recent
GIVE_UP = 'give_up'          # max_restarts restarts did not help: no more restarts
RECOVERED = 'recovered'      # healthy again after being unhealthy
RESTART_FAILED = 'restart_failed'  # the restart command itself failed

# Probes that need no decision (still healthy, still waiting) are not reported, so
# the journal and the webhook see state changes, not one line a probe.
REPORTED = (UNHEALTHY, RESTART, BACKOFF, GIVE_UP, RECOVERED, RESTART_FAILED)

REQUIRED = ('name', 'interval', 'timeout', 'unhealthy_after', 'backoff', 'max_restarts')


def new_state():
    return {
        'unhealthy_since': None,      # time of the first failed probe of this episode
        'last_restart': None,         # time of the last restart the watchdog made
        'failed_restarts': 0,         # restarts since the service was last healthy
        'gave_up': False,
        'backoff_reported': False,    # one backoff line a window, not one a probe
    }


def decide(config, state, healthy, now):
    """(decision or None, new state) for one probe result at time now (seconds).

    - healthy: the episode ends; restarts so far helped, so the count starts again.
    - unhealthy for less than unhealthy_after (counted from the first failure, or from
      the last restart, which gives the service that long to come up): wait.
    - then, within backoff seconds of the last restart: wait for the window to end.
    - then, after max_restarts restarts that did not help: give up (said once) and stay
      given up until the service is healthy again.
    - else restart.
    """
    state = dict(new_state(), **state)
    if healthy:
        decision = RECOVERED if state['unhealthy_since'] is not None or state['gave_up'] else None
        state.update(unhealthy_since=None, failed_restarts=0, gave_up=False, backoff_reported=False)
        return decision, state
    if state['unhealthy_since'] is None:
        state['unhealthy_since'] = now
        return (None if state['gave_up'] else UNHEALTHY), state
    if state['gave_up']:
        return None, state
    started = state['unhealthy_since']
    if state['last_restart'] is not None and state['last_restart'] > started:
        started = state['last_restart']
    if now - started < config['unhealthy_after']:
        return None, state
    if state['last_restart'] is not None and now - state['last_restart'] < config['backoff']:
        if state['backoff_reported']:
            return None, state
        state['backoff_reported'] = True
        return BACKOFF, state
    if state['failed_restarts'] >= config['max_restarts']:
        state['gave_up'] = True
        return GIVE_UP, state
    state.update(last_restart=now, failed_restarts=state['failed_restarts'] + 1, backoff_reported=False)
    return RESTART, state


def describe(config, state, decision, now):
    """The sentence written to the journal and posted to the webhook."""
    name = config['name']
    target = probe_target(config)
    if decision == UNHEALTHY:
        return '%s: %s does not answer; restart after %ss unhealthy' % (name, target, config['unhealthy_after'])
    if decision == RESTART:
        return '%s: unhealthy for %ds, restarting %s (restart %d of %d)' % (
            name, now - state['unhealthy_since'], restart_target(config), state['failed_restarts'], config['max_restarts'])
    if decision == BACKOFF:
        return '%s: still unhealthy, but the last restart was %ds ago; next restart no earlier than %ds after it' % (
            name, now - state['last_restart'], config['backoff'])
    if decision == GIVE_UP:
        return ('%s: giving up: %d restarts did not help, %s still does not answer; no more restarts until it is '
                'healthy again, a person must look at it' % (name, state['failed_restarts'], target))
    if decision == RECOVERED:
        return '%s: %s answers again' % (name, target)
    if decision == RESTART_FAILED:
        return '%s: the restart of %s failed' % (name, restart_target(config))
    return '%s: %s' % (name, decision)


def probe_target(config):
    if config.get('url'):
        return config['url']
    return 'tcp://%s:%s' % (config.get('host', '127.0.0.1'), config['port'])


def restart_target(config):
    if config.get('compose_service'):
        return 'compose service %s' % config['compose_service']
    return config['unit']


def probe(config):
    """(healthy, detail): a GET of the URL answering one of expect_status within
    timeout seconds, or a TCP connection to host:port."""
    timeout = config['timeout']
    if config.get('url'):
        request = urllib.request.Request(config['url'], headers={'User-Agent': 'service_watchdog'})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status = response.status
                response.read(65536)
        except urllib.error.HTTPError as error:
            status = error.code
        except (OSError, ValueError) as error:
            return False, str(error) or error.__class__.__name__
        expected = config.get('expect_status') or [200]
        return status in expected, 'HTTP %d' % status
    try:
        with socket.create_connection((config.get('host', '127.0.0.1'), int(config['port'])), timeout=timeout):
            return True, 'connected'
    except OSError as error:
        return False, str(error) or error.__class__.__name__


def restart_argv(config):
    if config.get('compose_service'):
        argv = list(config.get('compose_command') or ['docker-compose'])
        if config.get('compose_project'):
            argv += ['--project-name', config['compose_project']]
        return argv + ['restart', config['compose_service']]
    return ['systemctl', 'restart', config['unit']]


def restart(config):
    env = dict(os.environ)
    if config.get('compose_files'):
        env['COMPOSE_FILE'] = ':'.join(config['compose_files'])
    proc = subprocess.run(restart_argv(config), cwd=config.get('compose_project_dir') or None, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=config.get('restart_timeout', 300), check=False)
    return proc.returncode == 0, proc.stdout.strip()


def load_state(path):
    try:
        with open(path) as handle:
            return dict(new_state(), **json.load(handle))
    except FileNotFoundError:
        return new_state()
    except ValueError:
        # A torn or hand-edited file must not stop the watchdog: start a new episode.
        return new_state()


def save_state(path, state):
    """Atomically: a crash mid-write leaves the last good state, never half of one."""
    directory = os.path.dirname(path) or '.'
    handle, tmp = tempfile.mkstemp(dir=directory, prefix='.state-')
    with os.fdopen(handle, 'w') as out:
        json.dump(state, out, sort_keys=True)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def report(config, decision, message, detail, state, now):
    """One journal line (stdout of a systemd service goes to the journal), then the webhook."""
    event = {
        'service': config['name'], 'decision': decision, 'message': message, 'probe': detail,
        'time': round(now, 3), 'host': socket.gethostname(), 'failed_restarts': state['failed_restarts'],
        'max_restarts': config['max_restarts'],
    }
    print('decision=%s %s (probe: %s)' % (decision, message, detail), flush=True)
    if config.get('webhook_url'):
        body = json.dumps(event).encode()
        request = urllib.request.Request(config['webhook_url'], data=body, method='POST',
                                         headers={'Content-Type': 'application/json'})
        try:
            with urllib.request.urlopen(request, timeout=config.get('webhook_timeout', 5)) as response:
                response.read()
        except (OSError, ValueError) as error:
            # A dead webhook never stops the watchdog from healing the service.
            print('webhook %s failed: %s' % (config['webhook_url'], error), flush=True)


def step(config, state_path, now=None):
    """One probe, its decision and the action; returns the decision (or None)."""
    healthy, detail = probe(config)
    now = time.time() if now is None else now
    decision, state = decide(config, load_state(state_path), healthy, now)
    if decision == RESTART:
        save_state(state_path, state)  # the restart counts even if the watchdog dies during it
        report(config, decision, describe(config, state, decision, now), detail, state, now)
        ok, output = restart(config)
        if not ok:
            decision = RESTART_FAILED
            report(config, decision, describe(config, state, decision, now), output[-500:], state, now)
        return decision
    save_state(state_path, state)
    if decision in REPORTED:
        report(config, decision, describe(config, state, decision, now), detail, state, now)
    return decision


def load_config(path):
    with open(path) as handle:
        config = json.load(handle)
    missing = [key for key in REQUIRED if key not in config]
    if missing:
        raise SystemExit('%s: missing %s' % (path, ', '.join(missing)))
    if not config.get('url') and not config.get('port'):
        raise SystemExit('%s: needs url or port' % path)
    if not config.get('unit') and not config.get('compose_service'):
        raise SystemExit('%s: needs unit or compose_service' % path)
    return config


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--config', required=True, help='the watched service, JSON')
    parser.add_argument('--state', required=True, help='state file (under /var/lib)')
    parser.add_argument('--once', action='store_true', help='one probe (for a timer), not a loop')
    args = parser.parse_args(argv)
    config = load_config(args.config)
    print('watching %s: probe %s every %ss (timeout %ss), restart %s after %ss unhealthy, at most once per %ss, '
          'give up after %d restarts that do not help' % (
              config['name'], probe_target(config), config['interval'], config['timeout'], restart_target(config),
              config['unhealthy_after'], config['backoff'], config['max_restarts']), flush=True)
    while True:
        started = time.monotonic()
        step(config, args.state)
        if args.once:
            return 0
        time.sleep(max(0.0, config['interval'] - (time.monotonic() - started)))


if __name__ == '__main__':
    sys.exit(main())
