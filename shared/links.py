"""Links handed to a client at the two ends of a job: the uploaded song's signed URL in the
upload's response (24 hours, as the video design promises) and the main output's download URLs
on the ``completed`` event."""

from __future__ import annotations

from typing import Any

from shared.services import Services

UPLOAD_URL_TTL_S = 24 * 3600


def input_audio_url(services: Services, job: dict) -> dict[str, Any]:
    """``{"audio_url", "audio_url_expires_in_s"}`` for the job's first input, or ``{}``."""
    inputs = job.get("inputs") or []
    if not inputs:
        return {}
    first = inputs[0]
    url = services.storage.signed_url(
        first["bucket"], first["path"], UPLOAD_URL_TTL_S, download_name=first.get("filename")
    )
    return {"audio_url": url, "audio_url_expires_in_s": UPLOAD_URL_TTL_S}


def download_links(services: Services, job_id: str, kind: Any) -> dict[str, Any]:
    """The main output's download URLs for the ``completed`` event: the API's stable
    ``download_url`` (redirects to a fresh signed URL) and a ``signed_url`` valid now. The main
    output is the kind's ``extra["primary_output"]`` (video: the mp4), else the first."""
    outputs = services.jobs.load(job_id).get("outputs") or []
    primary = kind.extra.get("primary_output")
    chosen = next((o for o in outputs if o["name"] == primary), outputs[0] if outputs else None)
    if chosen is None:
        return {}
    try:
        signed = services.storage.signed_url(
            chosen["bucket"], chosen["path"], download_name=chosen.get("filename")
        )
    except Exception:  # noqa: BLE001 - the stable URL still works; never fail a finished job
        signed = None
    base = services.settings.base_url
    links = {
        "download_output": chosen["name"],
        "download_url": f"{base}/api/v1/jobs/{job_id}/download/{chosen['name']}",
        "signed_url": signed,
    }
    if primary and chosen["name"] == primary:
        # The design's field for its kind, e.g. the video pipeline's "video_url".
        links[f"{primary}_url"] = signed or links["download_url"]
    return links
