"""Dump the resource types a stock OpenStack Heat knows, as data.

Run with the local Heat venv (scripts/heat-local.sh installs it):

    ~/.cache/occi-so/heat/venv/bin/python heat/tools/heat_resource_types.py \
        > heat/data/heat-resource-types.json

For every type registered in Heat's global environment it writes the property
names (with type, `required`, `update_allowed`, `allow_conversion`) and the
attribute names, and the aliases of Heat's default global environment.
The `heat` crate embeds the result as `ResourceTypes::heat()`: the types a
full OpenStack cloud's Heat accepts (hidden, retired ones included, with
their support status: Heat still accepts them in templates).
"""
import json
import sys

from oslo_config import cfg

cfg.CONF([], project='heat')

from heat.engine import resources  # noqa: E402
from heat.engine import environment  # noqa: E402
from heat.engine.resources.openstack.heat import none_resource  # noqa: E402

resources.initialise()
env = resources.global_env()

out = {}
for name, info in sorted(env.registry._registry.items()):
    if not isinstance(info, environment.ClassResourceInfo):
        continue
    cls = info.value
    # Hidden (retired) types stay: Heat still accepts them in templates.
    status = cls.support_status.status
    # OS::Heat::None and the retired types built on it take any property
    # and any attribute: written as null.
    if issubclass(cls, none_resource.NoneResource):
        out[name] = {'properties': None, 'attributes': None, 'status': status}
        continue
    props = {}
    for pname, schema in sorted(cls.properties_schema.items()):
        if isinstance(schema, dict):
            continue
        props[pname] = {
            'type': schema.type.lower(),
            'required': bool(schema.required),
            'update_allowed': bool(schema.update_allowed),
            'allow_conversion': bool(getattr(schema, 'allow_conversion', False)),
        }
    attrs = sorted(set(cls.attributes_schema) | set(cls.base_attributes_schema))
    out[name] = {
        'properties': props,
        'attributes': attrs,
        'status': status,
    }

# The aliases every stock Heat loads from its global environment
# (etc/heat/environment.d/default.yaml: OS::Ceilometer::Alarm ->
# OS::Aodh::Alarm, OS::Quantum* -> OS::Neutron*, ...).
import glob  # noqa: E402
import os  # noqa: E402

import yaml  # noqa: E402

global_registry = {}
env_dir = os.path.join(sys.prefix, 'etc', 'heat', 'environment.d')
for path in sorted(glob.glob(os.path.join(env_dir, '*.yaml'))):
    with open(path) as f:
        global_registry.update((yaml.safe_load(f) or {}).get('resource_registry', {}))

json.dump({'heat_version': __import__('heat.version').version.version_info.version_string(),
           'global_resource_registry': global_registry,
           'resource_types': out}, sys.stdout, indent=1, sort_keys=True)
sys.stdout.write('\n')
