"""Alert delivery: Alertmanager webhooks, an Alertmanager's API and Slack, never blocking.

``Dispatcher.from_settings`` builds the receivers ``alert_webhook_urls``,
``alertmanager_url`` and ``slack_webhook_url`` name; ``notify`` queues notices for
all of them and returns at once; ``status`` says how deliveries went.
"""

from threadline.server.alerting.delivery.dispatcher import DeliveryStatus, Dispatcher
from threadline.server.alerting.delivery.receivers import Receiver, ReceiverKind
from threadline.server.alerting.delivery.retry import RetryPolicy
from threadline.server.alerting.delivery.worker import ReceiverStatus

__all__ = [
    "DeliveryStatus",
    "Dispatcher",
    "Receiver",
    "ReceiverKind",
    "ReceiverStatus",
    "RetryPolicy",
]
