"""Version scripts, one per schema change, named ``NNNN_what.py`` with the revision id
``NNNN_what``. They write DDL with ``op`` and never import the models, which keep changing."""
