"""``mentorly lti``: register learning platforms (LTI 1.3), print what to paste into them,
rotate the tool's signing key."""

from __future__ import annotations

from assistant.cli.main import cli


@cli.group("lti")
def lti_group() -> None:
    """LTI 1.3: launches from Moodle, Canvas, Blackboard, Brightspace, Open edX."""
