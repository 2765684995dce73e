"""A small real HTTP service for the edge scenario (python3 stdlib only).

GET /            JSON naming the host that answered (the tests count hosts)
GET /slow?s=N    the same after N seconds (an in-flight request for the drain test)
GET /health      200 ok
With --solr:     GET /solr/openlibrary/admin/ping -> {"status": "OK"}, /solr/openlibrary/select -> host
"""
import json
import socket
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

HOST = socket.gethostname()
SOLR = '--solr' in sys.argv


class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def reply(self, status, payload):
        data = (json.dumps(payload) + '\n').encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802
        url = urlparse(self.path)
        if SOLR:
            if url.path == '/solr/openlibrary/admin/ping':
                return self.reply(200, {'status': 'OK', 'host': HOST})
            if url.path.startswith('/solr/openlibrary/'):
                return self.reply(200, {'host': HOST, 'solr': True})
            return self.reply(404, {'error': 'not found'})
        if url.path == '/health':
            return self.reply(200, {'status': 'ok'})
        if url.path == '/slow':
            time.sleep(float(parse_qs(url.query).get('s', ['1'])[0]))
        return self.reply(200, {'host': HOST, 'path': url.path,
                                'forwarded_for': self.headers.get('X-Forwarded-For', '')})

    def log_message(self, fmt, *args):
        pass


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer.request_queue_size = 128
port = int(sys.argv[1])
ThreadingHTTPServer(('0.0.0.0', port), Handler).serve_forever()
