"""Music generation: the procedural engine, the MusicGen engine wrapper and hum transcription.

- ``theory``: keys (``parse_key``), roman-numeral chords, key estimation from notes.
- ``voices`` / ``drums``: synthesised instruments and drum kits, and each feel's bar patterns.
- ``compose``: sections, chords, bass, lead and drums as notes for a genre template and seed.
- ``render``: a score to stereo stems with effects; ``mastering``: -14 LUFS, -1 dBTP.
- ``procedural``: the local engine (``render_beat``, ``master_beat``); ``midi``: MIDI export.
- ``musicgen``: MusicGen through audiocraft (imported lazily, only in the GPU image).
- ``hum``: pYIN transcription of a hummed melody, tempo fitting and quantisation.
"""
