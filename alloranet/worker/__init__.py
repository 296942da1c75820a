"""The worker and reputer SDK (clients of the network) and the testnet's simulated actors."""

from alloranet.worker.client import ApiError, NodeClient
from alloranet.worker.sdk import (
    Account,
    Receipt,
    Reputer,
    Worker,
    compute_loss_bundle,
    log10_squared_error,
)
from alloranet.worker.transport import HttpTransport, P2PTransport, Transport

__all__ = [
    "Account",
    "ApiError",
    "HttpTransport",
    "NodeClient",
    "P2PTransport",
    "Receipt",
    "Reputer",
    "Transport",
    "Worker",
    "compute_loss_bundle",
    "log10_squared_error",
]
