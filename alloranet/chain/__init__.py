"""PURE deterministic application: transactions, messages, modules, genesis, epochs, blocks.

The node uses :mod:`alloranet.chain.app` (``check_tx``, ``validate_block``, ``execute_block``,
``build_block``), :mod:`alloranet.chain.genesis` and :mod:`alloranet.chain.kv` (``AppState``).
"""
