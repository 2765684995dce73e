# Read-only snapshot of everything the base role manages, taken in one remote call.
# The role compares it with what it wants and runs only the tasks whose target
# differs; every task it then runs still decides for itself (the snapshot only lets
# a no-op run skip work). Reads a JSON request on stdin, prints JSON on stdout.
# Python 3.5+ and the standard library only: it runs with the host's python3.
import grp
import hashlib
import json
import os
import pwd
import stat
import subprocess
import sys


def run(argv):
    try:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              universal_newlines=True, check=False)
    except OSError:
        return None, ''
    return proc.returncode, proc.stdout


def path_state(path):
    try:
        info = os.lstat(path)
    except OSError:
        return {'type': 'missing'}
    state = {
        'mode': '%04o' % stat.S_IMODE(info.st_mode),
        'owner': name_of(pwd.getpwuid, info.st_uid),
        'group': name_of(grp.getgrgid, info.st_gid),
    }
    if stat.S_ISDIR(info.st_mode):
        state['type'] = 'dir'
    elif stat.S_ISREG(info.st_mode):
        state['type'] = 'file'
        digest = hashlib.sha1()
        with open(path, 'rb') as handle:
            for block in iter(lambda: handle.read(65536), b''):
                digest.update(block)
        state['sha1'] = digest.hexdigest()
    else:
        state['type'] = 'other'
    return state


def name_of(lookup, ident):
    try:
        return lookup(ident)[0]
    except KeyError:
        return str(ident)


def service_state(name):
    enabled = run(['systemctl', 'is-enabled', name + '.service'])[1].strip()
    active = run(['systemctl', 'is-active', name + '.service'])[1].strip()
    return {'enabled': enabled or 'unknown', 'active': active or 'unknown'}


def packages(names):
    found = {name: {'installed': False, 'version': '', 'hold': False} for name in names}
    if not names:
        return found
    rc, out = run(['dpkg-query', '-W', '-f', '${Package}\t${Version}\t${db:Status-Abbrev}\t${Status}\n'] + names)
    for line in out.splitlines():
        fields = line.split('\t')
        if len(fields) < 4 or fields[0] not in found:
            continue
        found[fields[0]] = {
            'installed': fields[2][1:2] == 'i',
            'version': fields[1],
            'hold': fields[3].startswith('hold '),
        }
    return found


def ssh_algorithms():
    offered = {}
    for query, key in (('kex', 'kex'), ('cipher', 'cipher'), ('mac', 'mac'), ('key-sig', 'key')):
        rc, out = run(['ssh', '-Q', query])
        if rc != 0:
            return None
        offered[key] = out.split()
    return offered


def sshd_settings():
    rc, out = run(['/usr/sbin/sshd', '-T'])
    if rc != 0:
        return None
    settings = {}
    for line in out.splitlines():
        key, value = (line.split(' ', 1) + [''])[:2]
        settings.setdefault(key, value)
    return settings


def security_suite(suite, exclude):
    sources = ['/etc/apt/sources.list']
    directory = '/etc/apt/sources.list.d'
    if os.path.isdir(directory):
        sources += [os.path.join(directory, name) for name in sorted(os.listdir(directory))
                    if name != exclude and name.endswith(('.list', '.sources'))]
    for source in sources:
        try:
            with open(source) as handle:
                for line in handle:
                    words = line.split('#', 1)[0].split()
                    if suite in words:
                        return True
        except OSError:
            continue
    return False


def authorized_keys(home):
    path = os.path.join(home, '.ssh', 'authorized_keys')
    try:
        with open(path) as handle:
            lines = [line.strip() for line in handle]
    except OSError:
        return []
    return [line for line in lines if line and not line.startswith('#')]


def key_count(path):
    rc, out = run(['ssh-keygen', '-l', '-f', path])
    return len(out.splitlines()) if rc == 0 else 0


def login_defs(keys):
    values = {}
    try:
        with open('/etc/login.defs') as handle:
            for line in handle:
                words = line.split()
                if len(words) >= 2 and words[0] in keys:
                    values[words[0]] = words[1]
    except OSError:
        pass
    return values


def sysctl(keys, conf):
    live = {}
    for key in keys:
        try:
            with open('/proc/sys/' + key.replace('.', '/')) as handle:
                live[key] = ' '.join(handle.read().split())
        except OSError:
            live[key] = None
    try:
        with open(conf) as handle:
            lines = [line.strip() for line in handle]
    except OSError:
        lines = []
    return {'live': live, 'file': lines}


def json_file(path):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def main():
    request = json.load(sys.stdin)
    accounts = {entry.pw_name: {'uid': entry.pw_uid, 'comment': entry.pw_gecos, 'home': entry.pw_dir,
                                'shell': entry.pw_shell} for entry in pwd.getpwall()}
    groups = {entry.gr_name: {'gid': entry.gr_gid, 'members': entry.gr_mem} for entry in grp.getgrall()}
    report = {
        'dockerenv': os.path.exists('/.dockerenv'),
        'paths': {path: path_state(path) for path in request.get('paths', [])},
        'services': {name: service_state(name) for name in request.get('services', [])},
        'packages': packages(request.get('packages', [])),
        'ssh': ssh_algorithms(),
        'sshd': sshd_settings(),
        'security_suite': security_suite(request.get('security_suite', ''), request.get('security_exclude', '')),
        'nft_table': run(['nft', 'list', 'table', 'inet', request.get('nft_table', '')])[0] == 0,
        'rsa_bits': None,
        'accounts': sorted(accounts),
        'users': {},
        'groups': {name: info['gid'] for name, info in groups.items()},
        'group_members': {name: sorted(info['members']) for name, info in groups.items()},
        'json': {path: json_file(path) for path in request.get('json_files', [])},
        'login_defs': login_defs(request.get('login_defs', [])),
        'sysctl': sysctl(request.get('sysctl', []), request.get('sysctl_file', '')),
    }
    rc, out = run(['ssh-keygen', '-l', '-f', '/etc/ssh/ssh_host_rsa_key.pub'])
    if rc == 0 and out.split():
        report['rsa_bits'] = int(out.split()[0])
    for name in request.get('users', []):
        if name not in accounts:
            continue
        account = dict(accounts[name])
        primary = pwd.getpwnam(name).pw_gid
        account['groups'] = sorted(group for group, info in groups.items()
                                   if info['gid'] == primary or name in info['members'])
        account['authorized_keys'] = authorized_keys(account['home'])
        account['valid_keys'] = key_count(os.path.join(account['home'], '.ssh', 'authorized_keys'))
        report['users'][name] = account
    json.dump(report, sys.stdout)


main()
