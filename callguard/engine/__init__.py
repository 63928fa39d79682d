"""The call engine: one asyncio loop in its own thread that runs the line, the calls and
their sessions. Qt-free; the GUI and ``callguard run`` both drive it."""
