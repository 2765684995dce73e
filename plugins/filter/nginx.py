# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""nginx sites and rate-limit zones from inventory data (documentation in nginx_plan.yml)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible.module_utils.six import string_types

from ansible_collections.commons.infra.plugins.filter.haproxy import bind_problem, claimed_twice, dict_items, named_items, repeated

# nginx's limit_req_zone rate: requests per second or per minute.
RATE_RE = re.compile(r'^([1-9][0-9]*)r/(s|m)$')
SIZE_RE = re.compile(r'^[1-9][0-9]*[kmKM]?$')
SERVER_NAME_RE = re.compile(r'^(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$|^_$')
LOCATION_RE = re.compile(r'^(=\s*)?/[^\s{};]*$')
SITE_KEYS = {'name', 'server_names', 'http_port', 'https_port', 'tls', 'tls_mode', 'redirect_http', 'upstream',
             'locations', 'includes', 'client_max_body_size', 'default_server'}
LOCATION_KEYS = {'path', 'proxy', 'root', 'limit', 'auth_basic_user_file', 'includes'}
LIMIT_KEYS = {'zone', 'burst', 'nodelay'}
ZONE_KEYS = {'name', 'rate', 'size', 'key'}
TLS_MODES = ('selfsigned', 'acme')


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _port(value):
    return value if _is_int(value) and 1 <= value <= 65535 else None


def parse_rate(rate):
    """'180r/m' -> requests per second (3.0); None when it does not parse."""
    match = RATE_RE.match(rate) if isinstance(rate, string_types) else None
    if not match:
        return None
    return int(match.group(1)) / (1.0 if match.group(2) == 's' else 60.0)


def _zones(zones, errors):
    result = []
    for where, zone in named_items('nginx_rate_zones', zones, ZONE_KEYS, errors):
        if parse_rate(zone.get('rate')) is None:
            errors.append('%s.rate must be a rate like 1r/s or 180r/m, got %r' % (where, zone.get('rate')))
        size = zone.get('size', '10m')
        if not SIZE_RE.match(str(size)):
            errors.append('%s.size must be a size like 10m, got %r' % (where, size))
        key = zone.get('key', '$binary_remote_addr')
        if not isinstance(key, string_types) or not key.startswith('$') or any(c.isspace() or c in ';{}' for c in key):
            errors.append('%s.key must be an nginx variable like $binary_remote_addr, got %r' % (where, key))
        result.append({'name': zone['name'], 'rate': zone.get('rate'), 'size': str(size), 'key': key})
    for name in repeated([z['name'] for z in result]):
        errors.append('nginx_rate_zones: name %r appears twice' % name)
    return result


def _locations(where, locations, zones, has_upstream, errors):
    result = []
    if locations is None:
        locations = [{'path': '/', 'proxy': True}] if has_upstream else []
    for lwhere, location in dict_items(where + '.locations', locations, LOCATION_KEYS, errors):
        path = location.get('path')
        if not isinstance(path, string_types) or not LOCATION_RE.match(path):
            errors.append('%s.path must be a prefix like /api/ (or "= /exact"), got %r' % (lwhere, path))
            continue
        root = location.get('root')
        proxy = location.get('proxy', root is None)
        if proxy and root is not None:
            errors.append('%s: a location either proxies or serves a root, not both' % lwhere)
        if proxy and not has_upstream:
            errors.append('%s proxies, but the site has no upstream' % lwhere)
        if root is not None and (not isinstance(root, string_types) or not root.startswith('/') or '..' in root
                                 or any(c.isspace() or c in ';{}' for c in root)):
            errors.append('%s.root must be an absolute directory, got %r' % (lwhere, root))
        limit = location.get('limit')
        if limit is not None:
            if not isinstance(limit, dict) or limit.get('zone') not in zones:
                errors.append('%s.limit.zone must name a zone of nginx_rate_zones (%s), got %r' % (
                    lwhere, ', '.join(sorted(zones)) or 'none defined', limit.get('zone') if isinstance(limit, dict) else limit))
                limit = None
            else:
                unknown = sorted(set(limit) - LIMIT_KEYS)
                if unknown:
                    errors.append('%s.limit has unknown keys: %s' % (lwhere, ', '.join(unknown)))
                burst = limit.get('burst', 0)
                if not (_is_int(burst) and burst >= 0):
                    errors.append('%s.limit.burst must be a whole number >= 0, got %r' % (lwhere, burst))
                limit = {'zone': limit['zone'], 'burst': burst, 'nodelay': bool(limit.get('nodelay', True))}
        result.append({'path': path, 'proxy': bool(proxy), 'root': root, 'limit': limit,
                       'auth_basic_user_file': location.get('auth_basic_user_file'),
                       'includes': list(location.get('includes') or [])})
    for path in repeated([loc['path'] for loc in result]):
        errors.append('%s.locations: path %r appears twice' % (where, path))
    return result


def nginx_plan(sites, zones, tls_mode='selfsigned', acme_email=''):
    """Checked and filled-in sites and zones: {'sites', 'zones', 'errors'}."""
    errors = []
    plan_zones = _zones(zones if zones is not None else [], errors)
    zone_names = set(z['name'] for z in plan_zones)
    plan = {'sites': [], 'zones': plan_zones, 'errors': errors}
    if tls_mode not in TLS_MODES:
        errors.append('nginx_tls_mode must be one of %s, got %r' % (', '.join(TLS_MODES), tls_mode))
    claims = {}
    for where, site in named_items('nginx_sites', sites, SITE_KEYS, errors):
        names = site.get('server_names')
        if not isinstance(names, list) or not names or not all(isinstance(n, string_types) and SERVER_NAME_RE.match(n) for n in names):
            errors.append('%s.server_names must list host names, got %r' % (where, names))
            names = []
        tls = bool(site.get('tls', True))
        mode = site.get('tls_mode', tls_mode)
        if mode not in TLS_MODES:
            errors.append('%s.tls_mode must be one of %s, got %r' % (where, ', '.join(TLS_MODES), mode))
        if tls and mode == 'acme' and not acme_email:
            errors.append('%s uses ACME: nginx_acme_email must be set' % where)
        http_port = site.get('http_port', 80)
        https_port = site.get('https_port', 443)
        for key, value in (('http_port', http_port), ('https_port', https_port)):
            if _port(value) is None:
                errors.append('%s.%s must be a port 1-65535, got %r' % (where, key, value))
        upstream = site.get('upstream')
        if upstream is not None:
            if isinstance(upstream, string_types):
                upstream = [upstream]
            if not isinstance(upstream, list) or not upstream:
                errors.append('%s.upstream must list "address:port" servers, got %r' % (where, upstream))
                upstream = None
            else:
                for server in upstream:
                    problem = bind_problem(server)
                    if problem is None and str(server).rpartition(':')[0].strip('[]') in ('', '*'):
                        problem = 'must name an address, got %r' % (server,)
                    if problem:
                        errors.append('%s.upstream %s' % (where, problem))
        ports = [p for p in ((http_port, https_port) if tls else (http_port,)) if _port(p)]
        for name in names:
            for port in ports:
                claims.setdefault((name.lower(), port), []).append(site['name'])
        plan['sites'].append({
            'name': site['name'], 'server_names': names, 'tls': tls, 'tls_mode': mode,
            'http_port': http_port, 'https_port': https_port, 'redirect_http': bool(site.get('redirect_http', tls)),
            'upstream': upstream, 'locations': _locations(where, site.get('locations'), zone_names, upstream is not None, errors),
            'includes': list(site.get('includes') or []), 'client_max_body_size': site.get('client_max_body_size', '10m'),
            'default_server': bool(site.get('default_server', False)),
        })
    for (name, port), owners in claimed_twice(claims):
        errors.append('nginx_sites: server name %s on port %d is claimed by %s' % (name, port, ', '.join(owners)))
    for name in repeated([s['name'] for s in plan['sites']]):
        errors.append('nginx_sites: name %r appears twice' % name)
    defaults = {}
    for site in plan['sites']:
        if site['default_server']:
            for port in (site['http_port'], site['https_port']) if site['tls'] else (site['http_port'],):
                defaults.setdefault(port, []).append(site['name'])
    for port, owners in claimed_twice(defaults):
        errors.append('nginx_sites: default_server on port %d claimed by %s' % (port, ', '.join(owners)))
    return plan


class FilterModule(object):
    def filters(self):
        return {'nginx_plan': nginx_plan}
