# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ZFS, sanoid and syncoid input rules (documentation in the .yml file of each filter).

Every rule lives here so that the roles refuse bad input before any change, each
message naming the variable (and the list entry) it is about.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible.errors import AnsibleFilterError

# The pool version each compression needs: 5000 stands for feature flags (OpenZFS), the
# only way lz4 and zstd exist; zfs-fuse stops at version 23.
COMPRESSION_VERSION = {'on': 1, 'off': 1, 'lzjb': 1, 'gzip': 5, 'zle': 20, 'lz4': 5000, 'zstd': 5000, 'zstd-fast': 5000}
FEATURE_FLAGS_VERSION = 5000
DATASET_PROPERTIES = ('compression', 'recordsize', 'atime', 'quota', 'mountpoint', 'readonly', 'canmount')
NAME_COMPONENT = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.:-]*$')
UNIT_NAME = re.compile(r'^[a-z0-9][a-z0-9_-]*$')
SIZE = re.compile(r'^(none|[0-9]+(\.[0-9]+)?[KMGTP]?)$', re.IGNORECASE)
SANOID_COUNTS = ('frequently', 'hourly', 'daily', 'weekly', 'monthly', 'yearly')
SANOID_THRESHOLDS = tuple('%s_%s' % (period, level) for period in SANOID_COUNTS for level in ('warn', 'crit'))


def _compression_version(value):
    value = str(value)
    if re.match(r'^gzip-[1-9]$', value):
        return COMPRESSION_VERSION['gzip']
    if re.match(r'^zstd(-[0-9]+)?$', value) or value.startswith('zstd-fast'):
        return COMPRESSION_VERSION['zstd']
    return COMPRESSION_VERSION.get(value)


def _size_bytes(value):
    match = re.match(r'^([0-9]+)([KMG]?)$', str(value).upper())
    if not match:
        return None
    return int(match.group(1)) * {'': 1, 'K': 1024, 'M': 1024 ** 2, 'G': 1024 ** 3}[match.group(2)]


def _onoff(value):
    if isinstance(value, bool):
        return 'on' if value else 'off'
    return str(value)


def _dataset_name_problem(name):
    if not isinstance(name, str) or not name:
        return 'must be a dataset name like tank/off, got %r' % (name,)
    if '@' in name or name.startswith('/') or name.endswith('/'):
        return 'must be a dataset name like tank/off (no @, no leading or trailing /), got %r' % name
    if not all(NAME_COMPONENT.match(part) for part in name.split('/')):
        return 'has an empty or invalid component (letters, digits, _ . : - only): %r' % name
    return None


def zfs_datasets(datasets, flavors=None, flavor_pool=None, mount_root='/mnt', flavor_properties=None):
    """The datasets to manage: one per flavor (<flavor_pool>/<flavor> at <mount_root>/<flavor>),
    then zfs_datasets, whose entries win for the same name. Each entry gets `properties`,
    the dict of ZFS properties to set."""
    if not isinstance(datasets, list):
        raise AnsibleFilterError('zfs_datasets must be a list of dicts, got %r' % (datasets,))
    merged = {}
    order = []
    for index, flavor in enumerate(flavors or []):
        if not isinstance(flavor, str) or not NAME_COMPONENT.match(flavor):
            raise AnsibleFilterError('zfs_flavors[%d] must be a flavor name like off or obf, got %r%s' % (
                index, flavor, ' (YAML reads a bare off, on, no or yes as a boolean: quote it)' if isinstance(flavor, bool) else ''))
        name = '%s/%s' % (flavor_pool, flavor)
        entry = dict(flavor_properties or {})
        entry.update({'name': name, 'mountpoint': '%s/%s' % (mount_root.rstrip('/'), flavor), 'source': 'zfs_flavors'})
        merged[name] = entry
        order.append(name)
    for index, item in enumerate(datasets):
        if not isinstance(item, dict) or 'name' not in item:
            raise AnsibleFilterError('zfs_datasets[%d] must be a dict with a name, got %r' % (index, item))
        entry = dict(merged.get(item['name'], {}))
        entry.update(item)
        entry['source'] = 'zfs_datasets[%d]' % index
        if item['name'] not in merged:
            order.append(item['name'])
        merged[item['name']] = entry
    result = []
    for name in order:
        entry = merged[name]
        props = dict(entry.get('properties') or {})
        for key in DATASET_PROPERTIES:
            if entry.get(key) is not None:
                props[key] = _onoff(entry[key])
        entry['properties'] = dict((key, _onoff(value)) for key, value in props.items())
        result.append(entry)
    return result


def zfs_errors(datasets, pools, default_version, platform='zfsutils', existing_pools=None, destroy=None, staging=None,
               unmanageable=None):
    """Every problem of the pools, datasets, destroy list and staging clones, each naming its variable."""
    errors = []
    unmanageable = unmanageable or {}
    pools = pools or []
    versions = {}
    for index, pool in enumerate(pools):
        where = 'zfs_pools[%d]' % index
        if not isinstance(pool, dict) or not pool.get('name'):
            errors.append('%s must be a dict with a name' % where)
            continue
        name = pool['name']
        where = '%s (%s)' % (where, name)
        if '/' in name or not NAME_COMPONENT.match(name):
            errors.append('%s: the name must be one component (letters, digits, _ . : -)' % where)
        if not pool.get('vdevs') and not pool.get('file'):
            errors.append('%s: give vdevs (disks by id, /dev/disk/by-id/...) or a file vdev (file: {path, size})' % where)
        for vdev in pool.get('vdevs') or []:
            if str(vdev).startswith('/dev/') and not str(vdev).startswith('/dev/disk/by-'):
                errors.append('%s: vdev %s is a kernel name that can change at boot; use /dev/disk/by-id/...' % (where, vdev))
        if pool.get('file') and not str(pool['file'].get('path', '')).startswith('/'):
            errors.append('%s: file.path must be an absolute path' % where)
        version = pool.get('version', default_version)
        try:
            version = int(version)
        except (TypeError, ValueError):
            errors.append('%s: version must be a number, got %r' % (where, version))
            version = default_version
        if version > default_version:
            errors.append('%s: version %d is above what %s supports (%d)' % (where, version, platform, default_version))
        versions[name] = version
    for name in existing_pools or []:
        versions.setdefault(name, default_version)

    production = set()
    for entry in datasets:
        name = entry.get('name')
        where = '%s (%s)' % (entry.get('source', 'zfs_datasets'), name)
        problem = _dataset_name_problem(name)
        if problem:
            errors.append('%s: %s' % (where, problem))
            continue
        production.add(name)
        pool = name.split('/')[0]
        if '/' not in name:
            errors.append('%s: a dataset must live inside a pool (pool/name); pools are zfs_pools' % where)
        elif pool not in versions:
            errors.append('%s: the dataset is outside its pool: pool %s is not in zfs_pools (pools: %s)'
                          % (where, pool, ', '.join(sorted(versions)) or 'none'))
        version = versions.get(pool, default_version)
        props = entry.get('properties', {})
        if 'compression' in props:
            needs = _compression_version(props['compression'])
            if needs is None:
                errors.append('%s: compression %s is unknown' % (where, props['compression']))
            elif needs > version:
                allowed = sorted(c for c, v in COMPRESSION_VERSION.items() if v <= version)
                errors.append('%s: compression %s needs pool version %s, but pool %s has version %d (%s); use one of %s'
                              % (where, props['compression'], 'with feature flags (5000)' if needs == FEATURE_FLAGS_VERSION
                                 else needs, pool, version, platform, ', '.join(allowed + ['gzip-1..9'] if version >= 5 else allowed)))
        if 'recordsize' in props:
            size = _size_bytes(props['recordsize'])
            largest = 1024 ** 2 if version >= FEATURE_FLAGS_VERSION else 128 * 1024
            if size is None or size < 512 or size > largest or size & (size - 1):
                errors.append('%s: recordsize %s must be a power of two from 512 to %s'
                              % (where, props['recordsize'], '1M' if largest > 131072 else '128K'))
        if 'quota' in props and not SIZE.match(str(props['quota'])):
            errors.append('%s: quota %s must be a size like 50G, or none' % (where, props['quota']))
        for key in ('atime', 'readonly'):
            if key in props and props[key] not in ('on', 'off'):
                errors.append('%s: %s must be on or off, got %s' % (where, key, props[key]))
        if 'canmount' in props and props['canmount'] not in ('on', 'off', 'noauto'):
            errors.append('%s: canmount must be on, off or noauto, got %s' % (where, props['canmount']))
        mountpoint = props.get('mountpoint')
        if mountpoint is not None and mountpoint not in ('none', 'legacy') and not mountpoint.startswith('/'):
            errors.append('%s: mountpoint %s must be an absolute path, none or legacy' % (where, mountpoint))
        for key in sorted(set(props) & set(unmanageable)):
            errors.append('%s: %s cannot be managed on %s: %s' % (where, key, platform, unmanageable[key]))
        unknown = sorted(set(entry) - set(DATASET_PROPERTIES) - {'name', 'properties', 'source'})
        if unknown:
            errors.append('%s: unknown keys %s (other ZFS properties go in properties:)' % (where, ', '.join(unknown)))

    for index, name in enumerate(destroy or []):
        if name in production:
            errors.append('zfs_destroy[%d] (%s) is also a dataset to keep; remove it from one of the lists' % (index, name))
    errors.extend(zfs_staging_errors(staging or [], sorted(production)))
    return errors


def zfs_staging_errors(staging, production):
    """Problems of staging clone definitions: a staging name must never be (or sit inside) a
    production dataset, and must be in the production dataset's pool (a clone cannot leave it)."""
    errors = []
    production = set(production or [])
    names = set()
    for index, item in enumerate(staging or []):
        where = 'zfs_staging[%d]' % index
        if not isinstance(item, dict) or not item.get('name') or not item.get('production'):
            errors.append('%s must be a dict with name (the staging dataset) and production' % where)
            continue
        name, source = item['name'], item['production']
        where = '%s (%s)' % (where, name)
        for key, value in (('name', name), ('production', source)):
            problem = _dataset_name_problem(value)
            if problem:
                errors.append('%s: %s %s' % (where, key, problem))
        if name == source or name in production:
            errors.append('%s: the staging name %s is a production dataset; a refresh destroys old staging clones, '
                          'so it must be a name of its own' % (where, name))
        elif any(name.startswith(p + '/') for p in production) or source.startswith(name + '/'):
            errors.append('%s: the staging name %s nests with a production dataset; choose a name beside them' % (where, name))
        if source not in production:
            errors.append('%s: production %s is not a dataset of zfs_datasets or zfs_flavors' % (where, source))
        if name.split('/')[0] != source.split('/')[0]:
            errors.append('%s: a clone stays in its origin\'s pool: %s is not in pool %s' % (where, name, source.split('/')[0]))
        path = item.get('path')
        if path is not None and not str(path).startswith('/'):
            errors.append('%s: path %s must be absolute' % (where, path))
        if name in names:
            errors.append('%s: staging name used twice' % where)
        names.add(name)
    return errors


def _count_problem(value):
    if isinstance(value, bool):
        return 'must be a whole number >= 0, got %r' % value
    try:
        number = int(str(value))
    except ValueError:
        return 'must be a whole number >= 0, got %r' % (value,)
    if number < 0:
        return 'must not be negative, got %d' % number
    return None


def sanoid_errors(datasets, templates):
    """Problems of sanoid's templates and per-dataset policies (negative counts, unknown templates)."""
    errors = []
    if not isinstance(templates, dict):
        return ['sanoid_templates must be a dict of template name to policy, got %r' % (templates,)]
    for name, policy in sorted(templates.items()):
        if not UNIT_NAME.match(str(name)):
            errors.append('sanoid_templates.%s: template names are [a-z0-9_-]' % name)
        errors.extend(_policy_errors('sanoid_templates.%s' % name, policy))
    for index, item in enumerate(datasets or []):
        if not isinstance(item, dict) or not item.get('name'):
            errors.append('sanoid_datasets[%d] must be a dict with a name' % index)
            continue
        where = 'sanoid_datasets[%d] (%s)' % (index, item['name'])
        problem = _dataset_name_problem(item['name'])
        if problem:
            errors.append('%s: %s' % (where, problem))
        template = item.get('template')
        if template is not None and template not in templates:
            errors.append('%s: template %s is not in sanoid_templates (%s)' % (where, template, ', '.join(sorted(templates))))
        errors.extend(_policy_errors(where, dict((k, v) for k, v in item.items() if k not in ('name', 'template'))))
    return errors


def _policy_errors(where, policy):
    errors = []
    if not isinstance(policy, dict):
        return ['%s must be a dict of sanoid settings, got %r' % (where, policy)]
    for key, value in sorted(policy.items()):
        if key in SANOID_COUNTS:
            problem = _count_problem(value)
            if problem:
                errors.append('%s.%s %s' % (where, key, problem))
        elif key in SANOID_THRESHOLDS and not re.match(r'^[0-9]+[smhdw]?$', str(value)):
            errors.append('%s.%s must be an age like 90m, 28h or 2d (no sign), got %r' % (where, key, value))
    return errors


def sanoid_value(value):
    """A value as sanoid.conf spells it (yes/no for booleans)."""
    if isinstance(value, bool):
        return 'yes' if value else 'no'
    return str(value)


def syncoid_plan(replications, hostvars=None):
    """The per-dataset syncoid units of a backup host, and every problem of syncoid_replications."""
    units, errors, seen = [], [], set()
    for index, item in enumerate(replications or []):
        where = 'syncoid_replications[%d]' % index
        if not isinstance(item, dict):
            errors.append('%s must be a dict' % where)
            continue
        for key in ('source_host', 'source', 'target'):
            if not item.get(key):
                errors.append('%s: %s is required' % (where, key))
        if errors and not all(item.get(k) for k in ('source_host', 'source', 'target')):
            continue
        where = '%s (%s:%s)' % (where, item['source_host'], item['source'])
        for key in ('source', 'target'):
            problem = _dataset_name_problem(item[key])
            if problem:
                errors.append('%s: %s %s' % (where, key, problem))
        name = item.get('name') or re.sub(r'[^a-z0-9_-]+', '-', ('%s-%s' % (item['source_host'], item['source'])).lower())
        if not UNIT_NAME.match(name):
            errors.append('%s: name %s must be [a-z0-9_-]' % (where, name))
        if name in seen:
            errors.append('%s: unit name syncoid-%s is used twice; give a name' % (where, name))
        seen.add(name)
        if hostvars is not None and item['source_host'] not in hostvars:
            errors.append('%s: source_host %s is not in the inventory' % (where, item['source_host']))
        bwlimit = item.get('bwlimit')
        if bwlimit is not None and not re.match(r'^[0-9]+[kmgt]?$', str(bwlimit)):
            errors.append('%s: bwlimit %s must be a rate like 10m (bytes per second, k/m/g/t suffix)' % (where, bwlimit))
        identifier = item.get('identifier')
        if identifier is not None and not re.match(r'^[A-Za-z0-9_-]+$', str(identifier)):
            errors.append('%s: identifier %s must be [A-Za-z0-9_-]' % (where, identifier))
        unit = dict(item, name=name)
        units.append(unit)
    return {'units': units, 'errors': errors}


def syncoid_sources(hostvars, host, backup_hosts):
    """What host must let the backup hosts read: [{'backup_host', 'datasets', 'key'}] from their
    syncoid_replications (and the public key each generated, syncoid_public_key)."""
    grants = []
    for backup in backup_hosts or []:
        hv = hostvars.get(backup, {})
        datasets = sorted(set(r['source'] for r in hv.get('syncoid_replications') or [] if r.get('source_host') == host))
        if datasets:
            grants.append({'backup_host': backup, 'datasets': datasets, 'key': hv.get('syncoid_public_key')})
    return grants


def syncoid_targets(hostvars, host, backup_hosts, source):
    """Where backup hosts replicate host's dataset source: [{'backup_host', 'target'}]."""
    return [{'backup_host': backup, 'target': r['target']}
            for backup in backup_hosts or []
            for r in hostvars.get(backup, {}).get('syncoid_replications') or []
            if r.get('source_host') == host and r.get('source') == source]


def zpool_create_argv(pool):
    """zpool create's argv for one zfs_pools entry: never -f, no mount of the pool's root."""
    argv = ['zpool', 'create', '-m', 'none']
    if pool.get('version') is not None:
        argv += ['-o', 'version=%s' % pool['version']]
    for key, value in sorted((pool.get('options') or {}).items()):
        argv += ['-o', '%s=%s' % (key, value)]
    vdevs = list(pool.get('vdevs') or [])
    if not vdevs and pool.get('file'):
        vdevs = [pool['file']['path']]
    return argv + [pool['name']] + [str(v) for v in vdevs]


class FilterModule(object):
    def filters(self):
        return {
            'zfs_datasets': zfs_datasets,
            'zfs_errors': zfs_errors,
            'zpool_create_argv': zpool_create_argv,
            'sanoid_errors': sanoid_errors,
            'sanoid_value': sanoid_value,
            'syncoid_plan': syncoid_plan,
            'syncoid_sources': syncoid_sources,
            'syncoid_targets': syncoid_targets,
        }
