"""``python -m mentorly_app``: the ``mentorly`` command."""

from mentorly_app.cli import main

if __name__ == "__main__":
    main()
