"""alloranet: a self-improving, decentralised machine-intelligence network on its own BFT chain."""

__version__ = "0.1.0"
