"""A bounded HTTP(S) load loop: edge_load.py URL --count N [--concurrency C] [--until FILE --max M]

Each request opens its own connection (so a reload's closed keep-alive connections are not
what is measured). Writes a JSON summary to stdout: requests, failures (no answer, or a
status >= 500), statuses, hosts that answered (from the JSON body), p50/p99 latency in ms,
and the first few errors. With --until, keeps going past --count until FILE exists (at most
--max requests), so the loop is known to span an operation of unknown length. --progress
FILE gets the number of requests done, updated as it goes.
"""
import argparse
import http.client
import json
import os
import ssl
import sys
import threading
import time
from urllib.parse import urlparse

parser = argparse.ArgumentParser()
parser.add_argument('url')
parser.add_argument('--count', type=int, default=1000)
parser.add_argument('--concurrency', type=int, default=4)
parser.add_argument('--until')
parser.add_argument('--max', type=int, default=20000)
parser.add_argument('--progress')
parser.add_argument('--host-header')
parser.add_argument('--timeout', type=float, default=10)
args = parser.parse_args()
url = urlparse(args.url)
context = ssl._create_unverified_context()  # the lab's self-signed certificate
lock = threading.Lock()
results = []
errors = []
issued = [0]


def take():
    with lock:
        if issued[0] >= args.max:
            return False
        if issued[0] >= args.count and not (args.until and not os.path.exists(args.until)):
            return False
        issued[0] += 1
        return True


def one():
    start = time.monotonic()
    try:
        if url.scheme == 'https':
            conn = http.client.HTTPSConnection(url.hostname, url.port or 443, timeout=args.timeout, context=context)
        else:
            conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=args.timeout)
        headers = {'Connection': 'close'}
        if args.host_header:
            headers['Host'] = args.host_header
        conn.request('GET', url.path + ('?' + url.query if url.query else ''), headers=headers)
        response = conn.getresponse()
        body = response.read()
        conn.close()
        try:
            host = json.loads(body).get('host')
        except ValueError:
            host = None
        return response.status, host, (time.monotonic() - start) * 1000, None
    except Exception as error:  # noqa: BLE001 - every failure counts
        return None, None, (time.monotonic() - start) * 1000, repr(error)


def worker():
    while take():
        status, host, ms, error = one()
        with lock:
            results.append((time.time(), status, host, ms))
            if error and len(errors) < 10:
                errors.append(error)
            if args.progress and len(results) % 50 == 0:
                with open(args.progress + '.tmp', 'w') as handle:
                    handle.write(str(len(results)))
                os.replace(args.progress + '.tmp', args.progress)


started = time.time()
threads = [threading.Thread(target=worker) for dummy in range(args.concurrency)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
elapsed = time.time() - started
latencies = sorted(r[3] for r in results)


def pct(p):
    return round(latencies[min(len(latencies) - 1, int(len(latencies) * p))], 1) if latencies else None


statuses = {}
hosts = {}
for _, status, host, _ in results:
    statuses[str(status)] = statuses.get(str(status), 0) + 1
    if host:
        hosts[host] = hosts.get(host, 0) + 1
failures = sum(1 for r in results if r[1] is None or r[1] >= 500)
json.dump({'requests': len(results), 'failures': failures, 'statuses': statuses, 'hosts': hosts,
           'p50_ms': pct(0.50), 'p99_ms': pct(0.99), 'seconds': round(elapsed, 2),
           'rps': round(len(results) / elapsed, 1) if elapsed else None, 'started': started,
           'finished': started + elapsed, 'errors': errors,
           'timeline': [(round(r[0], 3), r[2]) for r in results]}, sys.stdout)
