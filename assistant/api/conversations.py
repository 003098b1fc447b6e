"""``GET /api/conversations/{id}``: a stored conversation of the key's tenant."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Path

from assistant.api.auth import ChatKey, RuntimeDep
from assistant.api.schemas import ERROR_RESPONSES, ConversationOut, MessageOut
from assistant.audit import as_utc
from assistant.runtime import Runtime

router = APIRouter(tags=["chat"])


def _load(runtime: Runtime, tenant: str, conversation_id: str) -> ConversationOut:
    conv = runtime.db.get_conversation(tenant, conversation_id)
    messages = runtime.db.messages(tenant, conversation_id)
    # UTC with its offset on every database (see ``as_utc``)
    return ConversationOut(id=conv.id, title=conv.title, created_at=as_utc(conv.created_at),
                           updated_at=as_utc(conv.updated_at),
                           messages=[MessageOut(role=m.role, content=m.content, meta=m.meta or {},
                                                created_at=as_utc(m.created_at)) for m in messages])


@router.get("/api/conversations/{conversation_id}", operation_id="get_conversation",
            response_model=ConversationOut, responses=ERROR_RESPONSES)
async def get_conversation(conversation_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")],
                           principal: ChatKey, runtime: RuntimeDep) -> ConversationOut:
    """The messages of one conversation, oldest first (tool steps have role ``tool``)."""
    return await anyio.to_thread.run_sync(_load, runtime, principal.tenant, conversation_id)
