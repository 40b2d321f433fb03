"""Build the container images, and run them for real, with or without a Docker engine.

    python scripts/images.py build     # firstspike:slim and firstspike:full
    python scripts/images.py test      # build them, start each image's own command, check it

With a Docker engine (``docker info`` answers), ``build`` runs ``docker build`` on the default base
(python:3.11-slim). Without one, as on this project's machines, it runs ``buildah bud
--isolation chroot`` on a local Debian base made by ``debootstrap`` (no registry needed), cached in
buildah's storage as ``localhost/firstspike-base:bookworm`` and made only when missing.

``test`` (buildah; ``make image-test``) starts each image as its configuration says (its CMD,
user, environment and working directory, read from the image) on a free port of 127.0.0.1, waits
for its HEALTHCHECK command to pass, classifies the 360 test digits over HTTP and compares every
answer with a server run from this checkout, checks whether torch imports inside (slim: it must
not) and that the server process does not run as root, and prints each image's size, build time
and largest installed packages.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DOCKERFILE = ROOT / "docker" / "Dockerfile"
WHEELS = ROOT / "docker" / "wheels"
BASE_IMAGE = "localhost/firstspike-base:bookworm"
BASE_PACKAGES = "python3,python3-venv,ca-certificates"
DEBIAN_MIRROR = os.environ.get("FIRSTSPIKE_DEBIAN_MIRROR", "http://deb.debian.org/debian")
VARIANTS = {"slim": "onnx", "full": "torch"}  # image tag -> RUNTIME build argument
TORCH_WHEEL = "torch-2.13.0+cpu-*.whl"


class ImageError(RuntimeError):
    """A step failed; the message says which and why."""


def run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """``command`` with its output captured as text; ImageError with its last lines if it fails."""
    completed = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if completed.returncode != 0:
        tail = (completed.stderr or completed.stdout).strip().splitlines()[-15:]
        raise ImageError(f"{' '.join(command[:4])} ... failed ({completed.returncode}):\n" + "\n".join(tail))
    return completed


def docker_engine_answers() -> bool:
    """Whether a Docker engine answers ``docker info``."""
    return (
        shutil.which("docker") is not None
        and subprocess.run(["docker", "info"], capture_output=True).returncode == 0
    )


# -- the base --------------------------------------------------------------------------------


def image_exists(name: str) -> bool:
    """Whether buildah's storage holds the image ``name``."""
    return (
        subprocess.run(["buildah", "inspect", "--type", "image", name], capture_output=True).returncode == 0
    )


def ensure_base() -> float:
    """The debootstrap base in buildah's storage; returns seconds spent (0 when it was there)."""
    if image_exists(BASE_IMAGE):
        return 0.0
    for tool in ("debootstrap", "podman"):
        if shutil.which(tool) is None:
            raise ImageError(f"the local base needs {tool}: apt-get install {tool}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="firstspike-base-") as rootfs:
        run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={BASE_PACKAGES}",
                "bookworm",
                rootfs,
                DEBIAN_MIRROR,
            ]
        )
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (Path(rootfs) / cache).glob("*"):
                if entry.is_file():
                    entry.unlink()
        tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
        assert tar.stdout is not None  # stdout=PIPE
        try:
            run(["podman", "import", "--change", 'CMD ["/bin/bash"]', "-", BASE_IMAGE], stdin=tar.stdout)
        finally:
            tar.stdout.close()
            tar.wait()
    return time.perf_counter() - started


# -- building ----------------------------------------------------------------------------------


def pip_setting(name: str) -> list[str]:
    """The values of one of this machine's pip settings (``pip config list``), e.g. find-links."""
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True
    ).stdout
    return [
        value
        for line in listed.splitlines()
        if line.split("=", 1)[0].endswith(f".{name}")
        for value in line.split("=", 1)[1].strip().strip("'\"").split()
    ]


def local_torch_wheel() -> Path | None:
    """The CPU build of torch in pip's find-links, where pip has one (this project's machines)."""
    for folder in pip_setting("find-links"):
        found = sorted(Path(folder).glob(TORCH_WHEEL))
        if found:
            return found[-1]
    return None


def host_ca_bundle() -> Path | None:
    """The CA bundle this machine's pip trusts (set where a proxy re-signs TLS), if any."""
    return next((Path(value) for value in pip_setting("cert") if Path(value).is_file()), None)


def build(tag: str, use_docker: bool) -> float:
    """Build firstspike:<tag>; returns the seconds it took."""
    arguments = ["--build-arg", f"RUNTIME={VARIANTS[tag]}"]
    _clear_wheels()  # one a killed build left behind would go into the slim image's context too
    wheel = local_torch_wheel() if tag == "full" else None
    if wheel is not None:  # no index needed: the wheel travels in the build context
        shutil.copy2(wheel, WHEELS / wheel.name)
        arguments += ["--build-arg", "TORCH_INDEX="]
    if use_docker:
        command = ["docker", "build", "-f", str(DOCKERFILE), *arguments, "-t", f"firstspike:{tag}", str(ROOT)]
    else:
        bundle = host_ca_bundle()
        if bundle is not None:  # pip inside the build must trust what pip here trusts
            arguments += [
                "--volume",
                f"{bundle}:/run/host-ca.crt:ro",
                "--build-arg",
                "PIP_CERT=/run/host-ca.crt",
            ]
        command = [
            "buildah",
            "bud",
            "--isolation",
            "chroot",
            "--layers",
            "--format",
            "docker",
            "--build-arg",
            f"BASE_IMAGE={BASE_IMAGE}",
            "-f",
            str(DOCKERFILE),
            *arguments,
            "-t",
            f"firstspike:{tag}",
            str(ROOT),
        ]
    started = time.perf_counter()
    try:
        run(command)
    finally:
        _clear_wheels()
    return time.perf_counter() - started


def _clear_wheels() -> None:
    """Empty the wheel folder of the build context."""
    for wheel in WHEELS.glob("*.whl"):
        wheel.unlink()


def image_size_mb(tag: str, use_docker: bool) -> float:
    """The size of firstspike:<tag> in MB, as the engine reports it."""
    if use_docker:
        size = run(["docker", "image", "inspect", "--format", "{{.Size}}", f"firstspike:{tag}"]).stdout
    else:
        size = run(["podman", "image", "inspect", "--format", "{{.Size}}", f"firstspike:{tag}"]).stdout
    return int(size.strip() or 0) / 1e6


# -- running -----------------------------------------------------------------------------------


@dataclass
class ImageConfig:
    """What an image's configuration says about running it."""

    command: list[str]
    user: str
    healthcheck: list[str]
    env: dict[str, str]

    @classmethod
    def read(cls, image: str) -> ImageConfig:
        """The configuration of ``image`` in buildah's storage; ImageError without a HEALTHCHECK."""
        config = json.loads(run(["buildah", "inspect", "--type", "image", image]).stdout)["Docker"]["config"]
        test = (config.get("Healthcheck") or {}).get("Test") or []
        if not test or test[0] not in ("CMD", "CMD-SHELL"):
            raise ImageError(f"{image} has no HEALTHCHECK command")
        healthcheck = test[1:] if test[0] == "CMD" else ["sh", "-c", test[1]]
        env = dict(entry.split("=", 1) for entry in config.get("Env") or [])
        return cls(
            (config.get("Entrypoint") or []) + (config.get("Cmd") or []),
            config.get("User") or "root",
            healthcheck,
            env,
        )


class RunningImage:
    """A working container of the image, its own command running in it under chroot isolation,
    which shares this machine's network: the server listens on 127.0.0.1:port."""

    def __init__(self, image: str, port: int) -> None:
        self.image, self.port = image, port
        self.config = ImageConfig.read(image)
        self.container = run(["buildah", "from", image]).stdout.strip()
        self.log = tempfile.TemporaryFile(mode="w+")
        env = ["--env", f"FIRSTSPIKE_PORT={port}", "--env", "FIRSTSPIKE_HOST=127.0.0.1"]
        # buildah run takes the user, environment and working directory from the image's config.
        self.process = subprocess.Popen(
            ["buildah", "run", "--isolation", "chroot", *env, self.container, "--", *self.config.command],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def exec(self, *command: str) -> subprocess.CompletedProcess[str]:
        """``command`` in the container (next to the server), its output captured as text."""
        return subprocess.run(
            [
                "buildah",
                "run",
                "--isolation",
                "chroot",
                "--env",
                f"FIRSTSPIKE_PORT={self.port}",
                self.container,
                "--",
                *command,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )

    def wait_healthy(self, timeout: float = 180.0) -> float:
        """Seconds until the HEALTHCHECK command passes; ImageError if the server exits or it
        does not pass within ``timeout``."""
        started = time.perf_counter()
        while time.perf_counter() - started < timeout:
            if self.process.poll() is not None:
                raise ImageError(f"{self.image} exited ({self.process.returncode}):\n{self.output()[-3000:]}")
            if self.exec(*self.config.healthcheck).returncode == 0:
                return time.perf_counter() - started
            time.sleep(1.0)
        raise ImageError(
            f"{self.image}: the HEALTHCHECK did not pass within {timeout:.0f} s:\n{self.output()[-3000:]}"
        )

    def server_uids(self) -> set[int]:
        """Real user ids of the server's processes, as this machine's kernel sees them."""
        uids: set[int] = set()
        for status in Path("/proc").glob("[0-9]*/status"):
            try:
                cmdline = (status.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                if (
                    "firstspike serve" in cmdline
                    and f"--port {self.port}" in cmdline
                    and "buildah" not in cmdline
                ):
                    uid_line = next(
                        line for line in status.read_text().splitlines() if line.startswith("Uid:")
                    )
                    uids.add(int(uid_line.split()[1]))
            except (OSError, StopIteration):
                continue
        return uids

    def output(self) -> str:
        """What the server has written so far."""
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 30 s) and remove the container."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        subprocess.run(["buildah", "rm", self.container], capture_output=True)
        self.log.close()


def classify_digits(url: str) -> list[tuple[int, int]]:
    """(class, decision timestep) for each of the 360 test digits, sent as PNGs."""
    from benchmarks.common import digits_pngs, post_all

    requests = [({"model": "digits"}, body, "image/png") for body in digits_pngs()]
    return [
        (answer["class_index"], answer["decision_timestep"])
        for answer in post_all(url, "/classify", requests, 4)
    ]


def largest_packages(running: RunningImage, count: int = 6) -> list[str]:
    """The ``count`` largest installed Python packages of the image, with their sizes."""
    listing = running.exec(
        "sh", "-c", f"du -sm /opt/firstspike/lib/python3*/site-packages/* | sort -rn | head -n {count}"
    ).stdout
    return [f"{line.split()[1].rsplit('/', 1)[-1]} {line.split()[0]} MB" for line in listing.splitlines()]


def check_image(tag: str, reference: list[tuple[int, int]]) -> dict[str, Any]:
    """Run firstspike:<tag> as its configuration says and check it against ``reference``, the
    answers of a server run from this checkout; ImageError names every failed check."""
    import httpx

    from benchmarks.common import free_port

    running = RunningImage(f"firstspike:{tag}", free_port())
    try:
        ready_seconds = running.wait_healthy()
        answers = classify_digits(f"http://127.0.0.1:{running.port}")
        served = {
            runtime
            for model in httpx.get(f"http://127.0.0.1:{running.port}/models").json()["models"]
            for runtime in model["runtimes"].values()
        }
        torch_imports = running.exec("python", "-c", "import torch").returncode == 0
        uids = running.server_uids()
        result: dict[str, Any] = {
            "image": f"firstspike:{tag}",
            "runtime": running.config.env.get("FIRSTSPIKE_RUNTIME"),
            "runtimes_served": sorted(served),
            "user": running.config.user,
            "server_uids": sorted(uids),
            "healthy_after_s": round(ready_seconds, 1),
            "digits": len(answers),
            "same_answers_as_host": sum(a == r for a, r in zip(answers, reference)),
            "torch_imports": torch_imports,
            "largest_packages": largest_packages(running),
        }
    finally:
        running.stop()
    failures = []
    if served != {result["runtime"]}:
        failures.append(
            f"it serves with {sorted(served)}, not the image's FIRSTSPIKE_RUNTIME={result['runtime']}"
        )
    if result["same_answers_as_host"] != len(reference):
        failures.append(
            f"{len(reference) - result['same_answers_as_host']} of {len(reference)} answers differ"
        )
    if not uids or 0 in uids:
        failures.append(f"the server must run as a non-root user (uids seen: {sorted(uids)})")
    if torch_imports != (tag == "full"):
        failures.append(
            "torch imports in the slim image" if torch_imports else "torch does not import in the full image"
        )
    if failures:
        raise ImageError(f"firstspike:{tag}: " + "; ".join(failures))
    return result


def check_compose(config: ImageConfig) -> None:
    """docker-compose.yml's firstspike service runs the tested image as tested: the same tag,
    runtime, port, health check and model store."""
    import yaml

    service = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["firstspike"]
    problems = []
    if (
        service.get("image") != "firstspike:slim"
        or service["build"].get("args", {}).get("RUNTIME") != VARIANTS["slim"]
    ):
        problems.append("it does not build firstspike:slim with RUNTIME=onnx")
    if (
        service.get("environment", {}).get("FIRSTSPIKE_RUNTIME", config.env["FIRSTSPIKE_RUNTIME"])
        != config.env["FIRSTSPIKE_RUNTIME"]
    ):
        problems.append("it sets another FIRSTSPIKE_RUNTIME than the image")
    if not any(str(port).endswith(f":{config.env['FIRSTSPIKE_PORT']}") for port in service.get("ports", [])):
        problems.append(f"it publishes no port to the image's {config.env['FIRSTSPIKE_PORT']}")
    if service.get("healthcheck", {}).get("test") != ["CMD", *config.healthcheck]:
        problems.append("its healthcheck is not the image's HEALTHCHECK")
    if not any(
        volume.split(":")[1] == config.env["FIRSTSPIKE_MODEL_STORE"] for volume in service.get("volumes", [])
    ):
        problems.append(
            f"it mounts nothing on the image's model store {config.env['FIRSTSPIKE_MODEL_STORE']}"
        )
    if problems:
        raise ImageError("docker-compose.yml, service firstspike: " + "; ".join(problems))


def host_answers(runtime: str) -> list[tuple[int, int]]:
    """``classify_digits`` against a server run from this checkout with ``runtime``."""
    from benchmarks.common import start_service

    server = start_service(ROOT / "model_store", env={"FIRSTSPIKE_RUNTIME": runtime})
    try:
        return classify_digits(server.url)
    finally:
        server.stop()


# -- commands ----------------------------------------------------------------------------------


def build_all(use_docker: bool) -> dict[str, float]:
    """Build the base (without Docker) and both images; seconds and sizes."""
    timings = {"base_s": 0.0 if use_docker else round(ensure_base(), 1)}
    for tag in VARIANTS:
        timings[f"{tag}_build_s"] = round(build(tag, use_docker), 1)
        timings[f"{tag}_size_mb"] = round(image_size_mb(tag, use_docker), 1)
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("build", "test"))
    args = parser.parse_args(argv)
    use_docker = args.command == "build" and docker_engine_answers()
    if not use_docker and shutil.which("buildah") is None:
        print(
            "images: error: neither a Docker engine nor buildah (apt-get install buildah podman debootstrap)",
            file=sys.stderr,
        )
        return 2
    try:
        timings = build_all(use_docker)
        print(json.dumps(timings), flush=True)
        if args.command == "test":
            check_compose(ImageConfig.read("firstspike:slim"))
            for tag, runtime in VARIANTS.items():
                print(json.dumps(check_image(tag, host_answers(runtime))), flush=True)
    except ImageError as error:
        print(f"images: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
