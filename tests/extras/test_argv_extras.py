"""The new step arguments round-trip through build_step_args → parse_step_args (pure, table-driven)."""

from __future__ import annotations

import pytest

from kedro_vertex_ci.argv import build_step_args, parse_config_providers, parse_host_alias, parse_step_args
from kedro_vertex_ci.model import ConfigProvider, HostAlias, Plan, Step

STEP = Step(name="s", nodes=("n",))


def _plan(**fields) -> Plan:
    return Plan(pipeline_name="p", kedro_pipeline="__default__", image="i", env="", steps=(STEP,), resources={},
                params=(), **fields)


@pytest.mark.parametrize(
    "providers",
    [
        (),
        (ConfigProvider("a.B"),),
        (
            ConfigProvider("pkg.mod.Tok", {"client_id": "x y 'z' \"q\" $HOME `id`", "n": 3, "nested": {"ü": [1]}}),
            ConfigProvider("pkg.mod.Other", {}),
        ),
    ],
)
@pytest.mark.parametrize(
    "aliases",
    [(), (HostAlias("10.0.0.1", ("a.internal",)),), (HostAlias("fd00::1", ("a", "b.c")), HostAlias("1.2.3.4", ("d",)))],
)
def test_host_aliases_and_providers_round_trip(providers, aliases):
    args = build_step_args(_plan(host_aliases=aliases, config_providers=providers), STEP)
    assert args.count("--dynamic-config") == (1 if providers else 0)
    inv = parse_step_args(args)
    assert inv.host_aliases == aliases
    assert [(p.cls, dict(p.params)) for p in inv.config_providers] == [(p.cls, dict(p.params)) for p in providers]


def test_provider_json_is_deterministic():
    plan = _plan(config_providers=(ConfigProvider("a.B", {"z": 1, "a": 2}),))
    assert build_step_args(plan, STEP)[-1] == '[{"cls":"a.B","params":{"a":2,"z":1}}]'


@pytest.mark.parametrize("bad", ["10.0.0.1", "10.0.0.1=", "=host"])
def test_bad_host_alias_argument(bad):
    with pytest.raises(ValueError):
        parse_host_alias(bad)


@pytest.mark.parametrize("bad", ["{", "{}", '[{"params": {}}]', '[{"cls": "a.B", "params": []}]'])
def test_bad_dynamic_config_argument(bad):
    with pytest.raises(ValueError):
        parse_config_providers(bad)
