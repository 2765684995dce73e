import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.commons.infra.plugins.filter.solr import solr_heap_mb


@pytest.mark.parametrize('memory,kwargs,heap', [
    (16384, {}, 4096),                                                  # a quarter
    ({'total_mb': 24032, 'cgroup_limit_mb': 4096}, {'fraction': 0.5}, 2048),  # the cgroup limit, not RAM
    ({'usable_mb': 10000}, {}, 2496),                                   # 2500 rounded down to 64s
    (262144, {'fraction': 0.5}, 31744),                                 # capped below 32 GiB
    (1536, {}, 512),                                                    # the floor
    (8192, {'override_mb': 3000}, 3000),                                # an override wins (not rounded)
    (8192, {'fraction': '0.4', 'step_mb': 1024}, 3072),
])
def test_heap(memory, kwargs, heap):
    assert solr_heap_mb(memory, **kwargs) == heap


def test_page_cache_keeps_its_share():
    for usable in (2048, 4096, 65536):
        assert usable - solr_heap_mb(usable, fraction=0.75) >= usable * 0.25


def test_heap_larger_than_memory_is_refused_naming_the_variable():
    with pytest.raises(AnsibleFilterError, match=r'solr_heap_mb \(9000 MiB\) is larger than the usable memory of the host \(8192 MiB\)'):
        solr_heap_mb(8192, override_mb=9000)


def test_heap_that_leaves_no_reserve_is_refused():
    with pytest.raises(AnsibleFilterError, match='solr_heap_mb .8000 MiB. leaves less than solr_memory_reserve_mb'):
        solr_heap_mb(8192, override_mb=8000)


def test_too_little_memory():
    with pytest.raises(AnsibleFilterError, match='too little for Solr'):
        solr_heap_mb(768)


@pytest.mark.parametrize('kwargs,message', [
    ({'fraction': 0.9}, 'solr_heap_fraction must be above 0 and at most 0.75'),
    ({'fraction': 0}, 'solr_heap_fraction'),
    ({'fraction': 'half'}, 'solr_heap_fraction must be a number'),
    ({'override_mb': 0}, 'solr_heap_mb must be at least 1'),
    ({'override_mb': 1.5}, 'solr_heap_mb must be a whole number'),
    ({'reserve_mb': -1}, 'solr_memory_reserve_mb must be at least 0'),
    ({'step_mb': 0}, 'solr_heap_step_mb'),
])
def test_bad_input_names_the_variable(kwargs, message):
    with pytest.raises(AnsibleFilterError, match=message):
        solr_heap_mb(8192, **kwargs)


from ansible_collections.commons.infra.plugins.filter.solr import solr_errors  # noqa: E402

GOOD = {'solr_version': '9.7.0', 'solr_archive_url': 'https://archive.apache.org/dist/solr/solr/9.7.0/solr-9.7.0.tgz',
        'solr_archive_file': None, 'solr_archive_sha512': 'ab' * 64, 'solr_port': 8983, 'solr_home': '/var/solr/data',
        'solr_cores': [{'name': 'openlibrary', 'configset': '/opt/olsystem/solr/openlibrary/conf'}]}


def test_good_settings():
    assert solr_errors(GOOD) == []
    assert solr_errors(dict(GOOD, solr_version='9.10.0')) == []  # a version, not a string: 9.10 > 9.9


@pytest.mark.parametrize('change,message', [
    ({'solr_archive_sha512': None}, 'solr_archive_sha512 is missing'),
    ({'solr_archive_sha512': 'abc'}, 'solr_archive_sha512 must be 128 hexadecimal digits'),
    ({'solr_archive_url': None}, 'give solr_archive_url (the official archive) or solr_archive_file'),
    ({'solr_archive_url': 'ftp://x/solr.tgz'}, 'solr_archive_url must be an http(s):// URL'),
    ({'solr_version': '8.11.2'}, 'solr_version 8.11.2 is not a Solr 9 release'),
    ({'solr_version': '10.0.0'}, 'solr_version 10.0.0 is not a Solr 9 release'),
    ({'solr_version': 9.7}, 'solr_version must be a release number'),
    ({'solr_port': 0}, 'solr_port must be a port'),
    ({'solr_home': 'var/solr'}, 'solr_home must be an absolute path'),
    ({'solr_cores': [{'name': 'open/library', 'configset': '/x'}]}, 'solr_cores[0].name must be a core name'),
    ({'solr_cores': [{'name': '..', 'configset': '/x'}]}, 'solr_cores[0].name must be a core name'),
    ({'solr_cores': [{'name': 'ol', 'configset': 'conf'}]}, 'solr_cores[0].configset must be the absolute path'),
    ({'solr_cores': [{'name': 'ol', 'configset': '/x', 'conf': 1}]}, 'solr_cores[0]: unknown keys conf'),
    ({'solr_cores': [{'name': 'ol', 'configset': '/x'}] * 2}, 'names must be unique, repeated: ol'),
])
def test_bad_settings_name_the_variable(change, message):
    problems = solr_errors(dict(GOOD, **change))
    assert any(message in p for p in problems), problems
