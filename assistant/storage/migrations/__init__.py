"""The Alembic environment of Mentorly's database (``env.py``) and its version scripts.

Alembic is configured in code (``assistant.storage.schema``), never from an ``alembic.ini``:
``script_location`` is this folder and the connection arrives in
``config.attributes["connection"]``. A package (with ``__init__`` files) so a non-editable
install ships the scripts.
"""
