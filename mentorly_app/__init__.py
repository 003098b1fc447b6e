"""The composition root: the one place that knows every part of Mentorly and wires them.

The core (``assistant``), document search (``knowledge``), the built-in tools (``tools``) and
the chat UI (``ui``) do not import upwards; this package names them all:

- ``wiring``: the built-in plugin list, the widget's static folder, and the runtime built with
  both (``build_runtime``, ``load_registry``, ``make_plugin_manager``);
- ``web``: the web app, the core API with the chat UI mounted at ``/ui`` (``create_app``);
- ``cli``: the ``mentorly`` command (the console script's ``main``; ``python -m mentorly_app``);
- ``chat_page``: the chat page alone (``python -m mentorly_app.chat_page``).

Nothing under ``assistant``, ``knowledge``, ``tools`` or ``ui`` may import this package
(``tests/test_import_structure.py`` checks it).
"""

from mentorly_app.wiring import (
    BUILTIN_PLUGINS,
    WIDGET_STATIC,
    build_runtime,
    load_registry,
    make_plugin_manager,
)

__all__ = ["BUILTIN_PLUGINS", "WIDGET_STATIC", "build_runtime", "load_registry", "make_plugin_manager"]
