"""The HTTP JSON API (aiohttp): status, blocks, accounts, topics, network inferences, rewards,
transaction submission and Prometheus metrics, served from a :class:`NodeApi` the node fills in.
"""

from alloranet.rpc.api import NodeApi, NotFoundError, UnavailableError
from alloranet.rpc.server import ApiServer, build_app

__all__ = ["ApiServer", "NodeApi", "NotFoundError", "UnavailableError", "build_app"]
