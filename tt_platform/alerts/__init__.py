"""Alerts: what to tell people (``Alert``), through which channels (``notifiers``), configured by
``TT_ALERT_*`` variables (``settings``); ``gaps`` finds bar series that stopped arriving."""

from tt_platform.alerts.notifiers import (
    Alert,
    AlertConfigError,
    AlertDeliveryError,
    CompositeNotifier,
    Delivery,
    LogNotifier,
    Notifier,
    SmtpNotifier,
    TelegramNotifier,
    WebhookNotifier,
    notifier_from_settings,
)
from tt_platform.alerts.settings import AlertSettings

__all__ = [
    "Alert",
    "AlertConfigError",
    "AlertDeliveryError",
    "AlertSettings",
    "CompositeNotifier",
    "Delivery",
    "LogNotifier",
    "Notifier",
    "SmtpNotifier",
    "TelegramNotifier",
    "WebhookNotifier",
    "notifier_from_settings",
]
