"""Authoring: what an exercise is and how an answer is judged, the graded assignments, and the learners' notebooks.

The bottom layer of :mod:`course_lib.grading`: every other part imports from here, and nothing here imports
from them.

- the vocabulary of a spec: :mod:`~.exercise` (:class:`~.exercise.Exercise`, :class:`~.exercise.Case`,
  :class:`~.exercise.Assignment`, :class:`~.exercise.Question`), :mod:`~.seeds` (hidden cases' seeds, seeded
  random generators), :mod:`~.calling` (calling a function on a case, bad arguments), :mod:`~.plain` (the plain
  data an observation is made of) and :mod:`~.compare` (comparing an answer, showing values);
- :mod:`~.specs`: the assignments, one package per exercise notebook;
- :mod:`~.generate`: the exercise notebooks from the solution masters; :mod:`~.questions`: written answers.
"""
