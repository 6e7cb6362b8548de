"""Grading where learners submit: a whole class (:mod:`~.batch`, ``grade-all``), a Gradescope autograder
(:mod:`~.bundle`, ``gradescope-bundle``) and a GitHub Classroom workflow (:mod:`~.classroom`)."""
