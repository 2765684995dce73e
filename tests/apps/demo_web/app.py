"""A tiny web application to deploy with commons.infra.app_release (python3 stdlib only).

GET /health  200 "ok" while the application works.
GET /status  JSON: the host name, the release it runs (the RELEASE file written at deploy time, else
             the name of its release directory), VERSION, start time, python prefix and
             whether the memcached servers in MEMCACHED_SERVERS answer, whether PostgreSQL
             (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE) lets it log in and run a
             query, and the host that answered.
"""
import base64
import datetime
import hashlib
import hmac
import json
import os
import socket
import struct
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


def _pg_message(conn):
    """(type byte, payload) of the next backend message."""
    head = _recv_exactly(conn, 5)
    length = struct.unpack('!I', head[1:5])[0]
    return head[:1], _recv_exactly(conn, length - 4)


def _recv_exactly(conn, size):
    data = b''
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise OSError('connection closed by the server')
        data += chunk
    return data


def _pg_send(conn, kind, payload):
    conn.sendall(kind + struct.pack('!I', len(payload) + 4) + payload)


def _pg_error(payload):
    fields = dict((f[:1], f[1:].decode('utf-8', 'replace')) for f in payload.split(b'\0') if f)
    return fields.get(b'M', 'error')


def _scram(conn, user, password):
    """SCRAM-SHA-256 (RFC 5802/7677), what the collection's pg_hba asks of every network login."""
    nonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = 'n=,r=' + nonce
    initial = ('n,,' + first_bare).encode()
    _pg_send(conn, b'p', b'SCRAM-SHA-256\0' + struct.pack('!I', len(initial)) + initial)
    kind, payload = _pg_message(conn)
    if kind != b'R' or struct.unpack('!I', payload[:4])[0] != 11:
        raise OSError(_pg_error(payload) if kind == b'E' else 'unexpected SASL reply')
    server_first = payload[4:].decode()
    attrs = dict(item.split('=', 1) for item in server_first.split(','))
    salted = hashlib.pbkdf2_hmac('sha256', password.encode(), base64.b64decode(attrs['s']), int(attrs['i']))
    client_key = hmac.new(salted, b'Client Key', hashlib.sha256).digest()
    without_proof = 'c=biws,r=' + attrs['r']
    auth_message = ','.join((first_bare, server_first, without_proof)).encode()
    signature = hmac.new(hashlib.sha256(client_key).digest(), auth_message, hashlib.sha256).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature))
    _pg_send(conn, b'p', (without_proof + ',p=' + base64.b64encode(proof).decode()).encode())


def postgres_status(env, timeout=2.0):
    """'unconfigured', 'ok' (logged in, SELECT 1 answered), or what failed."""
    host = env.get('PGHOST')
    if not host:
        return 'unconfigured'
    user, database = env.get('PGUSER', 'postgres'), env.get('PGDATABASE') or env.get('PGUSER', 'postgres')
    try:
        with socket.create_connection((host, int(env.get('PGPORT', '5432'))), timeout=timeout) as conn:
            params = b'user\0' + user.encode() + b'\0database\0' + database.encode() + b'\0\0'
            conn.sendall(struct.pack('!II', len(params) + 8, 196608) + params)
            while True:
                kind, payload = _pg_message(conn)
                if kind == b'E':
                    return 'failed: %s' % _pg_error(payload)
                if kind == b'R':
                    code = struct.unpack('!I', payload[:4])[0]
                    if code == 10:
                        _scram(conn, user, env.get('PGPASSWORD', ''))
                    elif code not in (0, 12):
                        return 'failed: authentication method %d not supported' % code
                elif kind == b'Z':
                    break
            _pg_send(conn, b'Q', b'SELECT 1\0')
            while True:
                kind, payload = _pg_message(conn)
                if kind == b'E':
                    return 'failed: %s' % _pg_error(payload)
                if kind == b'Z':
                    return 'ok'
    except (OSError, ValueError, KeyError, struct.error) as error:
        return 'unreachable: %s:%s: %s' % (host, env.get('PGPORT', '5432'), error)


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
                'database': postgres_status(os.environ),
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
