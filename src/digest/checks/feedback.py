"""The previous send's feedback as a pre-send check: too many spam complaints or hard bounces last
time stop the next send until someone has looked (Gmail's bulk-sender rules want complaints < 0.3 %)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from digest.checks.findings import CheckReport

if TYPE_CHECKING:  # pragma: no cover
    from digest.config import Settings


def check_feedback(report: CheckReport, settings: "Settings", slug: str) -> None:
    """Warn when the latest send of another issue had a complaint or hard-bounce rate above its limit."""
    from digest.feedback.record import previous_feedback

    found = previous_feedback(settings, slug)
    if found is None:
        return
    previous, fb = found
    limits = settings.feedback
    hint = (f"find out why first (digest status {previous}); to send anyway: --accept-warnings, or "
            "accept_warnings: [{code}] in the issue file")
    for code, count, what, limit, setting in (
            ("feedback-complaint-rate", fb.complained, "spam complaints", limits.max_complaint_rate,
             "max_complaint_rate"),
            ("feedback-bounce-rate", fb.hard_bounced, "hard bounces", limits.max_hard_bounce_rate,
             "max_hard_bounce_rate")):
        rate = fb.rate(count)
        if rate > limit:
            report.add(code, f"the previous send ({previous}) had {count:,} {what} from {fb.sent:,} sent "
                             f"({rate:.2f} %), above {limit:g} % ([feedback] {setting})",
                       hint=hint.format(code=code))
