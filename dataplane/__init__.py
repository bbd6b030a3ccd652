"""dataplane: the node's kernel state for EVPN, replacing FRR's zebra (DESIGN §4, §5).

- :mod:`dataplane.interface`: the ``Dataplane`` protocol (apply a delta, reconcile, read back) and the
  ``EventSource`` protocol (local learning as an async iterator), with their result and event types;
- :mod:`dataplane.layout`: names and namespaces of every device (OpenPERouter's), VNI -> devices;
- :mod:`dataplane.plumbing`: creates/removes the devices of a configuration (VNIs, host-session veths),
  idempotently (pyroute2);
- :mod:`dataplane.reconciler`: ``KernelDataplane``, batched rtnetlink for FDB, neighbours, EVPN and unicast
  routes;
- :mod:`dataplane.monitor`: ``Monitor``, kernel notifications -> local-learning events, STALE re-probing;
- :mod:`dataplane.kernel_routes`: the router's main table (not ours) as ``KernelRoutes`` events;
- :mod:`dataplane.vrf_socket`: TCP sockets inside a VRF (namespace or VRF device) for host sessions;
- :mod:`dataplane.translate`: the pure message -> event logic of the monitor;
- :mod:`dataplane.rtnl`: the small struct-based rtnetlink codec and batch transport of the hot path;
- :mod:`dataplane.netns`: namespaces by name (enter, create, sysctls);
- :mod:`dataplane.memory`: ``MemoryDataplane``, the same interface in memory for tests without root;
- :mod:`dataplane.errors`: typed errors (``VrfUnsupportedError`` names its fix).

Typical use from the speaker (in asyncio)::

    layout = Layout(config, Namespaces(router=None, host="hosts"))
    await Plumbing(layout).apply_async()
    dataplane = KernelDataplane(layout)
    await dataplane.reconcile(core.desired_entries())       # start-up: converge, keep what is right
    async for event in Monitor(layout).events(): ...        # KernelRoutes, LocalMacLearned, ...
    await dataplane.apply(delta)                            # every DataplaneDelta the core emits
"""
