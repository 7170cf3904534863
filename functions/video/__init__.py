"""The music video stages: song + prompt -> beat-synced 1080p30 mp4.

Modules, in pipeline order:

- ``timing``: beats merged with onsets, low-confidence tempo grid, beat-aligned clip slots.
- ``lyrics``: OpenAI transcription with word timestamps (none without a key or for
  instrumentals, said so).
- ``plan`` / ``director``: the plan's pydantic models and the director's knowledge tables
  (with the mood and palette both planners read).
- ``llm_planner`` / ``rule_planner`` / ``planner``: the OpenAI structured-output planner, the
  rule-based one, and ``make_plan``, which picks between them (the rules as the fallback).
- ``references``: one image per scene and character (Replicate SDXL; procedural Pillow).
- ``clips``: one motion clip per planned shot (Replicate SVD / text-to-video; procedural
  ffmpeg motion clips), written as stage functions suited to ``ctx.map``.
- ``compose``: one FFmpeg pass that fills every slot from the shots and muxes the song.
- ``estimate``: the pre-flight cost estimate (prices: ``shared.prices``).
- ``providers``: provider clients, timeouts and retry policies shared by the stages.

Nothing here imports web, the database or modal, and the stages read no settings: keys, model
names and limits come in as arguments from the pipeline (``functions.pipelines.video`` and
the work inside its stages in ``functions.pipelines.video_stages``).
"""
