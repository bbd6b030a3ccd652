"""Route-churn benchmark harness: evpn-speaker against FRR 8.4, same topology, same injector, same run.

Run (root)::

    .venv/bin/python -m benchmarks.churn [bulk|moves|churn|restart|all ...] [--targets native,exabgp,frr]
        [--sizes 1000 10000 50000 100000] [--repeats 3] [--moves 20] [--move-rate 2] [--ping-interval 0.01]
        [--rates 250 500 1000 2000 5000 10000 20000 40000] [--duration 5] [--preload 10000] [--max-lag 1.0]
        [--restart-routes 50000] [--restart-changes 0.01] [--quick] [--out DIR]
    .venv/bin/python -m benchmarks.churn --report DIR/results.json     # summary and plots again

Targets: ``native`` and ``exabgp`` (``evpn-speaker run`` with that session engine), ``frr`` (zebra + bgpd).
Scenarios (one module each; every measurement in a fresh ``tests.lab.Lab``, removed even on failure):

- ``bulk`` (:mod:`.bulk`): N type-2 routes from the raw injector (100 per UPDATE): time until all are in
  the RIB and in the kernel FDB, then withdrawn until the FDB is clean; RSS of every process.
- ``moves`` (:mod:`.moves`): one MAC moves between two leaves (FRR spine between them); per move, GARP to
  the old leaf's FDB pointing to the new leaf; p50/p90/p99; pings lost by a flow towards the host.
- ``churn`` (:mod:`.churn`): announce/withdraw/move at a ladder of rates; the largest rate sustained with a
  bounded backlog (p99 <= ``--max-lag``); CPU and RSS over time.
- ``restart`` (:mod:`.restart`): kill -9 and restart with N routes present, 1 % of the table changed
  meanwhile: time until the kernel is reconciled; FDB entries of unchanged routes removed, re-added, rewritten.

``--quick`` (CI smoke, under two minutes): 1,000 routes, 1 repeat, 4 moves at 4/s, churn at 500 and
2,000 updates/s for 2 s over 1,000 routes, restart with 1,000 routes; all three targets. Options given
explicitly override the quick values.

Output in ``--out`` (default ``benchmarks/results/churn-<time>/``, gitignored):

- ``results.json``: ``schema``, ``command``, ``started``, ``duration_s``, ``parameters``, ``machine``
  (CPU, memory, kernel, versions, commit, load average), ``samples`` (one object per measurement, with
  ``scenario``, ``target``, ``repeat``, the scenario's figures, or ``error``), ``summary`` (per scenario:
  rows of ``{"median", "min", "max", "n"}`` per figure and ``x_frr`` ratios), ``goals`` (DESIGN §8: each
  with ``value``, ``frr``, ``ratio``, ``met``) and ``plots``;
- ``summary.md``: the tables (also printed);
- ``bulk_fdb_time.png``, ``bulk_memory.png``, ``moves_latency.png``, ``churn.png``.

Exit status: 0, 1 when a measurement failed (its sample holds ``error``), 2 without root or FRR.
Modules: :mod:`.targets` (the routers), :mod:`.topology`, :mod:`.inject`, :mod:`.fdb` (netlink FDB
watch), :mod:`.procs` (RSS/CPU), :mod:`.stats`, :mod:`.report`, :mod:`.plots`, :mod:`.machine`.
"""
