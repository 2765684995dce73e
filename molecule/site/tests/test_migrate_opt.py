"""playbooks/migrate_opt.yml on ol-home0: a legacy /opt/openlibrary with hard links,
symlinks, a sparse file, odd names, an ACL and a deploys/ tree, served by a running
unit, is moved onto /1 (a directory standing for the volume in the lab): the copy is
identical (checked here with find/sha256sum/stat, not with the playbook's own
module), the unit comes back on the new volume, the deploys are adopted into deploy
histories, and a rerun changes nothing. A process the run was not told about makes it
refuse before anything is switched."""
import time

import pytest
from conftest import recap_counts, run_playbook

testinfra_hosts = ['ol-home0']
PLAYBOOK = '../../playbooks/migrate_opt.yml'
RELEASE = '3f2a9c1e0b7d4e5f6a7b8c9d0e1f2a3b4c5d6e7f'
VARS = {'migrate_opt_hosts': 'ol-home0', 'migrate_opt_volume_must_be_mount': False,
        'migrate_opt_services': ['legacy-app.service']}
UNIT = """[Unit]
Description=A service that runs from /opt/openlibrary
[Service]
WorkingDirectory=/opt/openlibrary/olsystem
ExecStart=/usr/bin/python3 -m http.server 8099 --bind 127.0.0.1
"""
# Everything a faithful copy keeps, in a form two trees can be compared by: path, type,
# mode, owners, link count, size, allocated blocks (holes), link target, then content.
LISTING = ("cd %s && find . -printf '%%P|%%y|%%m|%%U|%%G|%%n|%%s|%%b|%%l\\n' | LC_ALL=C sort"
           " && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum"
           " && getfacl -RPn --skip-base . 2>/dev/null")


@pytest.fixture(scope='module')
def legacy(host):
    """The legacy tree and its service, made once for the module's tests."""
    if host.file('/1/.migrate_opt.json').exists:
        return  # a verify run after the migration: the tree is already on /1
    host.check_output('DEBIAN_FRONTEND=noninteractive apt-get install -y -qq acl >/dev/null')
    script = f"""set -e
cd /opt/openlibrary
mkdir -p deploys/olsystem/{RELEASE}/conf 'dir with space' ./-leading-dash
printf 'db: ol-db1\\n' > deploys/olsystem/{RELEASE}/conf/olsystem.yml
printf 'hello from the legacy tree\\n' > deploys/olsystem/{RELEASE}/index.html
ln -sfn deploys/olsystem/{RELEASE} olsystem
printf 'shared' > 'dir with space/original'
ln -f 'dir with space/original' ./-leading-dash/hardlink
truncate -s 64M sparse.img && printf head | dd of=sparse.img conv=notrunc status=none
printf odd > "$(printf 'caf\\303\\251 and\\nnewline')"
ln -sfn /nonexistent dangling
chown -R nobody:nogroup 'dir with space' && chmod 0640 'dir with space/original'
setfacl -m u:nobody:rwx deploys
mkdir -p /1
"""
    host.check_output('bash -c %s', script)
    host.check_output('printf %s > /etc/systemd/system/legacy-app.service', UNIT)
    host.check_output('systemctl daemon-reload && systemctl start legacy-app.service')
    return listing(host, '/opt/openlibrary')


def listing(host, path):
    """LISTING of path, without what adopting the deploy history adds afterwards
    (history.jsonl, the lock, and so the size of their directory)."""
    added = ('deploys/olsystem/history.jsonl', 'deploys/olsystem/.lock', 'deploys/olsystem|')
    return [line for line in host.check_output(LISTING % path).splitlines()
            if not any(mark in line for mark in added)]


def test_a_process_it_was_not_told_about_stops_the_switch(host, legacy):
    if legacy is None:
        pytest.skip('the migration already ran on this host (verify run again)')
    stray = host.run("setsid bash -c 'cd /opt/openlibrary/deploys && exec sleep 600' </dev/null >/dev/null 2>&1 &")
    assert stray.rc == 0
    try:
        rc, out = run_playbook(PLAYBOOK, extra_vars=VARS, limit='ol-home0')
        assert rc != 0 and 'still use /opt/openlibrary' in ' '.join(out.split()), out[-3000:]
        assert not host.file('/opt/openlibrary.legacy').exists
        assert not host.mount_point('/opt/openlibrary').exists
        assert host.service('legacy-app.service').is_running  # started again
    finally:
        host.run("pkill -f '^sleep 600$'")


def test_the_tree_moves_onto_the_volume_identical_and_the_service_follows(host, legacy):
    if legacy is None:
        pytest.skip('the migration already ran on this host (verify run again)')
    started = time.monotonic()
    rc, out = run_playbook(PLAYBOOK, extra_vars=VARS, limit='ol-home0')
    assert rc == 0, out[-3000:]
    print('\nmigrate_opt: first run %.1f s' % (time.monotonic() - started))
    # The copy, the old tree and what the path now shows are the same tree.
    assert listing(host, '/1/opt/openlibrary') == legacy
    assert listing(host, '/opt/openlibrary.legacy') == legacy
    assert listing(host, '/opt/openlibrary') == legacy
    assert host.check_output("stat -c '%d:%i' /opt/openlibrary") == host.check_output("stat -c '%d:%i' /1/opt/openlibrary")
    assert '/opt/openlibrary' in host.file('/etc/fstab').content_string
    # The service runs again, from the volume: a file written there is what it serves.
    assert host.service('legacy-app.service').is_running
    host.check_output("printf 'served from /1\\n' > /1/opt/openlibrary/olsystem/probe.html")
    deadline = time.monotonic() + 20
    while True:
        got = host.run('curl -fsS http://127.0.0.1:8099/probe.html')
        if got.rc == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert got.stdout == 'served from /1\n', got.stderr
    # The deploys/ tree is a deploy history now (adopted, as older than any later deploy).
    history = host.file('/opt/openlibrary/deploys/olsystem/history.jsonl')
    assert history.exists and RELEASE in history.content_string


def test_a_rerun_changes_nothing(host):
    rc, out = run_playbook(PLAYBOOK, extra_vars=VARS, limit='ol-home0')
    assert rc == 0, out[-3000:]
    assert recap_counts(out, 'ol-home0')['changed'] == 0, out[-3000:]
