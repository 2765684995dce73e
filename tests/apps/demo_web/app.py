"""A tiny web application to deploy with commons.infra.app_release (python3 stdlib only).

GET /health  200 "ok" while the application works.
GET /status  JSON: the host name, the release it runs (the RELEASE file written at deploy time, else
             the name of its release directory), VERSION, start time, python prefix and
             whether the memcached servers in MEMCACHED_SERVERS answer.
"""
import datetime
import json
import os
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

APP_DIR = os.path.dirname(os.path.abspath(__file__))
STARTED = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ')


def read_text(name):
    try:
        with open(os.path.join(APP_DIR, name)) as handle:
            return handle.read().strip() or None
    except OSError:
        return None


def release_id():
    # Read once at start-up: the process keeps serving the release it started from
    # even after the active link has moved on.
    return read_text('RELEASE') or os.path.basename(os.path.realpath(APP_DIR))


RELEASE = release_id()
VERSION = read_text('VERSION')


def memcached_status(servers, timeout=1.0):
    """'unconfigured', 'ok', or what failed for the first server that did not answer."""
    if not servers:
        return 'unconfigured'
    for server in servers.split(','):
        host, colon, port = server.strip().rpartition(':')
        try:
            with socket.create_connection((host if colon else server, int(port if colon else 11211)), timeout=timeout) as conn:
                conn.sendall(b'version\r\n')
                if not conn.recv(64).startswith(b'VERSION '):
                    return 'unreachable: %s does not speak memcached' % server
        except (OSError, ValueError) as error:
            return 'unreachable: %s: %s' % (server, error)
    return 'ok'


class Handler(BaseHTTPRequestHandler):
    server_version = 'demo_web'

    def reply(self, status, body, content_type='text/plain; charset=utf-8'):
        data = body.encode('utf-8')
        self.send_response(status)
        self.send_header('Content-Type', content_type)
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802 (http.server's naming)
        if self.path == '/health':
            self.reply(200, 'ok\n')
        elif self.path == '/status':
            status = {
                'host': socket.gethostname(),
                'release': RELEASE,
                'version': VERSION,
                'started': STARTED,
                'pid': os.getpid(),
                'python': sys.prefix,
                'cache': memcached_status(os.environ.get('MEMCACHED_SERVERS', '')),
            }
            self.reply(200, json.dumps(status, sort_keys=True) + '\n', 'application/json')
        else:
            self.reply(404, 'not found\n')

    def log_message(self, fmt, *args):
        sys.stderr.write('%s %s\n' % (self.address_string(), fmt % args))


def main():
    port = int(os.environ.get('PORT', '8080'))
    server = ThreadingHTTPServer((os.environ.get('BIND', '0.0.0.0'), port), Handler)
    sys.stderr.write('demo_web %s (version %s) listening on %s\n' % (RELEASE, VERSION, port))
    server.serve_forever()


if __name__ == '__main__':
    main()
