"""Typed request and response models of the projects API (what /openapi.json describes)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.project_sources import CommitMetadata

MERGE_RULE = (
    "three-way per slot (the mix and each stem by name) and per metadata field against the "
    "newest common ancestor: the same content on both sides is kept; a slot only one side "
    "changed (added, replaced or removed) comes from that side; a slot both sides changed "
    "differently is a conflict -- the merge fails (409 MERGE_CONFLICT) unless on_conflict "
    "picks 'ours' or 'theirs'. Metadata conflicts never block: ours wins unless 'theirs'."
)


class ProjectCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str = Field(min_length=1, max_length=100)
    description: str = Field("", max_length=2000)
    is_public: bool = False


class ProjectUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str | None = Field(None, min_length=1, max_length=100)
    description: str | None = Field(None, max_length=2000)
    is_public: bool | None = None
    default_branch: str | None = Field(None, min_length=1, max_length=60)


class Project(BaseModel):
    id: str
    name: str
    description: str
    is_public: bool
    owner_id: str
    is_owner: bool = Field(description="whether the signed-in user owns (and may change) it")
    default_branch: str
    forked_from: str | None
    commit_count: int
    branch_count: int
    created_at: dt.datetime
    updated_at: dt.datetime


class ProjectPage(BaseModel):
    items: list[Project]
    total: int
    limit: int
    offset: int
    next_offset: int | None


class CommitFile(BaseModel):
    slot: str = Field(description="'mix' or the stem's name")
    role: Literal["mix", "stem"]
    file_id: str
    name: str
    kind: str
    content_type: str
    format: str | None
    size_bytes: int
    sha256: str
    duration_s: float | None
    sample_rate: int | None
    channels: int | None
    loudness_lufs: float | None
    url: str = Field(description="signed, expiring download URL")


class CommitSummary(BaseModel):
    id: str
    parents: list[str] = Field(description="one parent, two for a merge, none for the first")
    message: str
    author_email: str | None
    created_at: dt.datetime
    metadata: CommitMetadata


class Commit(CommitSummary):
    project_id: str
    author_id: str | None
    mix: CommitFile | None
    stems: list[CommitFile]


class LogPage(BaseModel):
    project_id: str
    ref: str
    items: list[CommitSummary]
    total: int
    limit: int
    offset: int
    next_offset: int | None


class Branch(BaseModel):
    name: str
    head: str
    is_default: bool
    created_at: dt.datetime
    updated_at: dt.datetime


class Tree(BaseModel):
    """Everything needed to draw the history: commits oldest first (parents before their
    children) and the branch heads."""

    project_id: str
    default_branch: str
    commits: list[CommitSummary]
    branches: list[Branch]


class BranchCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=60)
    start: str | None = Field(None, description="a ref; default: the default branch's head")


class MergeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str = Field(description="the branch (or any ref) to merge")
    target: str | None = Field(None, description="the branch to merge into; default branch")
    on_conflict: Literal["fail", "ours", "theirs"] = "fail"
    message: str | None = Field(None, max_length=2000)


class RevertRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    commit: str = Field(description="the commit (id, branch or branch~N) to undo")
    branch: str | None = None
    on_conflict: Literal["fail", "ours", "theirs"] = "fail"
    message: str | None = Field(None, max_length=2000)


class ForkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str | None = Field(None, min_length=1, max_length=100)


class MergeReport(BaseModel):
    base: str | None
    ours: str
    theirs: str | None
    conflicts: list[str]
    metadata_conflicts: list[str]
    resolved_with: Literal["ours", "theirs"] | None
    taken: dict[str, Literal["ours", "theirs", "both"]]


class MergeResult(BaseModel):
    commit: Commit
    report: MergeReport
    rule: str = MERGE_RULE


class DiffFile(BaseModel):
    name: str
    filename: str
    file_id: str
    sha256: str
    size_bytes: int
    duration_s: float | None


class ChangedSlot(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    name: str
    from_: DiffFile = Field(alias="from")
    to: DiffFile
    difference_lufs: float | None = Field(
        None, description="integrated loudness of (to - from); None when silent or not measured"
    )
    difference_rms_dbfs: float | None = None


class MetaDelta(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    from_: Any = Field(alias="from")
    to: Any
    changed: bool
    delta: float | None = None
    added: list[str] | None = None
    removed: list[str] | None = None


class Diff(BaseModel):
    project_id: str
    from_commit: str
    to_commit: str
    added: list[DiffFile]
    removed: list[DiffFile]
    changed: list[ChangedSlot]
    unchanged: list[str]
    mix_changed: bool
    metadata: dict[str, MetaDelta]


class Deleted(BaseModel):
    id: str
    deleted: bool
