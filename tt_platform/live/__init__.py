"""The live trading loop's pure building blocks: one decision per completed bar, the
guardrails that stop trading, and the idempotency keys orders carry to the broker."""

from tt_platform.live.decision import AuditRecord, Decision, action_to_target_weights, decide
from tt_platform.live.guardrails import BreakerVerdict, CircuitBreaker, GuardrailVerdict
from tt_platform.live.order_refs import (
    OrderRef,
    already_sent,
    is_order_ref,
    order_ref,
    parse_order_ref,
    session_key,
)

__all__ = [
    "AuditRecord",
    "BreakerVerdict",
    "CircuitBreaker",
    "Decision",
    "GuardrailVerdict",
    "OrderRef",
    "action_to_target_weights",
    "already_sent",
    "decide",
    "is_order_ref",
    "order_ref",
    "parse_order_ref",
    "session_key",
]
