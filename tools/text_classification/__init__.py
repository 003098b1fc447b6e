"""Text classification: zero-shot labels, a trained sentiment model and custom classifiers,
in English and Chinese, on the multilingual embedder.

As a plugin (``tools.text_classification``) it registers the ``classify_text`` tool and the
``mentorly train text`` command. For the CLI's ``models`` commands and set-up it exposes
``list_text_models``, ``delete_text_model`` and ``prepare_sentiment``.
"""

from tools.text_classification.artifacts import delete_text_model, list_text_models
from tools.text_classification.plugin import register_commands, register_tools
from tools.text_classification.sentiment import prepare_sentiment
from tools.text_classification.tool import classify_text

__all__ = [
    "classify_text",
    "delete_text_model",
    "list_text_models",
    "prepare_sentiment",
    "register_commands",
    "register_tools",
]
