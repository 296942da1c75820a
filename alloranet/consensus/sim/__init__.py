"""Deterministic fault simulator: N consensus replicas in one process (see :mod:`.runner`)."""

from alloranet.consensus.sim.runner import SimResult, run_schedule, run_schedules
from alloranet.consensus.sim.scenario import Scenario, generate_scenario

__all__ = ["Scenario", "SimResult", "generate_scenario", "run_schedule", "run_schedules"]
