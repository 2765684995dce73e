"""etc_symlinks on a Proxmox-like /etc/pve (pve.yml): copies go in through pmxcfs's own links,
VM configs Proxmox writes come back into the checkout with `state: capture`, and nothing under
priv/ ever reaches the checkout. The tests run in order; each runs pve.yml on cr-host."""
from conftest import recap_counts, run_playbook

testinfra_hosts = ['cr-host']

LAB = '/srv/pve-lab'
PVE = LAB + '/etc/pve'
NODE = PVE + '/nodes/cr-host'
CHECKOUT = LAB + '/checkout/proxmox'
SECRETS = ('shadow.cfg', 'token.cfg', 'tfa.cfg', 'authkey.key')
WRITE_FILE = ('import os,sys\n'
              'open(sys.argv[1], "w").write(sys.argv[2])\n'
              'os.chmod(sys.argv[1], int(sys.argv[3], 8))\n')


def converge_pve():
    rc, out = run_playbook('pve.yml', limit='cr-host')
    assert rc == 0, out[-4000:]
    return recap_counts(out, 'cr-host')


def write(host, path, content, mode='0640'):
    host.check_output('python3 -c %s %s %s %s', WRITE_FILE, path, content, mode)


def priv_state(host):
    return host.check_output('cd %s/priv && stat -c "%%n %%a %%s %%Y" * && sha256sum *', PVE)


def test_layer_is_copied_through_the_pmxcfs_link_which_stays_a_link(host):
    converge_pve()
    link = host.file(PVE + '/qemu-server')
    assert link.is_symlink and link.linked_to == NODE + '/qemu-server'
    assert host.file(PVE + '/qemu-server').linked_to == NODE + '/qemu-server'
    live = host.file(NODE + '/qemu-server/100.conf')
    assert live.is_file and 'name: off-query' in live.content_string
    assert not host.file(LAB + '/backup').exists     # nothing was in the way, nothing replaced


def test_capture_brings_a_new_vm_config_back_into_the_checkout(host):
    before = priv_state(host)
    # What Proxmox does when a VM is created on this node.
    write(host, NODE + '/qemu-server/101.conf', 'cores: 4\nmemory: 8192\nname: off-pro-import\n')
    converge_pve()
    captured = host.file(CHECKOUT + '/pve/qemu-server/101.conf')
    assert captured.content_string == 'cores: 4\nmemory: 8192\nname: off-pro-import\n'
    assert captured.mode == 0o640      # the live mode: what is private on the node stays so
    assert host.file(CHECKOUT + '/pve/lxc/200.conf').content_string == 'hostname: ct200\nmemory: 512\n'
    assert 'path /var/lib/vz' in host.file(CHECKOUT + '/pve/storage.cfg').content_string
    assert priv_state(host) == before


def test_a_commit_to_the_checkout_reaches_the_vm_through_the_link(host):
    write(host, CHECKOUT + '/pve/qemu-server/101.conf', 'cores: 8\nmemory: 8192\nname: off-pro-import\n', '0644')
    converge_pve()
    assert host.file(NODE + '/qemu-server/101.conf').content_string.startswith('cores: 8\n')
    assert host.file(PVE + '/qemu-server').is_symlink
    # The older content was kept before the managed copy was overwritten.
    assert host.run('grep -rl "cores: 4" %s/backup', LAB).stdout.strip()


def test_nothing_under_priv_ever_reaches_the_checkout(host):
    assert host.run('find %s -path "*priv*"', CHECKOUT).stdout.strip() == ''
    for name in SECRETS:
        secret = host.file('%s/priv/%s' % (PVE, name)).content_string.strip().splitlines()[0]
        assert host.run('grep -rlF -- %s %s', secret, CHECKOUT).stdout.strip() == '', name
    assert host.file(PVE + '/priv').mode == 0o700


def test_second_run_changes_nothing(host):
    assert converge_pve()['changed'] == 0
