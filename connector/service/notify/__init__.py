"""Notifications (`notify:`): an operator told by webhook or e-mail when a target's changes are
held back, a target is degraded or recovers, a changed config is rejected, or a source keeps
failing - rate-limited, delivered off the worker thread, and never with personal data.

`events.py` finds the events in a cycle's results, `limits.py` decides which go out,
`message.py` is what is sent, `webhook.py` and `mail.py` send it, `notifier.py` ties them
together for the daemon.
"""

from connector.service.notify.events import Event
from connector.service.notify.message import Message
from connector.service.notify.notifier import Notifier, build_channels, deliver

__all__ = ["Event", "Message", "Notifier", "build_channels", "deliver"]
