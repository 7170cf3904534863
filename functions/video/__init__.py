"""The music video stages: song + prompt -> beat-synced 1080p30 mp4.

Modules, in pipeline order:

- ``timing``: beats merged with onsets, low-confidence tempo grid, beat-aligned clip slots.
- ``lyrics``: OpenAI transcription with word timestamps (none without a key or for
  instrumentals, said so).
- ``plan`` / ``director`` / ``planner``: the plan's pydantic models, the director's knowledge
  tables, and the two planners (OpenAI structured output; rule-based fallback).
- ``references``: one image per scene and character (Replicate SDXL; procedural Pillow).
- ``clips``: one motion clip per planned shot (Replicate SVD / text-to-video; procedural
  ffmpeg motion clips), written as stage functions suited to ``ctx.map``.
- ``compose``: one FFmpeg pass that fills every slot from the shots and muxes the song.
- ``estimate``: the pre-flight cost estimate (prices: ``shared.prices``).
- ``providers``: provider clients, timeouts and retry policies shared by the stages.

Nothing here imports web, the database or modal; the pipeline lives in
``functions.pipelines.video`` and the work inside its stages in
``functions.pipelines.video_stages``.
"""
