"""callguard: protects call-center counselors from abusive callers.

The package is layered; lower layers never import higher ones and nothing outside
``callguard.ui`` imports Qt (an import-linter contract in pyproject.toml checks it):

- ``callguard.text``: text normalisation and the Kiwi morphological analyser.
- ``callguard.rules``: the admin's rules file: loading, validation, matching.
- ``callguard.policy``: the pure escalation/duration policy (time passed in).
- ``callguard.cli``: the ``callguard`` command.
"""

__version__ = "0.1.0"
