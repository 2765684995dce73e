"""The config-repo layer: every lab host checks out the lab's olsystem, which ol-home0 serves
over ssh (molecule/resources/olsystem_server.yml), and links its etc/ into /etc; each link
resolves into the checkout, which is at the commit the server's main names, recorded as the
commit the services took, with no local change and the deploy key readable by root only."""
import pytest
from conftest import lab_host

LAB_HOSTS = ('ol-www0', 'ol-web1', 'ol-web2', 'ol-home0', 'ol-db1', 'ol-db2', 'ol-mem0')
CHECKOUT = '/opt/olsystem'
LINKED = ('cron.d/openlibrary', 'logrotate.d/openlibrary')

testinfra_hosts = list(LAB_HOSTS)


@pytest.fixture(scope='module')
def served():
    return lab_host('ol-home0').check_output('git --git-dir /srv/git/olsystem.git rev-parse refs/heads/main')


def test_the_checkout_is_at_the_served_commit(host, served):
    git = 'git -C %s ' % CHECKOUT
    assert host.check_output(git + 'rev-parse HEAD') == served
    assert host.check_output(git + 'rev-parse refs/commons-infra/applied') == served
    assert host.check_output(git + 'status --porcelain') == ''


@pytest.mark.parametrize('name', LINKED)
def test_each_file_resolves_into_the_checkout(host, served, name):
    path = '/etc/' + name
    link = host.file(path)
    assert link.is_symlink and link.linked_to == '%s/etc/%s' % (CHECKOUT, name)
    # What /etc serves is the file of the served commit, byte for byte.
    committed = host.check_output('git -C %s cat-file blob %s:etc/%s | sha256sum' % (CHECKOUT, served, name))
    assert host.check_output('sha256sum < %s' % path) == committed


def test_the_deploy_key_is_root_only(host):
    key = host.file('/root/.ssh/config_repo/deploy_key')
    assert key.user == 'root' and key.mode == 0o600
