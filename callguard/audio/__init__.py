"""Telephone audio: G.711 codecs, resampling, voice activity segmentation (pure)."""
