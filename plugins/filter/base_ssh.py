# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ssh filters of the base role's lock-out guard (documentation in the .yml file of each filter)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import hashlib
import re
import shlex
import struct

from ansible.module_utils.common.text.converters import to_bytes, to_text

SSH_ARG_VARIABLES = ('ansible_ssh_common_args', 'ansible_ssh_extra_args', 'ansible_ssh_args')


def _fingerprint(line):
    """'SHA256:...' of an authorized_keys line (options allowed before the type), or None."""
    words = to_text(line).split()
    for kind, blob in zip(words, words[1:]):
        try:
            raw = base64.b64decode(to_bytes(blob), validate=True)
        except (binascii.Error, ValueError):
            continue
        if len(raw) < 4:
            continue
        length = struct.unpack('>I', raw[:4])[0]
        if raw[4:4 + length] != to_bytes(kind):
            continue
        digest = base64.b64encode(hashlib.sha256(raw).digest()).rstrip(b'=')
        return 'SHA256:' + to_text(digest)
    return None


def base_ssh_key_fingerprints(keys):
    """SHA256 fingerprints (as ssh-keygen -l prints them) of authorized_keys lines; unparsable lines are left out."""
    found = []
    for line in keys or []:
        fingerprint = _fingerprint(line)
        if fingerprint and fingerprint not in found:
            found.append(fingerprint)
    return found


def _jump_specs(args):
    """Hosts named by -J / ProxyJump / a ProxyCommand 'ssh -W ... host' in ssh arguments."""
    try:
        words = shlex.split(to_text(args))
    except ValueError:
        words = to_text(args).split()
    specs = []
    for index, word in enumerate(words):
        following = words[index + 1] if index + 1 < len(words) else ''
        if word == '-J':
            specs.extend(following.split(','))
        elif word.startswith('-J') and len(word) > 2:
            specs.extend(word[2:].split(','))
        option = word[2:] if word.startswith('-o') and len(word) > 2 else (following if word == '-o' else '')
        key, dummy, value = option.partition('=')
        if key.lower() == 'proxyjump' and value.lower() != 'none':
            specs.extend(value.split(','))
        elif key.lower() == 'proxycommand':
            command = value.split()
            if '-W' in command and command[-1] != command[command.index('-W') + 1]:
                specs.append(command[-1])
    hosts = []
    for spec in specs:
        spec = re.sub(r'^ssh://', '', spec.strip())
        host = spec.rsplit('@', 1)[-1]
        host = host[1:].split(']', 1)[0] if host.startswith('[') else host.split(':', 1)[0]
        if host and host not in hosts:
            hosts.append(host)
    return hosts


def base_ssh_jump_hosts(host_vars):
    """The hosts a host's ssh connection jumps through, from its ansible_ssh_*_args."""
    hosts = []
    for name in SSH_ARG_VARIABLES:
        for host in _jump_specs(host_vars.get(name) or ''):
            if host not in hosts:
                hosts.append(host)
    return hosts


def base_ssh_jump_clients(names, hostvars, hosts):
    """Of `hosts`, those whose ssh connection jumps through one of `names` (this host's names)."""
    names = [to_text(name) for name in names if name]
    clients = []
    for host in hosts:
        if host in names:
            continue
        try:
            host_vars = hostvars[host]
        except KeyError:
            continue
        if any(jump in names for jump in base_ssh_jump_hosts(host_vars)):
            clients.append(host)
    return clients


class FilterModule(object):
    def filters(self):
        return {
            'base_ssh_jump_clients': base_ssh_jump_clients,
            'base_ssh_jump_hosts': base_ssh_jump_hosts,
            'base_ssh_key_fingerprints': base_ssh_key_fingerprints,
        }
