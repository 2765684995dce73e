"""The production inventory (inventory/production) as a whole.

- `ansible-inventory --graph` and `--list` work without a vault password, and the
  playbooks pass `--syntax-check` against it;
- every port a service of the site listens on (from what each layer playbook runs on
  which group, with the values the inventory gives the roles) has a contract with
  base's firewall, and every cross-tier client the inventory configures (the apps'
  memcached, postgres, Solr and infobase addresses, the edge's haproxy backends) is
  let through by its server's contract;
- the lab's example vault defines every vault_* variable production uses, and the lab
  inventory is production's group_vars plus an overlay (links, not copies).

The values are rendered by ansible itself (a debug play, callback ansible.posix.json)
with the lab's example vault, so a contract written as a template is checked as it
will be applied.
"""
import json
import os
import re
import subprocess
import sys

import pytest
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), 'scripts', 'lab'))
from site_table import members, pattern_hosts, site_plays  # noqa: E402 (the demo's own reading of site.yml)
from test_collection_contracts import OWNERSHIP_ROW_RE, _overlap  # noqa: E402 (docs/ownership.md, read once)

from ansible_collections.commons.infra.plugins.module_utils.etc_symlinks import _Excluder  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PRODUCTION = os.path.join(ROOT, 'inventory', 'production')
LAB = os.path.join(ROOT, 'inventory', 'lab')
VAULT = os.path.join(LAB, 'group_vars', 'all', 'vault.yml')
VAULT_PASSWORD = os.path.join(LAB, 'vault-password.txt')
BIN = os.path.dirname(sys.executable)
LOOPBACK = ('127.', '::1', 'localhost', '[::1]')
# The lab's olsystem, which molecule/resources/olsystem_server.yml serves to the site and staging.
OLSYSTEM_LAB = os.path.join(ROOT, 'molecule', 'resources', 'olsystem')

# The variables of the roles the site runs that decide what listens where (rendered
# per host by the probe play; the roles' defaults fill in what the inventory leaves).
PROBED = ['memcached_port', 'memcached_listen_networks', 'memcached_listen_public', 'postgres_port',
          'haproxy_frontends', 'haproxy_backends', 'haproxy_listens', 'haproxy_stats_bind', 'nginx_sites',
          'app_release_env', 'app_release_runtime', 'app_release_environment', 'app_release_service',
          'config_repo_layers', 'config_repo_exclude', 'config_repo_link_dest', 'solr_listen', 'solr_port', 'pgbouncer_port',
          'pgbouncer_listen_addresses', 'etcd_client_port', 'etcd_peer_port', 'patroni_restapi_port']
PROBE_PLAY = """
- name: Render what decides the site's ports and contracts
  hosts: all
  gather_facts: false
  tasks:
    - name: Dump
      vars:
        probed: %s
        unset: __unset__
        # Listen addresses name the host's default address, a fact the probe does not gather.
        ansible_facts: {default_ipv4: {address: 192.0.2.10}}
        contracts: "{{ query('ansible.builtin.varnames', '^base_firewall_contract_.+') }}"
        tiers: "{{ query('ansible.builtin.varnames', '^haproxy_(frontends|backends|listens)_.+') | sort }}"
      ansible.builtin.debug:
        msg:
          probed: "{{ dict(probed | zip(query('ansible.builtin.vars', *probed, default=unset))) }}"
          contracts: "{{ dict(contracts | zip(query('ansible.builtin.vars', *contracts))) }}"
          haproxy_tiers: "{{ tiers | zip(query('ansible.builtin.vars', *tiers)) }}"
          allow: "{{ base_firewall_allow | default([]) }}"
          groups: "{{ group_names }}"
""" % json.dumps(PROBED)


def env():
    pypath = os.path.join(ROOT, '.cache', 'pypath')
    base = {k: v for k, v in os.environ.items() if k != 'ANSIBLE_VAULT_PASSWORD_FILE'}
    return dict(base, ANSIBLE_COLLECTIONS_PATH=pypath, ANSIBLE_ROLES_PATH=os.path.join(ROOT, 'roles'),
                ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='0', PATH=BIN + os.pathsep + os.environ.get('PATH', ''))


def run(*args, **kwargs):
    return subprocess.run([os.path.join(BIN, args[0]), *args[1:]], capture_output=True, text=True, cwd=ROOT,
                          env=kwargs.pop('env', env()), timeout=300, check=False, **kwargs)


def load(path):
    with open(path, encoding='utf-8') as handle:
        return yaml.safe_load(handle) or {}


def role_default(role, name):
    return load(os.path.join(ROOT, 'roles', role, 'defaults', 'main.yml')).get(name)


@pytest.fixture(scope='module')
def inventory_list():
    proc = run('ansible-inventory', '-i', PRODUCTION, '--list')
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope='module')
def rendered(tmp_path_factory):
    """{host: {'probed': {...}, 'contracts': {...}, 'allow': [...], 'groups': [...]}}"""
    return render(PRODUCTION, tmp_path_factory.mktemp('site'))


def render(inventory, directory):
    """Each host's probed values, contracts, allow-list and groups, rendered by ansible."""
    play = directory / 'probe.yml'
    play.write_text(PROBE_PLAY)
    proc = run('ansible-playbook', '-i', inventory, str(play), '--vault-password-file', VAULT_PASSWORD,
               '-e', '@' + VAULT, env=dict(env(), ANSIBLE_STDOUT_CALLBACK='ansible.posix.json'))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    hosts = result['plays'][0]['tasks'][0]['hosts']
    answers = {name: answer['msg'] for name, answer in hosts.items()}
    for answer in answers.values():
        answer['probed'] = {k: v for k, v in answer['probed'].items() if v != '__unset__'}
        # As the haproxy role merges them: each tier's haproxy_<kind>_<tier>, in name order,
        # after the plain list.
        for name, value in answer.pop('haproxy_tiers'):
            kind = 'haproxy_' + name.split('_')[1]
            answer['probed'][kind] = (answer['probed'].get(kind) or []) + value
    return answers


def port_of(bind):
    address, port = str(bind).rsplit(':', 1)
    return address, int(port)


def listening(role, probed):
    """[(service, port)] a role listens on beyond loopback, from its rendered variables."""
    def value(name):
        return probed[name] if probed.get(name) is not None else role_default(role, name)

    if role == 'memcached':
        return [('memcached', int(value('memcached_port')))] if (value('memcached_listen_networks') or value('memcached_listen_public')) else []
    if role == 'postgres':
        return [('postgres', int(value('postgres_port')))]
    if role == 'pgbouncer':
        addresses = value('pgbouncer_listen_addresses') or []
        return [('pgbouncer', int(value('pgbouncer_port')))] if any(not str(a).startswith(LOOPBACK) for a in addresses) else []
    if role == 'haproxy':
        ports = []
        for item in (value('haproxy_frontends') or []) + (value('haproxy_listens') or []):
            for bind in item.get('bind', []):
                address, port = port_of(bind)
                if not address.startswith(LOOPBACK):
                    ports.append(('haproxy ' + item['name'], port))
        return ports
    if role == 'nginx':
        ports = []
        for site in value('nginx_sites') or []:
            ports.append(('nginx ' + site['name'], int(site.get('http_port', 80))))
            if site.get('tls', True):
                ports.append(('nginx ' + site['name'], int(site.get('https_port', 443))))
        return ports
    if role == 'app_release':
        port = (value('app_release_env') or {}).get('PORT')
        return [('app', int(port))] if port else []
    if role == 'solr':
        return [] if str(value('solr_listen')).startswith(LOOPBACK) else [('solr', int(value('solr_port') or 8983))]
    if role == 'etcd':
        return [('etcd', int(value('etcd_client_port'))), ('etcd-peer', int(value('etcd_peer_port')))]
    if role == 'patroni':
        return [('postgres', int(probed.get('postgres_port') or role_default('postgres', 'postgres_port'))),
                ('patroni-api', int(value('patroni_restapi_port')))]
    if role in ('base', 'config_repo', 'zfs', 'sanoid', 'syncoid', 'service_watchdog', 'pgbackrest'):
        # sshd (22) is base's own rule; the others listen on nothing (syncoid pulls over ssh,
        # pgbackrest's repository is a local path).
        return []
    raise AssertionError('the site runs role %s: teach listening() which ports it opens' % role)


def rules_for(answer):
    rules = list(answer['allow'])
    for name in sorted(answer['contracts']):
        rules += answer['contracts'][name]
    return rules


def admits(rules, port, client_groups):
    """True when a rule for port lets a member of one of client_groups (or everyone) in."""
    for rule in rules:
        if int(rule['port']) == port and rule.get('proto', 'tcp') == 'tcp':
            sources = rule.get('from_groups') or []
            if not sources and not rule.get('from_cidrs'):
                return True
            if set(sources) & set(client_groups):
                return True
    return False


def test_graph_and_list_need_no_vault_password(inventory_list):
    proc = run('ansible-inventory', '-i', PRODUCTION, '--graph')
    assert proc.returncode == 0, proc.stderr
    for host in ('ol-www0', 'ol-web1', 'ol-web2', 'ol-db1', 'ol-db2', 'ol-mem0', 'ol-mem1', 'ol-mem2',
                 'ol-solr0', 'ol-solr1', 'ol-solr2', 'ol-covers0', 'ol-home0'):
        assert host in proc.stdout
    assert members(inventory_list, 'web') == ['ol-web1', 'ol-web2']
    assert set(members(inventory_list, 'apps')) == {'ol-web1', 'ol-web2', 'ol-covers0', 'ol-home0'}


@pytest.mark.parametrize('playbook', ['site.yml', 'deploy.yml'])
def test_playbooks_pass_syntax_check_against_production(playbook):
    proc = run('ansible-playbook', '-i', PRODUCTION, os.path.join('playbooks', playbook), '--syntax-check')
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_listening_service_has_its_firewall_contract(inventory_list, rendered):
    missing, checked = [], 0
    for pattern, roles in site_plays():
        for host in pattern_hosts(inventory_list, pattern):
            rules = rules_for(rendered[host])
            for role in roles:
                for service, port in listening(role, rendered[host]['probed']):
                    checked += 1
                    if not any(int(rule['port']) == port for rule in rules):
                        missing.append('%s: %s (%s) listens on %d, no base_firewall_contract_* opens it'
                                       % (host, service, role, port))
    assert not missing, '\n'.join(missing)
    assert checked >= 13  # memcached x3, postgres x2, solr haproxy x3, nginx 80/443, apps x4


def test_every_rule_names_groups_with_hosts(inventory_list, rendered):
    for host, answer in rendered.items():
        for rule in rules_for(answer):
            for group in rule.get('from_groups') or []:
                assert members(inventory_list, group), '%s: %s opens to group %s, which has no hosts' % (host, rule, group)


def _targets(url_list):
    """host:port pairs of 'host:port,...' or 'http://host:port/...,...'."""
    found = []
    for item in filter(None, str(url_list).split(',')):
        match = re.match(r'^(?:\w+://)?([^:/]+):(\d+)', item.strip())
        assert match, item
        found.append((match.group(1), int(match.group(2))))
    return found


def test_every_client_the_inventory_configures_is_let_through(inventory_list, rendered):
    refused, checked = [], 0
    for host in members(inventory_list, 'apps'):
        app_env = rendered[host]['probed']['app_release_env']
        targets = (_targets(app_env['MEMCACHED_SERVERS']) + _targets(app_env['PGHOST'] and '%s:%s' % (app_env['PGHOST'], app_env['PGPORT']))
                   + _targets(app_env['SOLR_URLS']) + _targets(app_env['INFOBASE_URL']))
        for server, port in targets:
            checked += 1
            if server == '127.0.0.1':
                # the host's own router (haproxy): its frontend on that port, whose servers are checked below
                binds = [port_of(bind)[1] for item in rendered[host]['probed'].get('haproxy_frontends') or []
                         for bind in item.get('bind', [])]
                if port not in binds:
                    refused.append('%s -> 127.0.0.1:%d, where no haproxy frontend of its own listens' % (host, port))
            elif not admits(rules_for(rendered[server]), port, rendered[host]['groups']):
                refused.append('%s -> %s:%d' % (host, server, port))
    # Every haproxy's servers (the edge's app backends, each router's pgbouncer and Patroni checks).
    for proxy in members(inventory_list, 'edge') + members(inventory_list, 'patroni_haproxy'):
        for backend in rendered[proxy]['probed']['haproxy_backends']:
            ports = {int(backend['port'])} | {int(backend.get('check', {}).get('port') or backend['port'])}
            for server, port in ((s, p) for s in members(inventory_list, backend['group']) for p in sorted(ports)):
                checked += 1
                if not admits(rules_for(rendered[server]), port, rendered[proxy]['groups']):
                    refused.append('%s (haproxy %s) -> %s:%s' % (proxy, backend['name'], server, port))
    assert not refused, 'base firewall would refuse:\n' + '\n'.join(refused)
    assert checked >= 30


def test_every_postgres_client_routes_to_the_patroni_leader(inventory_list, rendered):
    """Under Patroni every postgres client host runs the router, and its apps use it."""
    clients = {h for group in load(os.path.join(PRODUCTION, 'group_vars', 'all.yml'))['site_client_groups']['postgres']
               for h in members(inventory_list, group)}
    assert members(inventory_list, 'patroni') and clients
    assert clients <= set(members(inventory_list, 'patroni_haproxy')), clients - set(members(inventory_list, 'patroni_haproxy'))
    for host in clients & set(members(inventory_list, 'apps')):
        app_env = rendered[host]['probed']['app_release_env']
        assert (app_env['PGHOST'], int(app_env['PGPORT'])) == ('127.0.0.1', 5000), (host, app_env['PGHOST'], app_env['PGPORT'])


def test_the_edge_serves_every_app_tier_with_hosts(rendered):
    backends = {b['name']: b for b in rendered['ol-www0']['probed']['haproxy_backends']}
    assert backends['web']['group'] == 'web' and backends['covers']['group'] == 'covers'
    assert {s['name'] for s in rendered['ol-www0']['probed']['nginx_sites']} == {'web', 'covers'}


def test_the_apps_run_under_compose_with_their_environment(rendered):
    for host in ('ol-web1', 'ol-covers0', 'ol-home0'):
        assert rendered[host]['probed']['app_release_runtime'] == 'compose'
    assert rendered['ol-web1']['probed']['app_release_env']['MEMCACHED_SERVERS'] == 'ol-mem0:11211,ol-mem1:11211,ol-mem2:11211'
    # The leader through the host's own router (Patroni: test_every_postgres_client_routes_to_the_patroni_leader).
    assert rendered['ol-web1']['probed']['app_release_env']['PGHOST'] == '127.0.0.1'
    # Only the tiers a host is a client of: covers does not search.
    assert rendered['ol-covers0']['probed']['app_release_env']['SOLR_URLS'] == ''
    assert rendered['ol-web1']['probed']['app_release_env']['SOLR_URLS'].count('http://ol-solr') == 3


def vault_names(root):
    found = set()
    for folder, dummy, files in os.walk(root):
        for name in files:
            if name.endswith('.yml'):
                with open(os.path.join(folder, name), encoding='utf-8') as handle:
                    found.update(re.findall(r'\bvault_[a-z0-9_]+', handle.read()))
    return found


def test_secrets_are_vault_variables_the_lab_vault_defines(rendered):
    loader = type('VaultLoader', (yaml.SafeLoader,), {})
    loader.add_constructor('!vault', lambda load_, node: ('!vault', load_.construct_scalar(node)))
    with open(VAULT, encoding='utf-8') as handle:
        example = yaml.load(handle, Loader=loader)  # noqa: S506 (SafeLoader plus the !vault tag)
    for name, value in example.items():
        assert isinstance(value, tuple) and value[1].startswith('$ANSIBLE_VAULT;'), name + ' must stay encrypted'
    defined = set(example)
    used = vault_names(PRODUCTION)
    assert used and used <= defined, 'missing from the lab vault: %s' % sorted(used - defined)
    # No plain-text secret in production: every password-like variable is a vault reference.
    for folder, dummy, files in os.walk(PRODUCTION):
        for name in files:
            for key, value in (load(os.path.join(folder, name)) or {}).items():
                if re.search(r'password|secret|token|webhook', key) and isinstance(value, str):
                    assert '{{ vault_' in value, '%s/%s: %s is not a vault variable' % (folder, name, key)


def test_the_lab_is_production_plus_an_overlay():
    for name in os.listdir(os.path.join(LAB, 'group_vars')):
        folder = os.path.join(LAB, 'group_vars', name)
        production = os.path.join(PRODUCTION, 'group_vars', name + '.yml')
        if os.path.isdir(folder) and os.path.exists(production):
            link = os.path.join(folder, '10-production.yml')
            assert os.path.islink(link) and os.path.samefile(link, production), link
    for name in os.listdir(os.path.join(PRODUCTION, 'group_vars')):
        group = name[:-4]
        if group in ('zfs', 'zfs_backup'):
            continue  # Open Food Facts' storage hosts: not part of Open Library's lab
        assert os.path.isdir(os.path.join(LAB, 'group_vars', group)), 'lab lacks group_vars/%s/' % group


def test_staging_composes_every_tier_on_one_host_without_a_port_clash(tmp_path):
    """inventory/staging: ol-dev01 in every group of production, with production's tier data
    plus its host_vars; every port a tier's service takes on it is its own."""
    staging = os.path.join(ROOT, 'inventory', 'staging')
    proc = run('ansible-playbook', '-i', staging, os.path.join('playbooks', 'site.yml'), '--syntax-check')
    assert proc.returncode == 0, proc.stdout + proc.stderr
    host = render(staging, tmp_path)['ol-dev01']
    probed = host['probed']
    ports = [('memcached', int(probed.get('memcached_port') or role_default('memcached', 'memcached_port'))),
             ('postgres', int(probed.get('postgres_port') or role_default('postgres', 'postgres_port')))]
    ports += [('app ' + tier, int(port)) for tier, port in load(os.path.join(PRODUCTION, 'group_vars', 'all.yml'))
              ['site_ports'].items() if tier not in ('postgres', 'memcached', 'solr')]
    for item in (probed.get('haproxy_frontends') or []) + (probed.get('haproxy_listens') or []):
        ports += [('haproxy ' + item['name'], port_of(bind)[1]) for bind in item.get('bind', [])]
    for site in probed.get('nginx_sites') or []:
        ports += [('nginx ' + site['name'], int(site.get('http_port', 80))),
                  ('nginx ' + site['name'], int(site.get('https_port', 443)))]
    by_port = {}
    for service, port in ports:
        by_port.setdefault(port, set()).add(service.split(' ')[0] if service.startswith('nginx') else service)
    print('ol-dev01 ports:', sorted(by_port.items()))
    assert {'haproxy web', 'haproxy covers', 'haproxy solr'} <= {service for service, port in ports}
    # Staging's own compose file: its group_vars/apps/ says so over production's apps.yml.
    assert probed['app_release_environment'] == 'staging'
    clashes = {port: services for port, services in by_port.items() if len(services) > 1}
    assert not clashes, clashes


def test_the_rolling_upgrade_order_names_production_hosts(inventory_list):
    order = load(os.path.join(PRODUCTION, 'group_vars', 'all.yml'))['rolling_upgrade_order']
    hosts = set(members(inventory_list, 'all'))
    assert [name for name in order if name not in hosts] == []
    # Open Library's documented order: the web heads first, the edge last.
    assert order[:2] == ['ol-web1', 'ol-web2'] and order[-1] == 'ol-www0'


def ownership_rows():
    """[(path, owner)] of docs/ownership.md, placeholders as written (<service>, <version>, ...)."""
    with open(os.path.join(ROOT, 'docs', 'ownership.md'), encoding='utf-8') as handle:
        return OWNERSHIP_ROW_RE.findall(handle.read())


def olsystem_lab_links(probed):
    """The /etc paths config_repo links on a lab host: the lab olsystem's files in the host's
    layers, less what its config_repo_exclude keeps out (the module's own matching)."""
    excluder = _Excluder(probed['config_repo_exclude'])
    link_dest = probed.get('config_repo_link_dest') or role_default('config_repo', 'config_repo_link_dest')
    links = []
    for layer in probed['config_repo_layers']:
        top = os.path.join(OLSYSTEM_LAB, layer)
        assert os.path.isdir(top), 'the lab olsystem has no layer %s' % layer
        for folder, dummy, names in os.walk(top):
            for name in names:
                rel = os.path.relpath(os.path.join(folder, name), top)
                if not excluder.path(rel):
                    links.append(os.path.join(link_dest, rel))
    return links


def test_every_file_the_config_repo_links_on_a_lab_host_has_one_owner(tmp_path):
    """Each file olsystem links into /etc is documented as config_repo's, and is no role's."""
    owners = {re.sub(r'<[^>]+>', '*', path): owner for path, owner in ownership_rows()}
    problems, checked = [], 0
    for host, answer in render(LAB, tmp_path).items():
        for path in olsystem_lab_links(answer['probed']):
            checked += 1
            claims = sorted({owner for pattern, owner in owners.items() if _overlap(path, pattern)})
            if claims != ['config_repo']:
                problems.append('%s links %s, which docs/ownership.md gives to %s' % (host, path, claims or 'nobody'))
    assert not problems, '\n'.join(problems)
    assert checked >= 7 * 2  # two files on each of the lab's seven hosts


def test_production_olsystem_never_links_a_file_a_role_writes(rendered):
    """Production's olsystem is not in this checkout: its config_repo_exclude must keep out
    every file docs/ownership.md gives a role, on every host."""
    missing = []
    for host, answer in rendered.items():
        probed = answer['probed']
        excluder = _Excluder(probed['config_repo_exclude'])
        for path, owner in ownership_rows():
            if owner == 'config_repo':
                continue
            sample = path.replace('<service>', probed.get('app_release_service') or 'openlibrary')
            link_dest = probed.get('config_repo_link_dest') or role_default('config_repo', 'config_repo_link_dest')
            rel = os.path.relpath(re.sub(r'<[^>]+>', 'x', sample), link_dest)
            if not excluder.path(rel):
                missing.append('%s: %s (%s)' % (host, rel, owner))
    assert not missing, 'config_repo_exclude lets olsystem link these:\n' + '\n'.join(sorted(set(missing)))
