"""roles/solr/templates rendered with the role's own defaults and vars through Ansible's
templar, then read by a real shell the way bin/solr reads solr.in.sh."""
import os
import subprocess

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

from ansible_collections.commons.infra.plugins.filter.solr import solr_heap_mb

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ROLE = os.path.join(ROOT, 'roles', 'solr')


def trusted(value):
    """Role files are trusted templates, as Ansible treats them."""
    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, dict):
        return {key: trusted(item) for key, item in value.items()}
    if isinstance(value, list):
        return [trusted(item) for item in value]
    return value


def render(template, **overrides):
    loader = DataLoader()
    variables = {}
    variables.update(trusted(loader.load_from_file(os.path.join(ROLE, 'defaults', 'main.yml'))))
    variables.update(trusted(loader.load_from_file(os.path.join(ROLE, 'vars', 'main.yml'))))
    memory = {'total_mb': 24032, 'cgroup_limit_mb': 4096, 'usable_mb': 4096}
    variables.update(solr_host_memory={'memory': memory}, ansible_managed='Ansible managed',
                     solr_archive_sha512='ab' * 64)
    variables.update(overrides)
    variables['solr_heap'] = solr_heap_mb(memory, fraction=variables['solr_heap_fraction'],
                                          override_mb=variables['solr_heap_mb'])
    with open(os.path.join(ROLE, 'templates', template)) as handle:
        return Templar(loader=loader, variables=variables).template(trust_as_template(handle.read()))


def shell_values(text, names):
    """What bash sees after sourcing the file, as bin/solr does."""
    script = text + '\n' + ''.join('printf "%%s\\0" "$%s"\n' % name for name in names)
    out = subprocess.run(['bash', '-c', script], capture_output=True, text=True, check=True).stdout
    return dict(zip(names, out.split('\0')))


def test_solr_in_sh_from_defaults():
    text = render('solr.in.sh.j2')
    values = shell_values(text, ['SOLR_PORT', 'SOLR_HOME', 'SOLR_HEAP', 'SOLR_JETTY_HOST', 'SOLR_LOGS_DIR',
                                 'SOLR_PID_DIR', 'GC_LOG_OPTS', 'SOLR_OPTS'])
    assert values['SOLR_PORT'] == '8983'
    assert values['SOLR_HOME'] == '/var/solr/data'
    assert values['SOLR_HEAP'] == '1024m'  # a quarter of the 4 GiB cgroup limit, not of the 24 GiB of RAM
    assert values['SOLR_JETTY_HOST'] == '127.0.0.1'
    assert values['SOLR_LOGS_DIR'] == '/var/log/solr' and values['SOLR_PID_DIR'] == '/var/solr'
    assert values['GC_LOG_OPTS'] == '-Xlog:gc*:file=/var/log/solr/solr_gc.log:time,uptime:filecount=9,filesize=20M'
    assert '-Dsolr.log.requestlog.retaindays=7' in values['SOLR_OPTS']
    assert '# 1024 MiB: 0.25 of 4096 MiB usable memory' in text


def test_solr_in_sh_from_variables_is_quoted_for_the_shell():
    text = render('solr.in.sh.j2', solr_heap_mb=3000, solr_home='/1/var/solr data', solr_port=8990,
                  solr_opts=['-Dsolr.autoSoftCommit.maxTime=5000'],
                  solr_env={'SOLR_STOP_WAIT': 30, 'ODD': "it's $(touch /tmp/x) \"quoted\""},
                  solr_cores=[{'name': 'openlibrary', 'configset': '/opt/olsystem/solr/conf'}])
    values = shell_values(text, ['SOLR_HEAP', 'SOLR_HOME', 'SOLR_PORT', 'SOLR_OPTS', 'SOLR_STOP_WAIT', 'ODD'])
    assert values['SOLR_HEAP'] == '3000m'
    assert values['SOLR_HOME'] == '/1/var/solr data'
    assert values['SOLR_PORT'] == '8990'
    assert values['SOLR_OPTS'].split() == ['-Dsolr.log.requestlog.retaindays=7',
                                           '-Dsolr.allowPaths=/opt/olsystem/solr/conf',
                                           '-Dsolr.autoSoftCommit.maxTime=5000']
    assert values['SOLR_STOP_WAIT'] == '30'
    assert values['ODD'] == "it's $(touch /tmp/x) \"quoted\""
    assert '# 3000 MiB: solr_heap_mb' in text


def test_unit_has_limits_and_waits_for_each_core_ping():
    text = render('solr.service.j2', solr_cores=[{'name': 'openlibrary', 'configset': '/opt/c'}])
    assert 'LimitNOFILE=65000' in text and 'LimitNPROC=65000' in text
    assert 'User=solr' in text
    assert 'Environment=SOLR_INCLUDE=/etc/solr/solr.in.sh' in text
    assert 'ExecStart=/opt/solr/bin/solr start -f' in text
    assert 'http://127.0.0.1:8983/solr/openlibrary/admin/ping' in text
    assert '%' not in text  # systemd would expand it as a specifier


@pytest.mark.parametrize('listen,url', [('0.0.0.0', 'http://127.0.0.1:8983/solr'), ('10.0.1.5', 'http://10.0.1.5:8983/solr')])
def test_the_role_talks_to_solr_where_it_listens(listen, url):
    assert 'curl -fsS -o /dev/null %s/admin/info/system' % url in render('solr.service.j2', solr_listen=listen)
