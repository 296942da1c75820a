"""Tendermint-style BFT consensus (spec/consensus.md 1, DESIGN.md 6).

Pure parts: :mod:`.core` (``step(state, event) -> (state, actions)``), :mod:`.validators`
(CometBFT proposer priority, H+2 updates), :mod:`.votes` (vote sets, ``verify_commit``),
:mod:`.evidence`, :mod:`.types` (wire formats), :mod:`.timeouts`.
I/O parts: :mod:`.wal`, :mod:`.signer`, :mod:`.storage` (files with fail points),
:mod:`.replica` (the synchronous shell shared by the driver and the simulator),
:mod:`.driver` (asyncio). Simulator: :mod:`.sim` (``python -m alloranet.consensus.sim``).
"""
