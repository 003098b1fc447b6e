"""What a launched LTI page calls besides the chat: the course's usage for its instructor."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["lti"])
