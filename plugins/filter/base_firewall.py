# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Firewall filters of the base role (documentation in the .yml file of each filter).

Pure functions of their input - contracts and inventory in, resolved rules and the
preflight's findings out - so the decisions that could cut a running service are
unit-tested without a host.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import json
import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text

RULE_DEFAULTS = {'proto': 'tcp', 'from_groups': [], 'from_cidrs': []}
PROTOCOLS = ('tcp', 'udp')


def _get(hostvars, host):
    try:
        return hostvars[host]
    except KeyError:
        return {}


def _is_ip(value):
    try:
        ipaddress.ip_address(to_text(value))
    except ValueError:
        return False
    return True


def _network(value):
    """'10.0.0.1' -> '10.0.0.1', '10.1.2.3/8' -> '10.0.0.0/8' (nft refuses host bits)."""
    network = ipaddress.ip_network(to_text(value), strict=False)
    if network.prefixlen == network.max_prefixlen:
        return str(network.network_address)
    return str(network)


def host_addresses(host, hostvars):
    """base_firewall_address, else an IP ansible_host, else the default addresses from facts."""
    hv = _get(hostvars, host)
    if hv.get('base_firewall_address'):
        return list(hv['base_firewall_address'])
    if _is_ip(hv.get('ansible_host', '')):
        return [to_text(hv['ansible_host'])]
    facts = hv.get('ansible_facts') or {}
    return [facts[key]['address'] for key in ('default_ipv4', 'default_ipv6')
            if (facts.get(key) or {}).get('address')]


def base_firewall_host_addresses(names, hostvars):
    """Addresses of names that are IP addresses or inventory hosts (by name or ansible_host); others are left out."""
    found = []
    for name in names or []:
        name = to_text(name)
        if _is_ip(name):
            addresses = [name]
        elif name in hostvars:
            addresses = host_addresses(name, hostvars)
        else:
            addresses = []
            for host in hostvars:
                if to_text(_get(hostvars, host).get('ansible_host', '')) == name:
                    addresses = host_addresses(host, hostvars)
                    break
        found.extend(address for address in addresses if address not in found)
    return found


def _members(rule, groups):
    hosts = []
    for group in rule.get('from_groups') or []:
        for host in groups.get(group, []):
            if host not in hosts:
                hosts.append(host)
    return hosts


def base_firewall_allow_list(sources):
    """[[variable name, [rule, ...]], ...] -> the rules with defaults and a 'label' naming their origin."""
    rules = []
    for name, value in sources:
        if not isinstance(value, list):
            raise AnsibleFilterError('%s must be a list of rules, got %s' % (name, type(value).__name__))
        for index, rule in enumerate(value):
            if not isinstance(rule, dict):
                raise AnsibleFilterError('%s[%d] must be a rule (a dict), got %r' % (name, index, rule))
            merged = dict(RULE_DEFAULTS, **rule)
            merged['label'] = '%s[%d] (%s)' % (name, index, rule.get('name', 'no name'))
            rules.append(merged)
    return rules


def base_firewall_unaddressed_hosts(rules, groups, hostvars):
    """Members of the rules' from_groups with no address to put in a rule yet (their facts are needed)."""
    missing = []
    for rule in rules:
        for host in _members(rule, groups):
            if host not in missing and not host_addresses(host, hostvars):
                missing.append(host)
    return missing


def base_firewall_rules(rules, groups, hostvars, host=None):
    """Rules resolved to IPv4 and IPv6 sources; 'self' when host is one of the sources."""
    resolved = []
    for rule in rules:
        sources = [_network(cidr) for cidr in rule.get('from_cidrs') or []]
        members = _members(rule, groups)
        for member in members:
            sources.extend(_network(address) for address in host_addresses(member, hostvars))
        unique = []
        for source in sources:
            if source not in unique:
                unique.append(source)
        resolved.append({
            'name': rule['name'],
            'port': to_text(rule['port']),
            'proto': rule.get('proto', 'tcp'),
            'v4': [s for s in unique if ipaddress.ip_network(s, strict=False).version == 4],
            'v6': [s for s in unique if ipaddress.ip_network(s, strict=False).version == 6],
            'anywhere': not (rule.get('from_cidrs') or rule.get('from_groups')),
            'self': host is not None and host in members,
        })
    return resolved


# ------------------------------------------------------------------ preflight

def _port_range(port):
    low, dummy, high = to_text(port).partition('-')
    return int(low), int(high or low)


def _parse_listeners(ss_output):
    """`ss -Htulpn` lines -> [{proto, port, address, process}] of sockets others could reach."""
    listeners = []
    for line in to_text(ss_output).splitlines():
        fields = line.split()
        if len(fields) < 5 or fields[0] not in PROTOCOLS:
            continue
        address, dummy, port = fields[4].rpartition(':')
        address = address.strip('[]').split('%', 1)[0]
        if not port.isdigit():
            continue
        if address not in ('*', ''):
            try:
                parsed = ipaddress.ip_address(address)
            except ValueError:
                continue
            if getattr(parsed, 'ipv4_mapped', None):
                parsed = parsed.ipv4_mapped
            if parsed.is_loopback:
                continue
        process = ''
        found = re.search(r'users:\(\("([^"]+)"', line)
        if found:
            process = found.group(1)
        listeners.append({'proto': fields[0], 'port': int(port), 'address': address or '*', 'process': process})
    return listeners


def _match_ports(match, l4proto):
    """(proto, low, high) ranges a single nft JSON match names as a destination port."""
    left, right = match.get('left') or {}, match.get('right')
    if match.get('op', '==') not in ('==', 'in'):
        return []
    payload = left.get('payload') or {}
    ct = left.get('ct') or {}
    if payload.get('field') == 'dport' and payload.get('protocol') in PROTOCOLS:
        proto = payload['protocol']
    elif ct.get('key') == 'proto-dst' and l4proto in PROTOCOLS:
        proto = l4proto
    else:
        return []
    values = right['set'] if isinstance(right, dict) and 'set' in right else [right]
    ranges = []
    for value in values:
        if isinstance(value, dict) and 'range' in value:
            ranges.append((proto, int(value['range'][0]), int(value['range'][1])))
        elif isinstance(value, int):
            ranges.append((proto, value, value))
    return ranges


def _live_openings(live):
    """From `nft -j list table`: (ranges an accept rule opens, whether the table has a forward chain)."""
    opened, forward = [], False
    for item in live.get('nftables', []):
        chain = item.get('chain')
        if chain and chain.get('hook') == 'forward':
            forward = True
        rule = item.get('rule')
        if not rule or not any('accept' in expr for expr in rule.get('expr', [])):
            continue
        l4proto, ports = None, []
        for expr in rule['expr']:
            match = expr.get('match')
            if not match:
                continue
            if (match.get('left') or {}).get('meta', {}).get('key') == 'l4proto':
                l4proto = match.get('right')
            ports.extend(_match_ports(match, l4proto))
        opened.extend(ports)
    return opened, forward


def _parse_acknowledged(entries):
    acknowledged = []
    for entry in entries or []:
        port, dummy, proto = to_text(entry).partition('/')
        try:
            low, high = _port_range(port)
        except ValueError:
            raise AnsibleFilterError('base_firewall_close_ports: %r is not PORT, PORT/tcp or PORT/udp' % entry)
        if proto and proto not in PROTOCOLS:
            raise AnsibleFilterError('base_firewall_close_ports: %r is not PORT, PORT/tcp or PORT/udp' % entry)
        for each in ([proto] if proto else PROTOCOLS):
            acknowledged.append((each, low, high))
    return acknowledged


def _covers(ranges, proto, port):
    return any(p == proto and low <= port <= high for p, low, high in ranges)


def base_firewall_closed_ports(ss_output, rules, ssh_port=22, live_table='', acknowledged=None):
    """Ports listening and reachable today that the new ruleset would close, none acknowledged.

    ss_output: `ss -Htulpn` on the host. rules: the new allow rules (port, proto).
    live_table: `nft -j list table inet <table>` of the loaded table ('' when none is loaded:
    a first switch, where every listener is reachable today). acknowledged: the
    base_firewall_close_ports entries.
    """
    wanted = [('tcp', int(ssh_port), int(ssh_port))]
    for rule in rules:
        low, high = _port_range(rule['port'])
        wanted.append((rule.get('proto', 'tcp'), low, high))
    acknowledged = _parse_acknowledged(acknowledged)
    live = None
    if live_table and to_text(live_table).strip():
        live = live_table if isinstance(live_table, dict) else json.loads(to_text(live_table))
    opened, has_forward = _live_openings(live) if live is not None else ([], False)
    closed = {}
    for listener in _parse_listeners(ss_output):
        proto, port = listener['proto'], listener['port']
        if _covers(wanted, proto, port) or _covers(acknowledged, proto, port):
            continue
        if live is not None and not _covers(opened, proto, port):
            # Dropped by the loaded table already - unless Docker publishes it and the loaded
            # table (an older one) has no forward chain: then it is open today.
            if not (listener['process'] == 'docker-proxy' and not has_forward):
                continue
        key = '%d/%s' % (port, proto)
        entry = closed.setdefault(key, {'port': port, 'proto': proto, 'addresses': [], 'processes': []})
        if listener['address'] not in entry['addresses']:
            entry['addresses'].append(listener['address'])
        if listener['process'] and listener['process'] not in entry['processes']:
            entry['processes'].append(listener['process'])
    return [closed[key] for key in sorted(closed, key=lambda k: (closed[k]['port'], closed[k]['proto']))]


class FilterModule(object):
    def filters(self):
        return {
            'base_firewall_allow_list': base_firewall_allow_list,
            'base_firewall_closed_ports': base_firewall_closed_ports,
            'base_firewall_host_addresses': base_firewall_host_addresses,
            'base_firewall_rules': base_firewall_rules,
            'base_firewall_unaddressed_hosts': base_firewall_unaddressed_hosts,
        }
