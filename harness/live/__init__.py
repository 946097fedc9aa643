"""Everything that runs inside the scenario container, plus the records and words it shares with the host.

This package may import only the standard library and ``qemu.qmp`` (an import-linter contract holds
it, and the runner mounts only this folder into the container). The host imports from it, never the
other way round:

- ``vocab``, ``result``, ``files``: the vocabulary, the scenario result model, atomic writes;
- ``spec``: what the driver is asked (``ScenarioSpec``; ``FaultSpec`` for tests only);
- ``driver``, ``context``, ``modes/``: the recipes of each mode over QMP; ``faults``: test-only hooks;
- ``argv``, ``machine``, ``qemu``, ``processes``, ``kvm``: QEMU command lines (a machine profile's devices
  too), one QEMU process and its QMP session;
- ``checks/``, ``qtree``, ``devmem``: verdicts over what was observed, device memory;
- ``guest/``: the firmware guest, and the Linux guest (its protocol, init script, disks, and the console
  channel and network peer the driver owns for it).
"""
