"""One call's pipeline: audio in, recognition, rules, escalation, prompts and hangup out."""
