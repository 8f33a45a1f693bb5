"""The instructor's side of grading, outside every kernel: the course directory (:mod:`.course`),
submissions in (:mod:`.intake`, :mod:`.identity`, :mod:`.folders`), the pre-flight
(:mod:`.preflight`), one submission in a process of its own (:mod:`.submission`,
:mod:`.integrity`, :mod:`.accuracy`), the class in parallel (:mod:`.pool`), the gradebook as
CSV (:mod:`.export`)."""
