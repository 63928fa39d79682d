"""The PySide6 desktop app: counselor, supervisor review and admin rules windows.

Qt lives only here. The core (engine, session, rules, store) never imports Qt; the windows
talk to it through :mod:`callguard.gui.bridge` and never block the GUI thread on it.
"""
