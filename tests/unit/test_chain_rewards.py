"""The per-epoch reward budget of spec/synthesis.md 5.2 and the monthly reputer share r of
spec 6, as the chain computes them."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from alloranet.chain.app import validate_invariants
from alloranet.chain.epoch_hook import EpochContext, EpochOutcome
from alloranet.chain.epochs import compute_reward_budgets, get_reputer_share
from alloranet.chain.ledger import ledger_of
from tests.unit.test_chain_actors import NONCE, Recorder, payload, rep, setup

topics = st.lists(
    st.tuples(st.integers(0, 10**9), st.integers(1, 10_000)), min_size=1, max_size=5
).map(lambda items: tuple((i + 1, w, length) for i, (w, length) in enumerate(items)))


@given(topics, st.integers(0, 10**10), st.integers(0, 10**24), st.integers(0, 10**27))
def test_budgets_follow_spec_5_2_and_never_exceed_the_balance(
    closing: tuple[tuple[int, int, int], ...], extra_weight: int, reward_block: int, balance: int
) -> None:
    total = sum(w for _, w, _ in closing) + extra_weight
    budgets = compute_reward_budgets(closing, total, reward_block, balance)
    assert len(budgets) == len(closing)
    assert sum(budgets) <= balance
    assert all(b >= 0 for b in budgets)
    asked = [w * reward_block * length // total if total else 0 for _, w, length in closing]
    if sum(asked) <= balance:
        assert list(budgets) == asked
    elif sum(1 for _, w, _ in closing if w) == 1:  # one paid topic takes the whole balance
        assert sum(budgets) == balance
    else:  # shares of the balance by weight x epoch length
        denominator = sum(w * length for _, w, length in closing)
        assert list(budgets) == [balance * w * length // denominator for _, w, length in closing]


def test_zero_weight_or_empty_rewards_pay_nothing() -> None:
    assert compute_reward_budgets(((1, 0, 12),), 0, 10**20, 10**24) == (0,)
    assert compute_reward_budgets(((1, 5, 12),), 5, 10**20, 0) == (0,)


def _close_one_nonce(recorder: Recorder, **params: int):  # type: ignore[no-untyped-def]
    chain = setup(recorder, **params)
    chain.advance_to(15)
    chain.block([payload(chain, "w1")])
    chain.advance_to(26)
    chain.block([rep(chain, "r1")])
    chain.advance_to(38)  # the reputer nonce of NONCE closes at the end of 38
    return chain


def test_budget_is_weight_share_of_block_emission_times_epoch_length() -> None:
    recorder = Recorder()
    chain = _close_one_nonce(recorder)
    (ctx,) = recorder.calls
    assert ctx.nonce == NONCE
    ledger = ledger_of(chain.state)
    reward_block = ledger.get_meta("mint/reward_block")
    assert reward_block > 0
    # the only active topic: w_t / sum w = 1, so E_t = E_block x epochLength (12); far below
    # the 38 blocks of reward emission the rewards account holds
    assert ctx.reward_budget == reward_block * 12


class ReputerPayer(Recorder):
    """Pays 1,000 to the first reputer and reports it as the reputers' part."""

    def process_reputer_nonce_close(self, ctx: EpochContext) -> EpochOutcome:
        outcome = super().process_reputer_nonce_close(ctx)
        paid = sum(a for _, a in outcome.payouts)
        return EpochOutcome(outcome.synthesis_state, outcome.payouts, (), reputer_total=paid)


def test_reputer_share_is_recomputed_monthly_from_payouts() -> None:
    chain = _close_one_nonce(ReputerPayer(payout=1_000), blocks_per_month=40)
    ledger = ledger_of(chain.state)
    assert get_reputer_share(ledger) == 0.3  # genesis value until the month ends
    assert ledger.get_meta("mint/paid") == (1_000, 1_000)
    chain.advance_to(40)
    ledger = ledger_of(chain.state)
    assert get_reputer_share(ledger) == 1.0
    assert ledger.get_meta("mint/paid") is None
    validate_invariants(chain.state)
