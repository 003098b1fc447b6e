"""LTI registration over HTTP: ``/api/lti/platforms`` and ``/api/lti/config`` (admin scope,
over the key's own tenant: another tenant's platform reads as unknown) and the tool's public
key set at ``/lti/jwks`` (no key: platforms fetch it).

``tool_keys(app)`` is the app's one ``ToolKeys``: the launch routes sign deep-linking responses
with it, so the key it caches is the one ``/lti/jwks`` publishes."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, FastAPI, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from assistant import audit
from assistant.api.auth import RuntimeDep, require
from assistant.api.schemas import ERROR_RESPONSES, ErrorResponse
from assistant.lti.keys import ToolKeys
from assistant.lti.platforms import (
    MAX_DEPLOYMENTS,
    MAX_SHARED_COLLECTIONS,
    PlatformInfo,
    Platforms,
    unknown_platform,
)
from assistant.lti.urls import tool_config, tool_urls
from assistant.runtime import Runtime
from assistant.security import ADMIN, Principal

router = APIRouter(tags=["lti"])
AdminKey = Annotated[Principal, Depends(require(ADMIN))]
PlatformId = Annotated[str, Path(min_length=1, max_length=64,
                                 description="the id `GET /api/lti/platforms` gives")]
_lock = threading.Lock()

DeploymentId = Annotated[str, StringConstraints(min_length=1, max_length=255)]
CollectionName = Annotated[str, StringConstraints(pattern=r"^[\w.-]{1,100}$")]


class PlatformCreate(BaseModel):
    """What the platform's administrator reads off the platform after adding the tool."""

    model_config = ConfigDict(extra="forbid")

    issuer: str = Field(min_length=1, max_length=500, description="the platform's issuer (iss), "
                        "an https URL: Moodle's Platform ID, https://canvas.instructure.com")
    client_id: str = Field(min_length=1, max_length=255, description="the client id it gave the tool")
    auth_login_url: str = Field(min_length=1, max_length=1000,
                                description="its OIDC authentication request URL")
    auth_token_url: str = Field("", max_length=1000, description="its access token URL")
    key_set_url: str = Field(min_length=1, max_length=1000, description="its public keyset (JWKS) URL")
    deployment_ids: list[DeploymentId] = Field(min_length=1, max_length=MAX_DEPLOYMENTS,
                                               description="the tool's deployment ids on the platform")
    name: str = Field("", max_length=200, description="a label (default: the issuer's host)")
    shared_collections: list[CollectionName] = Field(
        default_factory=list, max_length=MAX_SHARED_COLLECTIONS,
        description="tenant collections every course of this platform also searches, after its own")


class PlatformOut(BaseModel):
    id: str
    tenant: str
    name: str
    issuer: str
    client_id: str
    auth_login_url: str
    auth_token_url: str
    key_set_url: str
    deployment_ids: list[str]
    shared_collections: list[str]
    created_at: datetime


class PlatformList(BaseModel):
    platforms: list[PlatformOut]


class Placement(BaseModel):
    placement: str
    message_type: str
    description: str


class ToolConfig(BaseModel):
    """What an administrator pastes into the platform."""

    model_config = ConfigDict(extra="allow")

    title: str
    launch_url: str = Field(description="the tool (target link) URL and its one redirection URI")
    redirect_uris: list[str]
    login_url: str = Field(description="the OIDC login initiation URL")
    jwks_url: str = Field(description="the tool's public keyset URL")
    deep_link_url: str = Field(description="the deep-linking (content selection) URL")
    messages: list[str]
    placements: list[Placement]
    custom_parameters: dict[str, str]
    kid: str = Field(description="the id of the key the tool signs with now")
    public: bool = Field(description="false: the URLs are not https ([lti] public_url is unset)")
    canvas: dict[str, Any] = Field(description="a Canvas developer key's JSON configuration")


def tool_keys(app: FastAPI) -> ToolKeys:
    """The app's one ``ToolKeys`` (made on first use, over the runtime's database and settings)."""
    keys: ToolKeys | None = getattr(app.state, "lti_keys", None)
    if keys is None:
        with _lock:
            keys = getattr(app.state, "lti_keys", None)
            if keys is None:
                runtime: Runtime = app.state.runtime
                keys = app.state.lti_keys = ToolKeys(runtime.db, runtime.settings.lti)
    return keys


def _out(info: PlatformInfo) -> PlatformOut:
    return PlatformOut(id=info.id, tenant=info.tenant, name=info.name, issuer=info.issuer,
                       client_id=info.client_id, auth_login_url=info.auth_login_url,
                       auth_token_url=info.auth_token_url, key_set_url=info.key_set_url,
                       deployment_ids=list(info.deployment_ids),
                       shared_collections=list(info.shared_collections), created_at=info.created_at)


def _own(platforms: Platforms, ident: str, tenant: str) -> PlatformInfo:
    """The platform if it belongs to ``tenant``; another tenant's reads as unknown."""
    info = platforms.get(ident)
    if info.tenant != tenant:
        raise unknown_platform(ident)
    return info


_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorResponse, "description": "the issuer and client id are already registered"}}


@router.get("/api/lti/platforms", operation_id="list_lti_platforms", responses=ERROR_RESPONSES)
async def list_platforms(principal: AdminKey, runtime: RuntimeDep) -> PlatformList:
    """The learning platforms registered for this tenant."""
    found = await anyio.to_thread.run_sync(lambda: Platforms(runtime.db).list(principal.tenant))
    return PlatformList(platforms=[_out(p) for p in found])


@router.post("/api/lti/platforms", operation_id="create_lti_platform", status_code=201,
             responses={**ERROR_RESPONSES, **_CONFLICT})
async def create_platform(body: PlatformCreate, principal: AdminKey, runtime: RuntimeDep) -> PlatformOut:
    """Register a platform (Moodle, Canvas…) for this tenant; `GET /api/lti/config` says what to
    paste into it."""
    def add() -> PlatformInfo:
        info = Platforms(runtime.db).add(
            tenant=principal.tenant, issuer=body.issuer, client_id=body.client_id,
            auth_login_url=body.auth_login_url, auth_token_url=body.auth_token_url,
            key_set_url=body.key_set_url, deployment_ids=body.deployment_ids, name=body.name,
            shared_collections=body.shared_collections)
        audit.record(runtime.db, actor=audit.key_actor(principal.key_prefix), action=audit.LTI_PLATFORM_ADDED,
                     target=info.id, tenant=info.tenant,
                     details={"issuer": info.issuer, "client_id": info.client_id,
                              "deployment_ids": list(info.deployment_ids)})
        return info

    return _out(await anyio.to_thread.run_sync(add))


@router.get("/api/lti/platforms/{platform_id}", operation_id="get_lti_platform", responses=ERROR_RESPONSES)
async def get_platform(platform_id: PlatformId, principal: AdminKey, runtime: RuntimeDep) -> PlatformOut:
    """One of this tenant's platforms."""
    info = await anyio.to_thread.run_sync(lambda: _own(Platforms(runtime.db), platform_id, principal.tenant))
    return _out(info)


@router.delete("/api/lti/platforms/{platform_id}", operation_id="delete_lti_platform",
               responses=ERROR_RESPONSES)
async def delete_platform(platform_id: PlatformId, principal: AdminKey, runtime: RuntimeDep) -> PlatformOut:
    """Remove a platform: its launches and open sessions end at once; its courses' documents stay."""
    def remove() -> PlatformInfo:
        platforms = Platforms(runtime.db)
        info = platforms.remove(_own(platforms, platform_id, principal.tenant).id)
        audit.record(runtime.db, actor=audit.key_actor(principal.key_prefix),
                     action=audit.LTI_PLATFORM_REMOVED, target=info.id, tenant=info.tenant,
                     details={"issuer": info.issuer, "client_id": info.client_id})
        return info

    return _out(await anyio.to_thread.run_sync(remove))


@router.get("/api/lti/config", operation_id="lti_config", responses=ERROR_RESPONSES)
async def lti_config(request: Request, principal: AdminKey, runtime: RuntimeDep) -> ToolConfig:
    """What to paste into a platform: launch, login, key set and deep-linking URLs, the messages
    and placements, and the current key id."""
    keys = tool_keys(request.app)
    kid, _ = await anyio.to_thread.run_sync(keys.signing_key)
    return ToolConfig.model_validate(tool_config(tool_urls(runtime.settings), kid))


@router.get("/lti/jwks", include_in_schema=False)
async def jwks(request: Request) -> JSONResponse:
    """The tool's public keys (RFC 7517), for platforms to verify what the tool signs."""
    found = await anyio.to_thread.run_sync(tool_keys(request.app).jwks)
    return JSONResponse(found, headers={"Cache-Control": "public, max-age=300"})
