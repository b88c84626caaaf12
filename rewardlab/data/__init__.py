"""Preference data: reading every supported format into one representation, and summarising it."""

from rewardlab.data.io import DataError, StepwiseDataError
from rewardlab.data.loader import load_preferences
from rewardlab.data.schema import (
    PreferenceData,
    PreferencePair,
    RankedList,
    StepwiseExample,
    Text,
)

__all__ = [
    "DataError",
    "PreferenceData",
    "PreferencePair",
    "RankedList",
    "StepwiseDataError",
    "StepwiseExample",
    "Text",
    "load_preferences",
]
