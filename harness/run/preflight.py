"""When the driver left no result: did the image lack what the driver needs?

The in-container driver (``harness/live``) needs ``python3`` >= 3.11 and the ``qemu.qmp`` package. An
image without them ends the driver in a Python traceback; when the driver exits without a result, the
runner asks the same container (one ``python3 -c``) and, when something is missing, the cell ends as
``error`` with one reason naming the image and what to add to its recipe. Asking only after a failure
keeps this exec off every good cell (about a tenth of a second each).
"""

from __future__ import annotations

from harness.engine.containers import ContainerSession, ImageRef

MIN_PYTHON = (3, 11)
CHECK = f"""
import sys
if sys.version_info < {MIN_PYTHON!r}:
    print("python3 is " + sys.version.split()[0] + ", the driver needs >= {".".join(map(str, MIN_PYTHON))}")
    sys.exit(1)
try:
    import qemu.qmp
except ImportError as exc:
    print("python3 cannot import qemu.qmp (" + str(exc) + ")")
    sys.exit(1)
print("ok qemu.qmp " + getattr(qemu.qmp, "__version__", "?"))
"""


def driver_requirements(box: ContainerSession, image: ImageRef) -> str | None:
    """None when ``box`` can run the driver; otherwise the one reason why not (for the cell's result)."""
    run = box.exec(["python3", "-c", CHECK])
    if run.exit_code == 0:
        return None
    said = (run.output.strip().splitlines() or ["no output"])[-1][:300]
    if run.exit_code in (126, 127) or "executable file not found" in said:
        said = "no python3 in the image"
    return (
        f"image {image.name} cannot run the scenario driver: {said}; install it in "
        f"containers/{image.name}/Dockerfile (python3 >= 3.11 and qemu.qmp: Debian's python3-qemu-qmp, "
        "or the pinned wheel as in containers/debian-bookworm)"
    )
