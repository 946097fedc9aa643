"""A run image without what the driver needs gives one clear ``error`` reason, never a traceback.

Real images: the plain Debian root (no python3 at all), an image derived from debian-bookworm with
qemu.qmp removed, and debian-bookworm itself (its pinned qemu.qmp wheel is what makes scenarios run).
"""

from __future__ import annotations

import io

import pytest
from conftest import image_tag

from harness.engine.containers import Engine, ImageRef
from harness.engine.sandbox import scenario_user
from harness.live.spec import ScenarioSpec
from harness.run.driver import run_driver
from harness.run.preflight import driver_requirements

pytestmark = [pytest.mark.docker]


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.connect(progress=lambda line: None)


def _ref(engine: Engine, name: str, tag: str) -> ImageRef:
    return ImageRef(name, tag, str(engine.client.images.get(tag).id))


def _spec() -> ScenarioSpec:
    return ScenarioSpec(cell_id="t/p/boot/tcg", scenario="boot")


def test_bookworm_image_has_what_the_driver_needs(engine: Engine) -> None:
    image = _ref(engine, "debian-bookworm", image_tag("debian-bookworm"))
    with engine.session(image, user=scenario_user(), label="test preflight") as box:
        assert driver_requirements(box, image) is None
        version = box.exec(
            ["python3", "-c", "import qemu.qmp, importlib.metadata as m; print(m.version('qemu.qmp'))"]
        )
    assert version.output.strip() == "0.0.6"


def test_an_image_without_qemu_qmp_is_one_error_reason(engine: Engine) -> None:
    base = image_tag("debian-bookworm")
    recipe = f"FROM {base}\nRUN python3 -m pip uninstall -y --break-system-packages qemu.qmp\n"
    tag = "cpr-harness-test/no-qemu-qmp:preflight"
    engine.client.images.build(
        fileobj=io.BytesIO(recipe.encode()), tag=tag, rm=True, forcerm=True, network_mode="none"
    )
    try:
        image = _ref(engine, "no-qemu-qmp", tag)
        run = run_driver(engine, image, _spec())
    finally:
        engine.client.images.remove(tag, force=True)
    result = run.result
    assert result.verdict == "error" and "Traceback" not in result.reason
    assert result.reason.startswith(
        "image no-qemu-qmp cannot run the scenario driver: python3 cannot import qemu.qmp"
    )
    assert "containers/no-qemu-qmp/Dockerfile" in result.reason


def test_an_image_without_python_is_one_error_reason(engine: Engine) -> None:
    image_tag("debian-bookworm")  # builds its base root too
    image = _ref(engine, "base-bookworm", "cpr-harness/base:bookworm")
    result = run_driver(engine, image, _spec()).result
    assert result.verdict == "error"
    assert "image base-bookworm cannot run the scenario driver: no python3 in the image" in result.reason
