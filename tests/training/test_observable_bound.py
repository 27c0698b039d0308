"""bench/bench_observable_posterior.py re-derives the generator's p_non_merit with the hidden
favours integrated out; with every favour taken as seen it must give the generator's own
p_non_merit back, or its bound measures some other mechanism."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from training.synthetic.selection import GRANTED

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_observable_posterior.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_observable_posterior", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("mechanism", ["additive", "separate"])
def test_the_bound_rederives_the_generators_posterior(bench, mechanism):
    grants, sim = bench.record_decisions(3_000, 5, mechanism)
    interference = bench.selection_interference(sim)
    q_conn = bench.connection_prior(sim, 5)
    # A posterior of the ties averages to their prior share, and is higher for firms with ties.
    assert ((q_conn >= 0) & (q_conn <= 1)).all()
    assert abs(q_conn.mean() - bench.CONNECTED_SHARE) < 0.015
    assert q_conn[sim.firms.connections > 0].mean() > 1.5 * q_conn[sim.firms.connections == 0].mean()
    rng = np.random.default_rng(0)
    granted = sim.events.event == GRANTED
    hidden_oracle, hidden_bound, checked = [], [], 0
    for tier, year, call in grants:
        idx = np.flatnonzero(call["eligible"])
        chosen = idx[call["out"][0][idx]]
        if not len(chosen):
            continue
        # The decisions recorded are the grants the generator logged.
        logged = granted & (sim.events.tier == tier) & (sim.events.year == year)
        assert np.array_equal(np.sort(sim.events.firm[logged]), chosen)
        oracle = call["out"][3][chosen]
        seen = bench.bound_posterior(call, interference[sim.firms.province], q_conn,
                                     bench.HIDDEN_SCALE[tier], mechanism, rng,
                                     hidden_known=True)[0]
        np.testing.assert_allclose(seen, oracle, atol=1e-5)
        bound, alone = bench.bound_posterior(call, interference[sim.firms.province], q_conn,
                                             bench.HIDDEN_SCALE[tier], mechanism, rng)
        assert ((bound >= 0) & (bound <= 1)).all()
        # The chance on merit alone is the generator's: its p_non_merit is 1 - that chance
        # over the chance of selection, under either mechanism.
        np.testing.assert_allclose(oracle, 1 - alone / call["out"][2][chosen], atol=1e-5)
        hidden = np.isin(bench.CHANNELS[call["out"][1][chosen]], ["provincial", "lenient"])
        hidden_oracle.append(oracle[hidden])
        hidden_bound.append(bound[hidden])
        checked += len(chosen)
    assert checked > 300
    # What no table records, the bound cannot see: the selections carried by a hidden
    # favour look less anomalous to it than to the oracle.
    assert np.concatenate(hidden_bound).mean() < np.concatenate(hidden_oracle).mean()
