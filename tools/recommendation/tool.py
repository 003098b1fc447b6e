"""The ``recommend_resources`` tool: what should this learner study next?"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from assistant import ToolContext, ToolError, ToolResult, tool
from assistant.errors import InvalidInput, NotFound

from .examples import EXAMPLES
from .extraction import extract_arguments
from .recommender import MAX_K, recommend

TOOL_VERSION = "1.0.0"


@tool(name="recommend_resources", capability="recommend", examples=EXAMPLES, version=TOOL_VERSION,
      extractor=extract_arguments)
def recommend_resources(
    k: Annotated[int, Field(ge=1, le=MAX_K, description="how many resources")] = 5,
    subject: Annotated[str | None, Field(max_length=200, description=(
        "a subject (mathematics, physics, …) or a topic such as 'machine learning'"))] = None,
    level: Annotated[str | None, Field(description="beginner, intermediate or advanced")] = None,
    *,
    context: ToolContext,
) -> ToolResult:
    """Recommend learning resources (courses, lessons) for the current learner: what to study
    next, based on what they have done, with a one-line reason for each."""
    settings = context.settings
    try:
        result = recommend(context.tenant, context.user, k=k, subject=subject, level=level,
                           language=context.language, settings=settings,
                           shown=getattr(context, "previous_answer", "") or "")
    except (InvalidInput, NotFound) as exc:
        raise ToolError(exc.message, zh=exc.zh) from None
    model = result.model
    summary = result.summary()
    return ToolResult(data=[r.as_dict() for r in result.items], summary=summary, display=summary,
                      model=f"{model.meta.get('model')}:{model.meta.get('cf')}",
                      model_version=f"{TOOL_VERSION}+m{model.version}", confidence=result.confidence)
