"""Behaviour check for refactors: record what every ``rewardlab`` command does, then compare two recordings.

Run from the repository root::

    python -m dev.behaviour_check record --out DIR [--source SRC]   # run the fixed command set into DIR
    python -m dev.behaviour_check compare BASE NEW [--strict-help]  # every difference; exit 1 on any
    python -m dev.behaviour_check check --baseline DIR [--source SRC] [--keep DIR2]

``record`` runs each command as ``sys.executable -m rewardlab ...`` in ``DIR/work`` with
``PYTHONPATH=SRC`` (default: this checkout), ``OMP_NUM_THREADS=1``, ``REWARDLAB_CPU_BF16=0``, its own
``REWARDLAB_CACHE`` in ``DIR/cache`` and a fixed terminal width, on tiny random models and the demo
data. ``DIR/record.json`` keeps each command's exit code, raw stdout/stderr and the files it wrote;
the files stay in ``DIR/work``. ``compare`` normalises both sides the same way (see
:func:`normalise_text` and :data:`VOLATILE_KEY_PARTS`), so a recording can be compared again after
the normaliser changes. ``--help`` texts are recorded too but only reported as information, since a
refactor may reword them; ``--strict-help`` counts them.
"""
