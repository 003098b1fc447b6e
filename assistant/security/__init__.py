"""API keys, scopes and rate limits for the developer API."""

from assistant.security.keys import KeyInfo, KeyStore, Principal
from assistant.security.ratelimit import RateLimiter, make_limiter
from assistant.security.scopes import ADMIN, CHAT, KNOWLEDGE, SCOPES, TOOLS, allows, parse_scopes

__all__ = ["ADMIN", "CHAT", "KNOWLEDGE", "SCOPES", "TOOLS", "KeyInfo", "KeyStore", "Principal",
           "RateLimiter", "allows", "make_limiter", "parse_scopes"]
