"""Speech recognition: the bundled Whisper model, its decoding settings, the hallucination
guard and the worker thread that owns the model."""
