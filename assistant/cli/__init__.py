"""The ``mentorly`` command line, one module per topic.

``main`` holds the group and what the commands share; every other module adds its commands to
that group when it is imported, and none imports another's commands. The composition root
(``mentorly_app.cli``) imports them all, tells the group which plugins are built in and how to
build the web app, and is the console script's entry point. Plugins add their own commands
through the ``register_commands(cli)`` hook (e.g. ``train image``).
"""
