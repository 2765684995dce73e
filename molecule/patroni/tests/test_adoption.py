"""patroni adoption: prepare.yml built pt-db1 (primary) and pt-db2 (its streaming standby) with the
PostgreSQL tier and wrote numbered rows; the converge handed both over to Patroni, and pt-db3
(empty) was cloned. These run before the fault tests (test_patroni.py), on the adopted cluster:
the same cluster (system identifier), every row, postgresql@ masked and stopped, the standby's
own data kept (no new base backup), and the handover's downtime printed (run with -s)."""
import json
import shlex

import pytest
import yaml

from test_patroni import DATA, DB_HOSTS, healthy_cluster, leader, on, receiver_status, wait_for

SERVICE = 'postgresql@15-main'          # postgres__service of the PostgreSQL tier
ADOPTED = ['pt-db1', 'pt-db2']           # prepare.yml: the tier's primary and standby
RECORD = '/etc/patroni/adopted.yml'      # patroni__adoption_record
BEFORE = '/var/tmp/adoption-before.json'  # prepare.yml: system identifier and rows written

testinfra_hosts = ['pt-client']


def sql(host, query):
    return on(host, 'runuser -u postgres -- psql -XAtq -c %s' % shlex.quote(query)).stdout.strip()


@pytest.fixture(scope='module')
def before():
    wait_for(healthy_cluster, 180, 'a healthy cluster before the adoption tests')
    return json.loads(on('pt-db1', 'cat %s' % BEFORE).stdout)


def test_every_member_runs_the_cluster_the_postgres_tier_built(before):
    identifiers = {host: sql(host, 'SELECT system_identifier FROM pg_control_system()') for host in DB_HOSTS}
    assert set(identifiers.values()) == {before['system_identifier']}, identifiers
    assert leader() == 'pt-db1'


def test_every_row_written_before_the_adoption_is_present(before):
    written = before['rows']
    for host in DB_HOSTS:
        present = int(sql(host, 'SELECT count(DISTINCT id) FROM adoption_rows WHERE id BETWEEN 1 AND %d' % written))
        print('\nadoption, %s: written %d, present %d, lost %d' % (host, written, present, written - present))
        assert present == written


def test_postgresql_common_no_longer_runs_the_cluster(before):
    for host in ADOPTED:
        assert on(host, 'systemctl is-enabled %s' % SERVICE, check=False).stdout.strip() == 'masked'
        assert on(host, 'systemctl is-active %s' % SERVICE, check=False).stdout.strip() != 'active'
        # The postmaster running the tier's data directory is in Patroni's unit.
        unit = on(host, 'ps -o unit= -p "$(head -1 %s/postmaster.pid)"' % DATA).stdout.strip()
        assert unit == 'patroni.service', unit


def test_the_standby_kept_its_data_and_streams(before):
    # A base backup (Patroni's replica creation or reinit) empties the data directory first.
    marker = on('pt-db2', 'cat %s/adoption-marker' % DATA, check=False).stdout.strip()
    assert marker == before['system_identifier'], 'pt-db2 was cloned again: %s' % marker
    assert receiver_status('pt-db2') == 'streaming'


def test_the_handover_downtime_is_printed(before):
    primary = yaml.safe_load(on('pt-db1', 'cat %s' % RECORD).stdout)
    standby = yaml.safe_load(on('pt-db2', 'cat %s' % RECORD).stdout)
    assert (primary['role'], standby['role']) == ('leader', 'replica')
    assert str(primary['system_identifier']) == str(standby['system_identifier']) == before['system_identifier']
    whole = float(standby['running_at']) - float(primary['stopped_at'])
    print('\nhandover: pt-db1 postgresql@ stopped -> Patroni leader in %.1f s; pt-db2 postgresql@ stopped -> '
          'streaming under Patroni in %.1f s; both adopted %.1f s after the first stop'
          % (float(primary['seconds']), float(standby['seconds']), whole))
    assert 0 < float(primary['seconds']) < 120
