"""Use cases of the people who run callguard (admins, supervisors), as core services: the
CLI and the GUI are thin faces over them. No Qt here."""
