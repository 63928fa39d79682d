"""Colours the windows share, so one concept looks the same everywhere.

Crisis words (the rules' ``crisis`` category: self-harm, suicide) are not abuse: they have
their own colour in the counselor's transcript, the review's transcript and its waveform,
never the slur red.
"""

from __future__ import annotations

CRISIS = "crisis"  # the rules' category of crisis words (an alert, never a warning)
CRISIS_HIGHLIGHT = "#c5b3f0"  # background of crisis words in a transcript (lavender)
CRISIS_TEXT = "#311b92"  # crisis text on a light ground (≥ 4.5:1 on the lavender and white)
CRISIS_COLOUR = "#4527a0"  # the crisis banner, box border and waveform marker (violet)
