"""A desk's ``[central]`` settings (see :class:`callguard.config.CentralSettings`, where the
settings file is read)."""

from callguard.config import CentralSettings

__all__ = ["CentralSettings"]
