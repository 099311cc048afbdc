"""The sweep's Dask settings: real Dask keys, taken up by the clusters they are meant for.

Why these checks: Dask ignores a misspelt key in ``dask.config.set`` and in ``DASK_*`` variables
without a word, so a typo would silently bring the overhead back. Each key must exist in Dask's
own defaults, the environment form must parse back to the same values, and a cluster created
inside ``config_set`` must run its timers at the set intervals (and one created with other values
runs at those: the test can fail).
"""
from __future__ import annotations

import json

import dask
import distributed  # noqa: F401 - loads distributed.yaml into dask.config
import pytest
from dask.utils import parse_timedelta

from accelsim.sweep.dask_settings import SWEEP_DASK_CONFIG, config_set, env, env_name
from tests.cli_helper import cli_in_process


def _same(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return parse_timedelta(a) == parse_timedelta(b)


@pytest.mark.parametrize("key", sorted(SWEEP_DASK_CONFIG))
def test_every_key_is_one_of_dasks_own(key):
    sentinel = object()
    assert dask.config.get(key, default=sentinel) is not sentinel, key


def test_the_environment_form_parses_back_to_the_same_values():
    parsed = dask.config.collect_env(env())
    with dask.config.set(parsed):
        for key, value in SWEEP_DASK_CONFIG.items():
            assert _same(dask.config.get(key), value), (key, dask.config.get(key), value)
    assert env_name("distributed.admin.system-monitor.interval") == "DASK_DISTRIBUTED__ADMIN__SYSTEM_MONITOR__INTERVAL"


def _timers(**cluster_kw):
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None,
                      memory_limit="1GiB", **cluster_kw) as cluster:
        worker = next(iter(cluster.workers.values()))
        return ({k: pc.callback_time for k, pc in cluster.scheduler.periodic_callbacks.items()},
                {k: pc.callback_time for k, pc in worker.periodic_callbacks.items()})


def test_a_cluster_made_inside_config_set_runs_its_timers_at_the_sweep_intervals():
    with config_set():
        scheduler, worker = _timers()
    assert scheduler["tick"] == 1000 and scheduler["monitor"] == 5000
    assert worker["tick"] == 1000 and worker["memory_monitor"] == 1000
    assert "profile" not in worker
    # The control: other values, set explicitly (not Dask's defaults, which a shell that ran
    # `eval "$(accelsim sweep dask-env)"` has already changed), are taken up the same way, so the
    # numbers above come from the settings and not from the cluster.
    with dask.config.set({"distributed.admin.tick.interval": "20ms", "distributed.worker.profile.enabled": True}):
        other_scheduler, other_worker = _timers()
    assert other_scheduler["tick"] == 20 and "profile" in other_worker


def test_cli_prints_the_exports_and_json():
    done = cli_in_process("sweep", "dask-env")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"export {k}={v}" for k, v in env().items()]
    as_json = cli_in_process("sweep", "dask-env", "--json")
    assert as_json.returncode == 0 and json.loads(as_json.stdout) == env()
