"""The job kinds the tests' services serve: every real kind, plus the platform's test kinds
(``test_sleep`` for the job lifecycle, ``test_flaky`` for retries)."""

from functions.pipelines import KINDS
from tests import platform_kinds, retry_kinds

TEST_KINDS = KINDS.plus(platform_kinds.KIND, retry_kinds.KIND)
