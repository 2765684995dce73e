"""base's drift engine cannot skip a task silently.

Every task guarded by the snapshot (`when: X in base_drift.<kind>`, or a loop filtered by it)
must guard the very target it writes, and that target must be in what files/probe.py is asked
to read (base__probe_request): a target missing from the request would read as "missing"
forever, or a guard naming another path would hide a real change. Read from the role's YAML,
so a new task that breaks the rule fails here before any host sees it.
"""
import os
import re

import pytest
import yaml

ROLE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), 'roles', 'base')
VARS = yaml.safe_load(open(os.path.join(ROLE, 'vars', 'main.yml')))
MODULE_TARGET = {'ansible.builtin.template': 'dest', 'ansible.builtin.copy': 'dest', 'ansible.builtin.file': 'path',
                 'ansible.builtin.systemd_service': 'name', 'ansible.builtin.lineinfile': 'path'}
# Loops the engine filters, and the item key each one's target comes from.
LOOP_SOURCES = {'base__files': 'dest', 'base__dirs': 'path', 'base__opt_dirs': 'path', 'base__groups': 'name',
                'base__admin_users': 'name', 'base__present_admins': 'name', 'base__login_defs': 'key',
                'base_sysctl_settings': 'key'}
SCALAR_SOURCES = {'packages': 'base_drift.packages', 'holds': 'base_drift.holds', 'host_keys': 'base_drift.host_keys'}


def resolve(value):
    """'{{ base__x }}' -> the value of base__x in vars/main.yml (one level), else the value itself."""
    found = re.fullmatch(r'\{\{\s*(base__\w+)\s*\}\}', str(value).strip())
    return VARS[found.group(1)] if found else value


def tasks():
    found = []
    for name in sorted(os.listdir(os.path.join(ROLE, 'tasks'))):
        for task in yaml.safe_load(open(os.path.join(ROLE, 'tasks', name))) or []:
            text = yaml.safe_dump(task)
            if 'base_drift' in text and 'ansible.builtin.set_fact' not in task:
                found.append(pytest.param(task, id='%s: %s' % (name, task['name'])))
    return found


def module_of(task):
    return next(key for key in task if key.startswith('ansible.'))


REQUEST_PATHS = ({resolve(f['dest']) for f in VARS['base__files_all']}
                 | {resolve(d['path']) for d in VARS['base__dirs_all']}
                 | {resolve(VARS['base__firewall_applied']), resolve(VARS['base__sshd_applied'])})
SERVICES = {s['name'] for s in VARS['base__services_all']}


def test_request_asks_for_every_managed_path_and_service():
    request = VARS['base__probe_request']
    for source in ('base__files_all', 'base__dirs', 'base__opt_dirs', 'base__firewall_applied', 'base__sshd_applied'):
        assert source in request['paths']
    assert request['services'] == '{{ base__services }}'
    assert 'base__services_all' in VARS['base__services']


@pytest.mark.parametrize('task', tasks())
def test_every_guarded_task_guards_its_own_target(task):
    module = module_of(task)
    args = task[module] if isinstance(task[module], dict) else {}
    conditions = task.get('when', [])
    conditions = [conditions] if isinstance(conditions, str) else conditions
    guarded = [c for c in conditions if 'base_drift' in str(c)]
    loop = str(task.get('loop', ''))
    assert guarded or 'base_drift' in loop, 'base_drift used outside `when`/`loop`: %s' % task['name']
    for condition in guarded:
        if re.fullmatch(r'base_drift\.packages \| length > 0( or .*)?', condition):
            # apt installs base__packages_wanted whole; the engine compares that very list.
            assert args['name'] == '{{ base__packages_wanted }}'
            assert 'base__packages_wanted' in VARS['base__drift_json']
            continue
        found = re.search(r"(?:'([^']+)'|(base__\w+))\s+in\s+base_drift\.(\w+)", condition)
        assert found, 'unrecognised guard %r in %s' % (condition, task['name'])
        target = found.group(1) or resolve('{{ %s }}' % found.group(2))
        kind = found.group(3)
        assert kind in ('paths', 'services'), 'unrecognised guard %r in %s' % (condition, task['name'])
        wanted = REQUEST_PATHS if kind == 'paths' else SERVICES
        assert target in wanted, '%s guards on %s, which the probe is never asked for' % (task['name'], target)
        written = resolve(args.get(MODULE_TARGET.get(module, 'dest'), ''))
        if kind == 'paths' and module not in ('ansible.builtin.file', 'ansible.builtin.debug'):
            assert written == target, '%s writes %s but is guarded by %s' % (task['name'], written, target)
        if kind == 'services':
            assert args.get('name') == target, '%s manages %s but is guarded by %s' % (task['name'], args.get('name'), target)
    if 'base_drift' in loop:
        source = re.match(r'\{\{\s*(\w+)', loop)
        drift = re.search(r"base_drift(?:\.(\w+)|\['(\w+)'\])", loop)
        kind = drift.group(1) or drift.group(2)
        if kind in SCALAR_SOURCES:
            assert loop.strip() == '{{ %s }}' % SCALAR_SOURCES[kind]
            return
        assert source and source.group(1) in LOOP_SOURCES, 'unrecognised loop %r in %s' % (loop, task['name'])
        key = LOOP_SOURCES[source.group(1)]
        assert re.search(r"selectattr\('%s', 'in', base_drift" % key, loop), (
            '%s filters %s on something other than item.%s' % (task['name'], source.group(1), key))


# ------------------------------------------------------------------ the skip of the apply steps
# main.yml skips tasks/apply.yml in one step where base__pending is false. That is only safe if
# every task there can act on nothing else: a guard that reads the drift, a decision that
# base__pending names, or the result of another apply task (a follow-up of a guarded change).

def apply_tasks():
    found = []

    def walk(name):
        for task in yaml.safe_load(open(os.path.join(ROLE, 'tasks', name))) or []:
            for key in ('ansible.builtin.import_tasks', 'ansible.builtin.include_tasks'):
                if key in task:
                    walk(task[key])
                    break
            else:
                for child in task.get('block', []) + task.get('always', []) + task.get('rescue', []):
                    found.append((name, child))
                if 'block' not in task:
                    found.append((name, task))
    walk('apply.yml')
    return found


PENDING = VARS['base__pending']
REGISTERED = {task.get('register') for name, task in apply_tasks()} - {None}
READ_ONLY = {'ansible.builtin.debug', 'ansible.builtin.assert', 'ansible.builtin.set_fact'}


def test_the_pending_decision_reads_every_kind_of_drift():
    # Every kind counts through dict2items but sysctl, which counts only where it is applied.
    assert "base_drift | dict2items | rejectattr('key', 'equalto', 'sysctl') | selectattr('value')" in PENDING
    assert re.search(r'base_sysctl_enabled and not base_in_container\s+and base_drift\.sysctl', PENDING)


@pytest.mark.parametrize('name,task', [pytest.param(n, t, id='%s: %s' % (n, t['name'])) for n, t in apply_tasks()])
def test_every_apply_task_acts_only_on_what_base_pending_sees(name, task):
    module = module_of(task)
    if module in READ_ONLY or task.get('changed_when') is False:
        return
    guard = yaml.safe_dump({'when': task.get('when'), 'loop': task.get('loop')})
    if 'base_drift' in guard:
        return
    # base__sshd_reload is the drop-in's or host keys' change (follow-ups) or base__sshd_applied_stale.
    named = set(re.findall(r'\b(base__\w+)\b', PENDING)) | {'base__sshd_reload'}
    decisions = set(re.findall(r'\b(base__\w+)\b', guard))
    follow_ups = set(re.findall(r'\b(base_\w+) is changed', guard)) & REGISTERED
    assert decisions <= named, '%s: "%s" acts on %s, which base__pending does not read' % (
        name, task['name'], ', '.join(sorted(decisions - named)))
    assert decisions or follow_ups, (
        '%s: "%s" is guarded by neither the drift, a decision base__pending names, nor an earlier apply '
        'task\'s change; main.yml would skip it on a host where only this differs' % (name, task['name']))
