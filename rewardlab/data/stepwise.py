"""Step-labelled data for process reward models: reading five real formats, and summarising them.

Reading (the formats, :func:`load_stepwise`) is in :mod:`rewardlab.data.stepwise_read`; the summary
(``rewardlab data summarize`` for step-labelled files) and :func:`outcome_pairs` in
:mod:`rewardlab.data.stepwise_summary`. Every public name of both is importable from here.
"""

from __future__ import annotations

from rewardlab.data.stepwise_read import (
    SHEPHERD_TAG,
    STEP_FORMATS,
    StepwiseData,
    convert_step_record,
    detect_step_format,
    load_stepwise,
)
from rewardlab.data.stepwise_summary import (
    outcome_pairs,
    render_steps_markdown,
    summarize_steps,
    task_type,
    text_task_type,
    write_steps_summary,
)

__all__ = [
    "SHEPHERD_TAG",
    "STEP_FORMATS",
    "StepwiseData",
    "convert_step_record",
    "detect_step_format",
    "load_stepwise",
    "outcome_pairs",
    "render_steps_markdown",
    "summarize_steps",
    "task_type",
    "text_task_type",
    "write_steps_summary",
]
