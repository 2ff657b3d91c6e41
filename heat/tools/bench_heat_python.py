"""Heat's own Python parse + validate of the corpus, for BENCHMARKS.md.

Runs stock OpenStack Heat's validation in-process (no HTTP, no RPC):
`EngineService.validate_template`, the code behind `POST /validate`, which
parses the template (PyYAML), builds the environment, the parameters, the
resource definitions and dependencies, and validates them. Each template
gets the same `files` and environment as in the Rust benchmark, with the
types this Keystone-less Heat lacks mapped to OS::Heat::None.

    ~/.cache/occi-so/heat/venv/bin/python heat/tools/bench_heat_python.py \
        CASES.json [ROUNDS]

CASES.json is written by the Rust benchmark (`cargo bench -p heat`) as
target/heat-bench-cases.json: [{"name", "template", "environment", "files"}].
"""
import json
import sys
import time

from oslo_config import cfg

cfg.CONF([], project='heat')


from heat.common import config  # noqa: E402,F401
from heat.common import context  # noqa: E402
from heat.common import template_format  # noqa: E402
from heat.engine import resources  # noqa: E402
from heat.engine import service  # noqa: E402
from heat.engine import environment as env_mod  # noqa: E402

resources.initialise()
cases = json.load(open(sys.argv[1]))
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5

ctx = context.RequestContext(is_admin=True, project_id='admin', user_id='admin')
engine = service.EngineService('localhost', 'engine')

available = set(env_mod.Environment().get_types(ctx))
known = set(env_mod.Environment().get_types())


def used_types(v, out):
    if isinstance(v, dict):
        for k, x in v.items():
            if k == 'type' and isinstance(x, str) and '::' in x:
                out.add(x)
            used_types(x, out)
    elif isinstance(v, list):
        for x in v:
            used_types(x, out)


def with_stubs(c):
    """Map the types this Keystone-less Heat lacks to OS::Heat::None."""
    from heat.common import template_format
    used = set()
    for text in [c['template']] + list(c['files'].values()):
        try:
            used_types(template_format.simple_parse(text), used)
        except Exception:
            pass
    env = json.loads(json.dumps(c['environment']))
    rr = env.setdefault('resource_registry', {})
    used |= {v for v in rr.values() if isinstance(v, str) and '::' in v}
    for t in sorted(used):
        if t not in available and t not in rr:
            rr[t] = 'OS::Heat::None'
    return dict(c, environment=env)


cases = [with_stubs(c) for c in cases]


failures = []


def run_once(first_round=False):
    ok = 0
    for c in cases:
        tpl = template_format.parse(c['template'])
        r = engine.validate_template(ctx, tpl, c['environment'], files=c['files'])
        if isinstance(r, dict) and 'Error' not in r:
            ok += 1
        elif first_round:
            failures.append((c['name'], str(r)[:200]))
    return ok


ok = run_once(True)  # warm up (imports, plugin loading)
for name, why in failures:
    print('rejected by Heat:', name, why, file=sys.stderr)
best = None
for _ in range(rounds):
    t0 = time.perf_counter()
    run_once()
    dt = time.perf_counter() - t0
    best = dt if best is None else min(best, dt)
print(json.dumps({
    'templates': len(cases),
    'valid': ok,
    'best_seconds_per_corpus': best,
    'templates_per_second': len(cases) / best,
    'microseconds_per_template': best / len(cases) * 1e6,
}))
