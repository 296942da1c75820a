"""PURE deterministic application: transactions, messages, modules, genesis, epochs, blocks.

What the rest of the node uses:

* :mod:`alloranet.chain.app` — ``check_tx(state, tx_bytes, expected_sequence=None)`` for the
  mempool; ``build_block(state, time_ms=, proposer=, txs=, evidence=, last_commit=)`` for the
  proposer; ``validate_block(state, block_bytes)`` before prevoting;
  ``execute_block(state, block, processor=NoSynthesis(), verified=())`` -> ``BlockResult``
  (new state, key-sorted change set, app hash, per-tx codes and logs, events, validator
  updates that take effect at H+2); ``get_validator_set(state, height=None)``; small queries.
* :mod:`alloranet.chain.genesis` — ``Genesis`` and ``build_genesis_state``.
* :mod:`alloranet.chain.kv` — ``AppState`` (immutable snapshot, incremental app hash).
* :mod:`alloranet.chain.epoch_hook` — the ``EpochProcessor`` seam that synthesis fills in.
* :mod:`alloranet.chain.testkit` — a deterministic in-memory chain driver for tests.

The modules (bank, staking, topics, actors, epochs) only touch state through
:class:`alloranet.chain.ledger.Ledger`, which owns the key layout.
"""
