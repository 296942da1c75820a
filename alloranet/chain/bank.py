"""bank: sends between accounts; integer base units, supply conserved by construction."""

from __future__ import annotations

from alloranet.chain.context import BlockContext
from alloranet.chain.ledger import Ledger
from alloranet.chain.msgs import MsgSend


def process_send(ledger: Ledger, ctx: BlockContext, signer: str, msg: MsgSend) -> None:
    del ctx
    ledger.transfer(signer, msg.to, msg.amount, "send")
