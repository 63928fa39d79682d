"""Running the live-call pipeline on recorded audio: ``callguard simulate``/``demo``/``bench``."""
