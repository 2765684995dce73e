# Read-only: the ssh connection Ansible is using, seen from the host. Prints JSON with the
# client address and port (SSH_CONNECTION, read from the nearest ancestor process that has
# it, since sudo drops it from the environment) and the fingerprint of the key sshd
# accepted for that connection (from sshd's "Accepted publickey" journal line).
# argv[1]: the user Ansible logs in as. Python 3.5+ and the standard library only.
import json
import os
import re
import subprocess
import sys


def ssh_connection():
    pid = os.getpid()
    while pid > 1:
        try:
            with open('/proc/%d/environ' % pid, 'rb') as handle:
                for entry in handle.read().split(b'\0'):
                    if entry.startswith(b'SSH_CONNECTION='):
                        return entry.split(b'=', 1)[1].decode()
            with open('/proc/%d/stat' % pid) as handle:
                pid = int(handle.read().rsplit(')', 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return ''


def accepted_key(user, client, port):
    pattern = re.compile(r'Accepted publickey for %s from %s port %s ssh2: (\S+) (SHA256:\S+)'
                         % (re.escape(user), re.escape(client), re.escape(port)))
    try:
        proc = subprocess.run(['journalctl', '-q', '-r', '-o', 'cat', '--no-pager', '-n', '20000',
                               'SYSLOG_IDENTIFIER=sshd'],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, universal_newlines=True, check=False)
    except OSError:
        return None
    for line in proc.stdout.splitlines():
        found = pattern.search(line)
        if found:
            return {'type': found.group(1), 'fingerprint': found.group(2)}
    return None


def main():
    user = sys.argv[1] if len(sys.argv) > 1 else ''
    words = ssh_connection().split()
    session = {'client': None, 'client_port': None, 'server': None, 'server_port': None, 'key': None}
    if len(words) == 4:
        session.update(client=words[0], client_port=words[1], server=words[2], server_port=words[3])
        if user:
            session['key'] = accepted_key(user, words[0], words[1])
    json.dump(session, sys.stdout)


main()
