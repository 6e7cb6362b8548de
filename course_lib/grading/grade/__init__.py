"""Grading one notebook: read it, run its functions' cases in the sandboxes, judge them against the references,
and report (:func:`~.grader.grade` is the entry point; the steps are listed in :mod:`~.grader`).

- :mod:`~.reading` and :mod:`~.extract`: the notebook and the definitions each graded function needs;
- :mod:`~.runner` (the two phases over every exercise), :mod:`~.sandbox_client` (one sandbox, from the grader's
  side) and :mod:`~.observations` (what the sandboxes said, raw);
- :mod:`~.scoring` (the references' answers, the points, the feedback) and :mod:`~.status` (what can happen to
  an exercise or a case, in the learner's words);
- :mod:`~.reports`: Gradescope's ``results.json``, the score table, GitHub Classroom's result.
"""
