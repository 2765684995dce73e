"""A bounded write loop run on the client: numbered rows through the write address, each
acknowledged commit recorded, and on every round a pg_is_in_recovery() probe of every member
it can reach (two writable members at once would be split brain).

    python3 writeloop.py RUN SECONDS WRITE_DSN MEMBER_DSN... > result.json
"""
import json
import sys
import time

import psycopg2

# No statement_timeout: cancelling a commit that waits for its synchronous standby leaves
# it committed locally and tells the client it succeeded. Dead peers are found by TCP instead.
TCP = ' connect_timeout=2 keepalives=1 keepalives_idle=1 keepalives_interval=1 keepalives_count=2 tcp_user_timeout=3000'


def connect(dsn):
    conn = psycopg2.connect(dsn + TCP)
    conn.autocommit = True
    return conn


def main():
    run, seconds, write_dsn, member_dsns = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4:]
    acknowledged, errors, split_brain = [], 0, []
    probes = {}
    writer = None
    number = 0
    started = time.monotonic()
    last_ack = started
    longest_gap = 0.0
    while time.monotonic() - started < seconds:
        number += 1
        try:
            if writer is None:
                writer = connect(write_dsn)
                writer.cursor().execute('CREATE TABLE IF NOT EXISTS ha_rows (run text, n int, PRIMARY KEY (run, n))')
            writer.cursor().execute('INSERT INTO ha_rows VALUES (%s, %s)', (run, number))
            now = time.monotonic()
            acknowledged.append(number)
            longest_gap = max(longest_gap, now - last_ack)
            last_ack = now
        except psycopg2.Error:
            errors += 1
            if writer is not None:
                try:
                    writer.close()
                except psycopg2.Error:
                    pass
            writer = None
            time.sleep(0.2)
        writable = []
        for dsn in member_dsns:
            try:
                if dsn not in probes:
                    probes[dsn] = connect(dsn)
                cur = probes[dsn].cursor()
                cur.execute('SELECT pg_is_in_recovery()')
                if not cur.fetchone()[0]:
                    writable.append(dsn.split()[0])
            except psycopg2.Error:
                probes.pop(dsn, None)
        if len(writable) > 1:
            split_brain.append({'at': round(time.monotonic() - started, 2), 'writable': writable})
        time.sleep(0.05)
    # A loop that stops acknowledging before its end has a gap up to the end too.
    longest_gap = max(longest_gap, time.monotonic() - last_ack)
    json.dump({'run': run, 'acknowledged': acknowledged, 'errors': errors, 'split_brain': split_brain,
               'longest_gap_s': round(longest_gap, 2), 'attempts': number}, sys.stdout)


if __name__ == '__main__':
    main()
