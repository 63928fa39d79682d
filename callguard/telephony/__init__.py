"""Telephony: SIP line, RTP media and their fakes."""
