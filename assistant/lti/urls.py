"""The tool's own addresses, as a platform administrator pastes them into Moodle, Canvas…

One redirect URL serves both messages: the launch dispatches on the id_token's message type
(a resource link or a deep-linking request), so ``deep_link`` is ``launch``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from assistant.config import Settings


@dataclass(frozen=True)
class ToolUrls:
    base: str
    login: str
    launch: str
    jwks: str
    deep_link: str

    @property
    def public(self) -> bool:
        """Whether ``base`` is an https address a platform elsewhere can reach (platforms refuse
        plain http; a loopback address only works for a platform on the same machine)."""
        return self.base.startswith("https://")


def tool_urls(settings: Settings) -> ToolUrls:
    """From ``[lti] public_url`` when set, else the address the server listens on."""
    if settings.lti.public_url:
        base = settings.lti.public_url.strip().rstrip("/")
    else:
        host = settings.server.host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"  # an IPv6 address
        base = f"http://{host}:{settings.server.port}"
    launch = base + "/lti/launch"
    return ToolUrls(base=base, login=base + "/lti/login", launch=launch, jwks=base + "/lti/jwks",
                    deep_link=launch)


MESSAGES = ("LtiResourceLinkRequest", "LtiDeepLinkingRequest")
PLACEMENTS = (
    # (Canvas placement name, message, what it is in words)
    ("course_navigation", "LtiResourceLinkRequest", "a link in the course menu: the chat for learners, "
     "the course page for instructors"),
    ("link_selection", "LtiDeepLinkingRequest", "the 'add external tool' picker (Moodle's activity chooser, "
     "Canvas modules): an instructor places the assistant in the course"),
)


def tool_config(urls: ToolUrls, kid: str, *, title: str = "Mentorly") -> dict[str, Any]:
    """What an administrator pastes into a platform, as ``mentorly lti config --json`` and
    ``GET /api/lti/config`` give it; ``canvas`` is a Canvas developer key's JSON configuration
    ("LTI Key" → "Paste JSON"). No placement needs custom parameters."""
    placements = [{"placement": p, "message_type": m, "description": d} for p, m, d in PLACEMENTS]
    return {
        "title": title,
        "launch_url": urls.launch,
        "redirect_uris": [urls.launch],
        "login_url": urls.login,
        "jwks_url": urls.jwks,
        "deep_link_url": urls.deep_link,
        "messages": list(MESSAGES),
        "placements": placements,
        "custom_parameters": {},
        "kid": kid,
        "public": urls.public,
        "canvas": {
            "title": title,
            "description": "A learning assistant that answers from the course's documents.",
            "oidc_initiation_url": urls.login,
            "target_link_uri": urls.launch,
            "public_jwk_url": urls.jwks,
            "scopes": [],
            "extensions": [{
                "platform": "canvas.instructure.com",
                "domain": urlsplit(urls.base).netloc,
                "privacy_level": "public",  # the learner's name, and the locale the page speaks
                "settings": {"text": title, "placements": [
                    {"placement": p, "message_type": m, "target_link_uri": urls.launch, "text": title}
                    for p, m, _ in PLACEMENTS]},
            }],
            "custom_fields": {},
        },
    }
