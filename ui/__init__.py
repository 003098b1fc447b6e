"""The Gradio chat UI. Gradio's usage analytics are off unless the operator turns them on."""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# Runs are not kept in the browser (shared classroom machines), even where the Blocks are
# mounted without ``ui.app.ui_options``; an operator may still set it explicitly.
os.environ.setdefault("GRADIO_RUN_HISTORY", "False")
