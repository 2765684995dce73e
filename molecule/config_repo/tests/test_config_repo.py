"""config_repo: /etc from a git repository over ssh, and exactly the services a commit touches reloaded.

The tests run in order: each pushes a commit to cr-git and converges cr-host again.
"""
import json
import re

import pytest

from conftest import http_get, recap_counts, run_playbook

testinfra_hosts = ['cr-host']

CHECKOUT = '/opt/olsystem'
WORK_TREE = '/srv/git/work'     # cr-git's working copy of the bare repository (prepare.yml)
BACKUP_ROOT = '/var/backups/etc_symlinks'
NGINX_SITE = '/etc/nginx/sites-enabled/default'
WRITE_FILE = ('import os,sys\n'
              'os.makedirs(os.path.dirname(sys.argv[1]), exist_ok=True)\n'
              'open(sys.argv[1], "w").write(sys.argv[2])\n')


def nginx_site(body):
    return ('server {\n'
            '    listen 80 default_server;\n'
            '    server_name _;\n'
            '    location / {\n'
            '        default_type text/plain;\n'
            '        return 200 "%s\\n";\n'
            '    }\n'
            '}\n') % body


def push(git, message, files):
    """Commit files ({repo path: content, or None to delete it}) on cr-git and push them to the bare repository."""
    for path, content in files.items():
        if content is None:
            git.check_output('git -C %s rm -q -- %s', WORK_TREE, path)
        else:
            git.check_output('python3 -c %s %s %s', WRITE_FILE, '%s/%s' % (WORK_TREE, path), content)
    git.check_output('git -C %s add -A && git -C %s commit -q -m %s && git -C %s push -q origin main',
                     WORK_TREE, WORK_TREE, message, WORK_TREE)
    return git.check_output('git -C %s rev-parse HEAD', WORK_TREE)


def served(lab):
    """What nginx on cr-host answers, asked from cr-git."""
    status, body = http_get(lab('cr-git'), 'http://cr-host/')
    return body if status == 200 else (status, body)


def main_pid(host, unit):
    return host.check_output('systemctl show -p MainPID --value %s', unit)


def nginx_workers(host):
    """nginx's worker pids: a reload replaces them, the master (MainPID) stays."""
    master = main_pid(host, 'nginx')
    return sorted(host.check_output('cat /proc/%s/task/%s/children', master, master).split())


def applied(host):
    return host.check_output('git -C %s rev-parse refs/commons-infra/applied', CHECKOUT)


def converge(check=False):
    rc, out = run_playbook('converge.yml', check=check)
    return rc, out, recap_counts(out, 'cr-host')


def task_output(out, name):
    """What the role's task called name printed, up to the next task."""
    start = out.find('TASK [commons.infra.config_repo : %s]' % name)
    if start < 0:
        return ''
    end = min(i for i in (out.find('TASK [', start + 1), out.find('PLAY RECAP', start + 1), len(out)) if i >= 0)
    return out[start:end]


def reload_items(out):
    """The '(item=reload nginx)' labels of the reload/restart task."""
    return re.findall(r'=> \(item=((?:reload|restart) [\w@.-]+)\)', out)


def test_checkout_is_the_pushed_commit(host, lab):
    pushed = lab('cr-git').check_output('git -C %s rev-parse HEAD', WORK_TREE)
    assert host.check_output('git -C %s rev-parse HEAD', CHECKOUT) == pushed
    # recorded as applied only once the services took it
    assert applied(host) == pushed


def test_repository_files_are_linked_into_etc(host):
    for rel in ('nginx/sites-enabled/default', 'memcached.conf', 'motd', 'systemd/system/hello.service'):
        link = host.file('/etc/' + rel)
        assert link.is_symlink, rel
        assert link.linked_to == '%s/etc/%s' % (CHECKOUT, rel)
    # only the etc layer: the repository's README stays out of /etc
    assert not host.file('/etc/README.md').exists


def test_hand_made_files_were_backed_up(host):
    # Debian's own motd, memcached.conf and default-site link, as prepare.yml left them
    conf = host.check_output('find %s -path "*/memcached.conf*" -type f', BACKUP_ROOT).split()
    assert conf and 'memcached default config file' in host.file(conf[0]).content_string
    site = host.check_output('find %s -path "*/nginx/sites-enabled/default*"', BACKUP_ROOT).split()
    assert site and host.file(site[0]).linked_to == '/etc/nginx/sites-available/default'


def test_deploy_key_and_known_hosts_are_root_only(host):
    key_dir = host.file('/root/.ssh/config_repo')
    assert key_dir.mode == 0o700 and key_dir.user == 'root'
    key = host.file('/root/.ssh/config_repo/deploy_key')
    assert key.mode == 0o600 and key.user == 'root' and key.group == 'root'
    assert 'OPENSSH PRIVATE KEY' in key.content_string
    assert host.file('/root/.ssh/config_repo/known_hosts').content_string.startswith('cr-git ssh-ed25519 ')


def test_services_run_the_repository_configuration(host, lab):
    assert served(lab) == 'olsystem v1\n'
    # the repository's memcached.conf says -c 512 (Debian's says 1024): memcached was restarted with it
    stats = host.check_output("printf 'stats settings\\r\\nquit\\r\\n' | nc -N 127.0.0.1 11211")
    assert 'STAT maxconns 512' in stats


def test_nginx_commit_reloads_nginx_and_nothing_else(host, lab):
    memcached_pid, nginx_pid, workers = main_pid(host, 'memcached'), main_pid(host, 'nginx'), nginx_workers(host)
    push(lab('cr-git'), 'nginx: v2', {'etc/nginx/sites-enabled/default': nginx_site('olsystem v2')})
    rc, out, counts = converge()
    assert rc == 0, out[-3000:]
    assert reload_items(out) == ['reload nginx']
    assert 'changed:' not in task_output(out, 'Reload systemd units')
    assert served(lab) == 'olsystem v2\n'
    assert nginx_workers(host) != workers             # reloaded...
    assert main_pid(host, 'nginx') == nginx_pid       # ...not restarted
    assert main_pid(host, 'memcached') == memcached_pid
    # the content changed, not the link: etc_symlinks saw nothing, only the git diff could tell
    assert 'ok: [cr-host]' in task_output(out, 'Link the layers into /etc')


def test_unit_commit_reloads_systemd(host, lab):
    memcached_pid, workers = main_pid(host, 'memcached'), nginx_workers(host)
    push(lab('cr-git'), 'systemd: a unit and a drop-in', {
        'etc/systemd/system/cr-hello.service': '[Service]\nType=oneshot\nExecStart=/bin/true\n',
        'etc/systemd/system/memcached.service.d/olsystem.conf': '[Unit]\nDescription=memcached (olsystem)\n',
    })
    rc, out, counts = converge()
    assert rc == 0, out[-3000:]
    assert 'changed: [cr-host]' in task_output(out, 'Reload systemd units'), out[-3000:]
    # the drop-in is live without any restart: only a daemon-reload does that
    assert host.check_output('systemctl show -p Description --value memcached') == 'memcached (olsystem)'
    assert host.check_output('systemctl show -p NeedDaemonReload --value memcached') == 'no'
    assert host.check_output('systemctl show -p LoadState --value cr-hello') == 'loaded'
    assert reload_items(out) == []
    assert main_pid(host, 'memcached') == memcached_pid
    assert nginx_workers(host) == workers


def head(host):
    return host.check_output('git -C %s rev-parse HEAD', CHECKOUT)


def test_invalid_nginx_commit_is_taken_back_out_of_etc(host, lab):
    git = lab('cr-git')
    workers, applied_before = nginx_workers(host), applied(host)
    good_site = host.file(NGINX_SITE).content_string
    bad = push(git, 'nginx: broken', {'etc/nginx/sites-enabled/default': nginx_site('olsystem v3').replace('return', 'retrun')})
    rc, out, counts = converge()
    assert rc != 0
    flat = ' '.join(out.split())
    assert 'Validation of nginx failed: `nginx -t -q`' in flat, out[-3000:]
    assert 'after changes to %s' % NGINX_SITE in flat
    assert 'unknown directive "retrun"' in flat
    assert 'Commit %s was not applied: %s and /etc are back at %s' % (bad, CHECKOUT, applied_before) in flat, out[-3000:]
    assert 'Nothing was reloaded or restarted' in flat
    assert counts['failed'] == 1
    assert reload_items(out) == []
    assert nginx_workers(host) == workers
    assert applied(host) == applied_before
    # /etc holds the last good configuration again: the next restart or reboot starts nginx fine
    assert head(host) == applied_before
    assert host.file(NGINX_SITE).content_string == good_site
    assert host.run('nginx -t -q').rc == 0
    host.check_output('systemctl restart nginx')
    assert served(lab) == 'olsystem v2\n'

    # The fix is a new commit; it is validated and reloaded.
    push(git, 'nginx: fixed', {'etc/nginx/sites-enabled/default': nginx_site('olsystem v3')})
    rc, out, counts = converge()
    assert rc == 0, out[-3000:]
    assert reload_items(out) == ['reload nginx']
    assert served(lab) == 'olsystem v3\n'


def test_invalid_sshd_config_never_stays_in_etc(host, lab):
    # The commit brings sshd_config into the repository for the first time: Debian's own file
    # is backed up and replaced by the link before sshd -t can run, so it must come back.
    git = lab('cr-git')
    debian_config = host.file('/etc/ssh/sshd_config').content_string
    ssh_pid, applied_before = main_pid(host, 'ssh'), applied(host)
    bad = push(git, 'ssh: broken', {'etc/ssh/sshd_config': 'Port 22\nPermitRootLogin perhaps\n'})
    rc, out, counts = converge()
    assert rc != 0
    flat = ' '.join(out.split())
    assert 'Validation of ssh failed: `sshd -t`' in flat, out[-3000:]
    assert 'Commit %s was not applied' % bad in flat
    sshd_config = host.file('/etc/ssh/sshd_config')
    assert not sshd_config.is_symlink
    assert sshd_config.content_string == debian_config
    assert host.run('sshd -t').rc == 0
    assert head(host) == applied(host) == applied_before
    assert main_pid(host, 'ssh') == ssh_pid

    # Taking the file back out of the repository is the fix; nothing concerns ssh any more.
    push(git, 'ssh: back to the host\'s own', {'etc/ssh/sshd_config': None})
    rc, out, counts = converge()
    assert rc == 0, out[-3000:]
    assert reload_items(out) == []
    assert not host.file('/etc/ssh/sshd_config').is_symlink


def test_without_the_applied_record_the_checkout_goes_back_to_where_it_was(host, lab):
    # A checkout from before the record existed: the commit it was at stands in for it.
    git, before = lab('cr-git'), head(host)
    host.check_output('git -C %s update-ref -d refs/commons-infra/applied', CHECKOUT)
    good_site = host.file(NGINX_SITE).content_string
    bad = push(git, 'nginx: broken again', {'etc/nginx/sites-enabled/default': nginx_site('v4').replace('return', 'retrun')})
    rc, out, counts = converge()
    assert rc != 0
    assert ('Commit %s was not applied: %s and /etc are back at %s, the commit the checkout was at before this run'
            % (bad, CHECKOUT, before)) in ' '.join(out.split()), out[-3000:]
    assert head(host) == before
    assert host.file(NGINX_SITE).content_string == good_site
    assert host.run('nginx -t -q').rc == 0

    push(git, 'nginx: v4', {'etc/nginx/sites-enabled/default': nginx_site('olsystem v4')})
    rc, out, counts = converge()
    assert rc == 0, out[-3000:]
    assert served(lab) == 'olsystem v4\n'
    assert applied(host) == head(host)


def test_check_mode_reports_drift_and_the_clone_a_fresh_host_needs(host, lab):
    host.check_output('rm %s && printf "edited by hand\\n" > %s', '/etc/motd', '/etc/motd')
    fresh = lab('cr-fresh')
    rc, out = run_playbook('check.yml', check=True)
    assert rc == 0, out[-3000:]

    # cr-host: the hand edit is a conflict, and nothing else would change after all the updates above
    assert recap_counts(out, 'cr-host')['changed'] == 1, out[-3000:]
    report = re.search(r'ok: \[cr-host\] => {\s*"msg": {.*?"conflicts": (\[[^\]]*\])', out, re.S)
    assert report and json.loads(report.group(1)) == ['/etc/motd'], out[-3000:]
    motd = host.file('/etc/motd')
    assert not motd.is_symlink and motd.content_string == 'edited by hand\n'

    # cr-fresh: git, the key and the known hosts would be installed, the clone only announced
    counts = recap_counts(out, 'cr-fresh')
    assert counts['failed'] == 0
    assert counts['changed'] >= 3
    assert 'Would clone or update ssh://git@cr-git/srv/git/olsystem.git at main into /opt/olsystem' in ' '.join(out.split())
    assert not fresh.file('/opt/olsystem').exists
    assert not fresh.file('/root/.ssh/config_repo').exists
    assert not fresh.exists('git')


def test_converge_repairs_the_hand_edit_with_a_backup(host):
    rc, out, counts = converge()
    assert rc == 0, out[-3000:]
    assert host.file('/etc/motd').linked_to == CHECKOUT + '/etc/motd'
    backups = host.check_output('grep -rl --include "motd*" "edited by hand" %s', BACKUP_ROOT).split()
    assert len(backups) == 1 and backups[0].startswith(BACKUP_ROOT + '/'), backups
    assert reload_items(out) == []


BAD_INPUT = [
    pytest.param({'config_repo_dest': 'opt/olsystem'},
                 "config_repo_dest must be an absolute path, got 'opt/olsystem'", id='relative-dest'),
    pytest.param({'config_repo_layers': ['etc/../../root']},
                 "config_repo_layers: 'etc/../../root' escapes the checkout", id='layer-escapes'),
    pytest.param({'config_repo_actions': [{'service': 'nginx', 'paths': ['nginx'], 'action': 'bounce'}]},
                 'value of action must be one of: reload, restart, got: bounce found in config_repo_actions',
                 id='unknown-action'),
]


@pytest.mark.parametrize('extra_vars,message', BAD_INPUT)
def test_bad_input_fails_before_any_change(host, extra_vars, message):
    head = host.check_output('git -C %s rev-parse HEAD', CHECKOUT)
    rc, out = run_playbook('converge.yml', extra_vars=extra_vars)
    assert rc != 0
    assert message in ' '.join(out.split()), out[-3000:]
    assert recap_counts(out, 'cr-host')['changed'] == 0
    assert host.check_output('git -C %s rev-parse HEAD', CHECKOUT) == head
    assert not host.file('/etc/olsystem').exists
