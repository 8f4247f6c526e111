"""What the fuzz properties share: their settings and the checks on a refusal's message.

Every property here says: an input is either accepted (and what comes back is valid) or refused
with the parser's own error, whose message names where and what the problem is; never an
uncaught KeyError, TypeError, UnicodeDecodeError or IndexError from deep inside.
"""

from __future__ import annotations

import os
import re

from hypothesis import HealthCheck, settings

# modest budgets, so the whole folder runs in make test; TT_FUZZ_SCALE=20 digs deeper by hand
SCALE = max(1, int(os.environ.get("TT_FUZZ_SCALE", "1")))
EXAMPLES = 100 * SCALE
SLOW_EXAMPLES = 40 * SCALE
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# properties that write to a database per example; the function-scoped store they use is
# compared before and after each example, not reset
FUZZ_SLOW = settings(max_examples=SLOW_EXAMPLES, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

_FIELD_COUNT = re.compile(r"expected (\d+) fields.*?found (\d+)")


def assert_names_problem(message: str, *where: str) -> None:
    """``message`` starts with ``where`` (the file or source), goes on with a problem, holds no
    traceback and no self-contradicting field count ("expected 6 fields, found 6")."""
    message = str(message)
    prefix = where[0] if where else ""
    assert message.startswith(prefix), f"the message does not start with {prefix!r}: {message!r}"
    for part in where[1:]:
        assert part in message, f"the message does not name {part!r}: {message!r}"
    problem = message[len(prefix):].strip(" :,")
    assert problem, f"the message names no problem: {message!r}"
    assert "Traceback" not in message, message
    count = _FIELD_COUNT.search(message)
    if count:
        assert count.group(1) != count.group(2), f"the field count contradicts itself: {message!r}"
