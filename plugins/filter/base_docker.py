# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Docker filters of the base role (documentation in the .yml file of each filter)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# daemon.json keys dockerd applies on SIGHUP (systemctl reload docker); any other
# key only takes effect when dockerd restarts. From Docker's "Configuration reload
# behavior" (dockerd reference).
RELOADABLE = frozenset([
    'authorization-plugins', 'builder', 'debug', 'default-runtime', 'features', 'insecure-registries',
    'labels', 'live-restore', 'max-concurrent-downloads', 'max-concurrent-uploads',
    'max-download-attempts', 'registry-mirrors', 'runtimes', 'shutdown-timeout',
])

# Docker's own packages, and the Debian packages that would replace them.
UPSTREAM = {
    'docker-ce': ['docker.io', 'containerd', 'runc'],
    'containerd.io': ['containerd', 'runc'],
    'docker-compose-plugin': ['docker-compose'],
}


def base_docker_restart_keys(old, new):
    """daemon.json keys added, removed or changed between old and new that need a dockerd restart."""
    old, new = old or {}, new or {}
    changed = [key for key in set(old) | set(new) if old.get(key) != new.get(key)]
    return sorted(key for key in changed if key not in RELOADABLE)


def base_docker_packages(wanted, installed):
    """wanted without the Debian packages that would replace Docker's own ones already installed."""
    replaced = set()
    for package in installed or []:
        replaced.update(UPSTREAM.get(package, []))
    return [name for name in wanted if name.partition('=')[0] not in replaced]


class FilterModule(object):
    def filters(self):
        return {
            'base_docker_packages': base_docker_packages,
            'base_docker_restart_keys': base_docker_restart_keys,
        }
