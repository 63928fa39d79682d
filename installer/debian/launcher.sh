#!/bin/sh
# /usr/bin/callguard: callguard on its own Python (/opt/callguard/python, Debian 12's
# CPython 3.11 with callguard's pinned dependencies in its private site-packages).
# -I: no PYTHON* variable, no user site-packages, not the current folder; the interpreter's
# sys.path is /opt/callguard/python only. -B: nothing written under /opt/callguard.
# The same for the worker processes it starts (recogniser, Kiwi): they run the same
# interpreter (sys.executable) and inherit this environment.
for v in $(env | sed -n 's/^\(PYTHON[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$v"; done
export PYTHONNOUSERSITE=1 PYTHONDONTWRITEBYTECODE=1 PYTHONSAFEPATH=1
exec /opt/callguard/python/bin/python3.11 -I -B -m callguard "$@"
