"""The ``callguard`` command line."""
