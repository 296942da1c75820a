"""Chaos testing of real alloranet testnets (issue 7): partitions, crashes, pauses, Byzantine
validators, on real node processes, checked black-box over the HTTP API.

Public interface:

- :class:`testnet.chaos.network.ChaosNetwork` ``(root, spec, chain_id=...)`` — ``create()``,
  ``start(name)``, ``wait_up(names)``, ``wait_for(what, probe, timeout)``,
  ``wait_height(names, h, timeout)``, ``partition(groups)``, ``cut_link(a, b)``, ``heal()``,
  ``kill(name)``, ``pause(name)``, ``resume(name)``, ``truncate_wal(name, nbytes)``,
  ``stop_all()``; timeouts scale with ``ALLORANET_TIMEOUT_FACTOR``.
- :func:`testnet.chaos.schema.load_chaos_manifest` ``(path) -> ChaosManifest`` (TOML schema in
  that module), :func:`testnet.chaos.generator.generate_manifest` ``(seed) -> ChaosManifest``.
- :func:`testnet.chaos.runner.run_manifest` ``(manifest, root, log) -> RunResult``.
- :func:`testnet.chaos.report.build_report` ``(results, factor) -> dict`` (keys ``runs``,
  ``violations``, ``recovery_s_p50``, ``recovery_s_max``, ...), ``render_summary(report)``.
- CLI: ``alloranet testnet chaos --manifest FILE | --random --seed S --runs R [--report FILE]``.

Load: bank transfers (:class:`testnet.chaos.load.LoadDriver`, every acknowledged one must land)
and inferences (:class:`testnet.chaos.inference.InferenceLoad`: the SDK's simulated workers,
forecaster and reputers on the sample topic), so the synthesis check compares real results.
Checks read public routes (blocks with their evidence, ``/v1/validators``) plus one test-mode
view (``/v1/admin/supply``). ``python -m testnet.chaos.restarts`` measures where a restarted
validator's time goes from spawn to its first vote.

Nodes run with ``alloranet start --test-mode``, which mounts ``/v1/admin/*`` (see
``alloranet/rpc/admin.py``); the negative control uses ``--test-unsafe-equivocate``.
"""
