"""Running learner code out of the grader's reach: the launcher that confines one process, the sandboxes that
test one exercise each, the kernel that executes the notebook, and the fence around the references.

This package imports none of its modules, and :mod:`~.options` and :mod:`~.confine` use the standard library only:
the command line reads its defaults without importing torch, and the launcher starts in milliseconds.

- :mod:`~.confine`: the launcher (network and mount namespaces, resource limits, another user);
- :mod:`~.supervise`: starting, watching and sweeping learner processes; :mod:`~.workspace`: their folders,
  user, hidden paths and environment; :mod:`~.options`: how long and how much they may use;
- :mod:`~.sandbox` (the learner's side of a sandbox) and :mod:`~.channel` (its messages);
- :mod:`~.fence` and :mod:`~.tripwire`: a copy of ``course_lib`` in which the graded references do not exist;
- :mod:`~.execution`: the notebook executed in a confined kernel, for the learner's information.
"""
