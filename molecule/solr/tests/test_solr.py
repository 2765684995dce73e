"""The solr role. Without COMMONS_INFRA_SOLR_ARCHIVE (no Solr distribution is reachable
from this lab) only what needs no Solr runs here: the checksum refusal of a tampered
archive and the bad-input checks; the install and a query against real Solr skip with
that reason. solr.in.sh rendering and the heap filter are unit tests
(tests/unit/roles/test_solr_templates.py, tests/unit/plugins/filter/test_solr.py)."""
import hashlib
import io
import json
import os
import tarfile
import time

import pytest

from conftest import assert_refused, http_get, lab_host, recap_counts, run_playbook

testinfra_hosts = ['solr-host']

ARCHIVE = os.environ.get('COMMONS_INFRA_SOLR_ARCHIVE', '')
VERSION = os.environ.get('COMMONS_INFRA_SOLR_VERSION', '9.7.0')
NO_ARCHIVE = ('COMMONS_INFRA_SOLR_ARCHIVE is not set: no Solr distribution is reachable from this lab, so the full '
              'install and a query against real Solr cannot run (point it at solr-%s.tgz to run them)' % VERSION)
needs_solr = pytest.mark.skipif(not ARCHIVE, reason=NO_ARCHIVE)
RELEASE_DIR = '/opt/solr-%s' % VERSION
GOOD_SHA512 = 'ab' * 64


@pytest.fixture(scope='module')
def small_tar(tmp_path_factory):
    """A small tar shaped like a release (not Solr: it only has to be refused)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode='w:gz') as tar:
        data = b'#!/bin/sh\necho not solr\n'
        info = tarfile.TarInfo('solr-%s/bin/solr' % VERSION)
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
    path = tmp_path_factory.mktemp('archive') / ('solr-%s.tgz' % VERSION)
    path.write_bytes(buffer.getvalue())
    return path


def wrong_sha512(path):
    return hashlib.sha512(path.read_bytes() + b'tampered').hexdigest()


@pytest.mark.skipif(bool(ARCHIVE), reason='a real Solr is installed from the archive: the refusal runs without one')
def test_tampered_archive_on_the_controller_is_refused_before_anything_is_copied(host, small_tar):
    rc, out = run_playbook('solr.yml', {'solr_archive_file': str(small_tar), 'solr_archive_sha512': wrong_sha512(small_tar)})
    flat = ' '.join(out.split())
    assert rc != 0, out[-3000:]
    assert 'does not match solr_archive_sha512' in flat and 'Nothing was copied or unpacked' in flat, out[-3000:]
    assert recap_counts(out, 'solr-host')['changed'] == 0
    assert not host.file(RELEASE_DIR).exists
    assert not host.file('/var/cache/commons-infra/solr/solr-%s.tgz' % VERSION).exists


@pytest.mark.skipif(bool(ARCHIVE), reason='a real Solr is installed from the archive: the refusal runs without one')
def test_tampered_archive_from_a_url_is_refused_before_unpacking(host, small_tar):
    hook = lab_host('solr-hook')
    hook.run('rm -f /srv/files/*')
    copied = hook.ansible('copy', 'src=%s dest=/srv/files/ mode=0644' % small_tar, check=False)
    assert not copied.get('failed'), copied
    url = 'http://solr-hook:8099/' + small_tar.name
    # The download itself works: the checksum is what stops it.
    assert http_get(host, url)[0] == 200
    rc, out = run_playbook('solr.yml', {'solr_archive_file': None, 'solr_archive_url': url,
                                        'solr_archive_sha512': wrong_sha512(small_tar)})
    flat = ' '.join(out.split())
    assert rc != 0, out[-3000:]
    assert 'does not match solr_archive_sha512' in flat and 'Nothing was unpacked and the file was removed' in flat
    assert not host.file(RELEASE_DIR).exists
    assert not host.file('/var/cache/commons-infra/solr/solr-%s.tgz' % VERSION).exists
    # Nothing else happened either: no Java, no solr user.
    assert host.run('dpkg -s openjdk-17-jre-headless').rc != 0
    assert not host.user('solr').exists


@pytest.mark.parametrize('extra,message', [
    ({'solr_heap_mb': 4096}, 'solr_heap_mb (4096 MiB) is larger than the usable memory of the host (2048 MiB)'),
    ({'solr_archive_sha512': None}, 'solr_archive_sha512 is missing'),
    ({'solr_archive_sha512': 'not-a-digest'}, 'solr_archive_sha512 must be 128 hexadecimal digits'),
    ({'solr_cores': [{'name': 'open/library', 'configset': '/srv/configsets/lab/conf'}]},
     "solr_cores[0].name must be a core name (letters, digits, _ . -; no slash, not starting with a dot), got 'open/library'"),
    ({'solr_version': '8.11.2'}, 'solr_version 8.11.2 is not a Solr 9 release'),
])
def test_bad_input_fails_before_any_change_naming_the_variable(extra, message):
    settings = {'solr_archive_file': None, 'solr_archive_sha512': GOOD_SHA512}
    settings.update(extra)
    assert_refused('solr.yml', settings, [message], 'solr-host')


# ---------------------------------------------------------------- with a real Solr


def solr(host, path):
    status, body = http_get(host, 'http://127.0.0.1:8983/solr/' + path, timeout=10)
    assert status == 200, body
    return json.loads(body)


@needs_solr
def test_solr_runs_as_solr_with_its_limits_and_heap(host):
    service = host.service('solr')
    assert service.is_running and service.is_enabled
    pid = host.check_output('systemctl show -p MainPID --value solr')
    assert host.check_output('ps -o user= -p %s', pid) == 'solr'
    limits = host.check_output('cat /proc/%s/limits', pid)
    assert 'Max open files            65000' in limits
    # 2 GiB container limit, a quarter: 512 MiB, not a quarter of the machine's RAM.
    assert '-Xmx512m' in host.check_output('cat /proc/%s/cmdline | tr "\\0" " "', pid)
    info = solr(host, 'admin/info/system?wt=json')
    assert info['lucene']['solr-spec-version'].startswith(VERSION)


@needs_solr
def test_index_and_query_the_core_directly_and_through_haproxy(host):
    status, body = http_get(host, 'http://127.0.0.1:8983/solr/lab/update?commit=true&wt=json')
    host.check_output(
        'python3 -c %s', 'import urllib.request,json; urllib.request.urlopen(urllib.request.Request('
        '"http://127.0.0.1:8983/solr/lab/update?commit=true", data=json.dumps([{"id": "ol1", "title_t": "moby dick"}])'
        '.encode(), headers={"Content-Type": "application/json"}), timeout=30)')
    found = solr(host, 'lab/select?q=title_t:moby&wt=json')
    assert found['response']['numFound'] == 1
    assert solr(host, 'lab/admin/ping?wt=json')['status'] == 'OK'
    status, body = http_get(host, 'http://127.0.0.1:8984/solr/lab/select?q=title_t:dick&wt=json', timeout=10)
    assert status == 200 and json.loads(body)['response']['numFound'] == 1


@needs_solr
def test_changed_configset_reloads_the_core_without_a_restart(host):
    pid = host.check_output('systemctl show -p MainPID --value solr')
    before = solr(host, 'admin/cores?action=STATUS&core=lab&wt=json')['status']['lab']['startTime']
    host.check_output('echo "# changed by the test" >> /srv/configsets/lab/conf/stopwords.txt')
    rc, out = run_playbook('converge.yml')
    assert rc == 0, out[-3000:]
    assert 'Reload the core whose configset changed: lab' in out
    after = solr(host, 'admin/cores?action=STATUS&core=lab&wt=json')['status']['lab']['startTime']
    assert after != before
    assert host.check_output('systemctl show -p MainPID --value solr') == pid


@needs_solr
def test_watchdog_watches_solr_itself(host):
    config = json.loads(host.check_output('cat /etc/service-watchdog/solr.json'))
    assert config['url'] == 'http://127.0.0.1:8983/solr/lab/admin/ping'
    assert host.service('service-watchdog@solr').is_running
    time.sleep(2)
    assert 'decision=' not in host.check_output('journalctl -u service-watchdog@solr -o cat --no-pager')
