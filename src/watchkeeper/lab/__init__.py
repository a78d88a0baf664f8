"""A real local service topology with fault injection: the demo and the end-to-end proving ground.

:class:`Lab` runs the services (``watchkeeper.lab.service``) and the load generator
(``watchkeeper.lab.loadgen``) as processes on 127.0.0.1, injects :data:`FAULTS` and repairs them;
``watchkeeper lab …`` is its command line (``watchkeeper.lab.cli``). See ``docs/lab.md``.
"""

from watchkeeper.lab.control import EDGES, FAULTS, SERVICES, Lab, LabError

__all__ = ["EDGES", "FAULTS", "SERVICES", "Lab", "LabError"]
