"""Loaded models: discovery in the model store, verification, loading and warm-up."""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from service.inference.batching import Batcher
from service.inference.early_exit import Outcome, Widths, classify
from service.inference.errors import InvalidInput, ModelNotFound, NotReady, VersionRefused, WrongModelKind
from service.inference.preprocessing import InputSpec
from service.inference.runtimes.base import Runtime
from service.metrics import Metrics
from service.settings import Settings
from training.contract.extras import needs
from training.contract.manifest import (
    MANIFEST,
    Manifest,
    ModelStoreError,
    discover,
    is_valid_name,
    list_versions,
    read_manifest,
    sha256_file,
    verify_files,
)

log = logging.getLogger("firstspike.service")


@dataclass
class LoadedModel:
    """One model version, loaded and warmed up, as requests use it.

    Attributes:
        name: the model's name in the store.
        version: the version number.
        manifest: the version's manifest.
        runtime: its runtime.
        input_spec: what an image must become for the model; None for event models.
        widths: the model's record sizes.
        decoding: ``first_spike`` for latency-coded models, ``time_mean`` for rate-coded ones
            and ANNs.
        on_step: records the rows of each runtime timestep.
        batcher: None when batching is off.
        manifest_sha256: tells a changed version apart on reload.
        users: requests and streams working with this version now (event loop only).
        retired: replaced by a reload: its batcher stops once the last user is done.
    """

    name: str
    version: int
    manifest: Manifest
    runtime: Runtime
    input_spec: InputSpec | None
    widths: Widths
    decoding: str
    on_step: Callable[[int], None] | None = None
    batcher: Batcher | None = None
    manifest_sha256: str = ""
    users: int = 0
    retired: bool = False

    @property
    def kind(self) -> str:
        """``image`` or ``events``, as the manifest says."""
        return self.manifest.kind

    @property
    def image_spec(self) -> InputSpec:
        """The input spec of an image model, for the routes that take images.

        Raises:
            WrongModelKind: the version is an event model (``resolve`` refuses those first).
        """
        if self.input_spec is None:
            raise WrongModelKind(f"model {self.name!r} takes {self.kind} input, not image")
        return self.input_spec

    @contextmanager
    def in_use(self) -> Iterator[LoadedModel]:
        """Marks a request or stream working with this version, so that a reload retiring it
        keeps its batcher running until the work is done.

        Yields:
            This version.
        """
        self.users += 1
        try:
            yield self
        finally:
            self.users -= 1
            if self.retired and self.users == 0:
                self._stop()

    def retire(self) -> None:
        """No longer served: stop the batcher now if nothing uses the version, else when the last
        user is done. On the event loop's thread, as ``in_use``."""
        self.retired = True
        if self.users == 0:
            self._stop()

    def _stop(self) -> None:
        if self.batcher is not None:
            self.batcher.stop()

    def classify_alone(self, image: np.ndarray, early_exit: bool = True) -> Outcome:
        """One preprocessed image through the runtime by itself, without the batcher.

        Args:
            image: float32 [C, H, W].
            early_exit: stop at the decision; False runs all T timesteps.

        Returns:
            The image's outcome.
        """
        return classify(
            self.runtime,
            image[None],
            self.widths,
            early_exit=early_exit,
            decoding=self.decoding,
            on_step=self.on_step,
        )[0]


def resolve_runtime(setting: str, manifest: Manifest) -> str:
    """The runtime that serves a version: ``auto`` is onnx where the version has its ONNX graphs
    and onnxruntime imports, else torch; ``torch`` and ``onnx`` are themselves.

    Args:
        setting: ``FIRSTSPIKE_RUNTIME``: ``auto``, ``torch`` or ``onnx``.
        manifest: the version's manifest.

    Returns:
        ``torch`` or ``onnx``.
    """
    if setting != "auto":
        return setting
    return "onnx" if manifest.onnx is not None and _onnxruntime_imports() else "torch"


def _onnxruntime_imports() -> bool:
    try:
        importlib.import_module("onnxruntime")
    except ImportError:
        return False
    return True


def make_runtime(settings: Settings, version_dir: Path, manifest: Manifest) -> Runtime:
    """The version's runtime (``resolve_runtime``).

    Args:
        settings: the service's settings (``runtime``, ``intra_op_threads``).
        version_dir: the verified version's directory.
        manifest: its manifest.

    Returns:
        The loaded runtime.

    Raises:
        ModelStoreError: a missing optional dependency, in one line that names the extra
            bringing it.
    """
    name = resolve_runtime(settings.runtime, manifest)
    try:
        # Imported on demand: the onnx runtime must work where torch is not installed.
        if name == "torch":
            from service.inference.runtimes.torch_runtime import TorchRuntime

            return TorchRuntime.load(version_dir, manifest, threads=settings.intra_op_threads)
        from service.inference.runtimes.onnx_runtime import OnnxRuntime

        return OnnxRuntime(version_dir, manifest, threads=settings.intra_op_threads)
    except ImportError as error:
        hint = needs(f"the {name} runtime", error)
        if hint is None:
            raise
        if settings.runtime == "auto" and name == "torch":  # say why auto did not take onnx
            why = (
                "onnxruntime does not import"
                if manifest.onnx is not None
                else "the version has no ONNX graphs; 'firstspike export --onnx' writes them"
            )
            hint += f" (runtime auto chose {name}: {why})"
        raise ModelStoreError(f"{version_dir}: {hint}") from None


def warm_up(model: LoadedModel, rounds: int) -> None:
    """Full T-step passes on a blank input, so the first real request pays no one-off costs.

    Args:
        model: the version to warm up.
        rounds: how many passes; 0 for none.
    """
    if rounds == 0:
        return
    if model.input_spec is None:  # events: one empty frame
        sensor = model.manifest.event_input
        shape = (sensor.polarities, sensor.sensor_height, sensor.sensor_width)
    else:
        shape = (model.input_spec.channels, model.input_spec.height, model.input_spec.width)
    blank = np.zeros((1, *shape), dtype=np.float32)
    for _ in range(rounds):
        classify(model.runtime, blank, model.widths, early_exit=False, decoding=model.decoding)


def _unchanged(version_dir: Path, loaded: LoadedModel) -> bool:
    """The version's manifest is the one ``loaded`` was built from, and its files still match it
    (``ModelStoreError`` if they do not)."""
    manifest = version_dir / MANIFEST
    try:
        if not manifest.is_file() or sha256_file(manifest) != loaded.manifest_sha256:
            return False
    except OSError as error:
        raise ModelStoreError(f"{manifest}: cannot be read ({error.strerror or error})") from None
    verify_files(version_dir, loaded.manifest)
    return True


@dataclass(frozen=True)
class Reloaded:
    """What a reload changed.

    Attributes:
        model: the model's name.
        versions: the versions served after the reload.
        default_version: the highest of them; None when none is left.
        loaded: versions loaded anew (new or changed in the store).
        unloaded: versions no longer served.
        retired: the ``LoadedModel`` of each version replaced or removed: the caller retires
            each on the event loop (``LoadedModel.retire``) once the switch is made.
    """

    model: str
    versions: list[int]
    default_version: int | None
    loaded: list[int]
    unloaded: list[int]
    retired: list[LoadedModel]


@dataclass
class ModelRegistry:
    """The model versions an app serves, loaded from the model store.

    Attributes:
        settings: the service's settings.
        metrics: the app's metrics (model info, batch sizes).
        models: name -> version -> the loaded version.
        errors: ``name/version`` (or a name, or ``store``) -> why it was refused.
        wanted: the default models.
        ready: every default model has a loaded version.
        loading: ``load_all`` is running.
    """

    settings: Settings
    metrics: Metrics
    models: dict[str, dict[int, LoadedModel]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    wanted: list[str] = field(default_factory=list)
    ready: bool = False
    loading: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _reload_lock: threading.Lock = field(default_factory=threading.Lock)

    def load_all(self) -> None:
        """Load and warm every version of the default models; ready when each has one."""
        self.loading = True
        try:
            store = self.settings.model_store
            available = discover(store)
            wanted = self.settings.default_models or sorted(available)
            for name in wanted:
                if name not in available:
                    self.errors[name] = f"model {name!r} is not in the model store {store}"
                    log.error(self.errors[name])
                    continue
                for version in available[name]:
                    self._load_version(store / name / str(version), name, version)
            self.wanted = wanted
            self._update_ready()
            if not wanted:
                self.errors["store"] = f"no models in the model store {store}"
        except ModelStoreError as error:
            self.errors["store"] = str(error)
            log.error(str(error))
        finally:
            self.loading = False

    def _load_version(self, version_dir: Path, name: str, version: int) -> None:
        try:
            model = self.build(version_dir, name, version)
        except ModelStoreError as error:
            self.errors[f"{name}/{version}"] = str(error)
            log.error("refusing model %s/%s: %s", name, version, error)
            return
        with self._lock:
            self.models.setdefault(name, {})[version] = model
        self._announce(model)

    def _announce(self, model: LoadedModel, serving: bool = True) -> None:
        """Keep ``firstspike_model_info`` equal to what is being served."""
        labels = (model.name, str(model.version), model.runtime.name, str(model.runtime.timesteps))
        self.metrics.announce_model(labels, serving)

    def build(self, version_dir: Path, name: str, version: int) -> LoadedModel:
        """Verify, load and warm up one version.

        Args:
            version_dir: the version's directory in the store.
            name: the model's name.
            version: the version number.

        Returns:
            The loaded version.

        Raises:
            ModelStoreError: why the version cannot serve.
        """
        try:
            manifest = read_manifest(version_dir)
            runtime = make_runtime(self.settings, version_dir, manifest)
            spec = InputSpec.from_manifest(manifest) if manifest.kind == "image" else None
            decoding = manifest.decoding
            model = LoadedModel(
                name,
                version,
                manifest,
                runtime,
                spec,
                Widths.from_manifest(manifest),
                decoding,
                self.metrics.batch_size.labels(name, str(version)).observe,
                manifest_sha256=sha256_file(version_dir / MANIFEST),
            )
            if self.settings.max_batch_size > 1:
                model.batcher = Batcher(
                    runtime,
                    model.widths,
                    decoding,
                    self.settings.max_batch_size,
                    self.settings.max_batch_delay_ms / 1000,
                    model.on_step,
                    f"{name}-{version}",
                    self.settings.max_queue,
                )
            warm_up(model, self.settings.warmup_rounds)
        except ModelStoreError:
            raise
        except Exception as error:  # noqa: BLE001 - whatever one version throws, it alone is refused
            log.debug("loading %s failed", version_dir, exc_info=True)
            raise ModelStoreError(f"{version_dir}: {type(error).__name__}: {error}") from None
        log.info("loaded model %s/%s (%s runtime, T=%s)", name, version, runtime.name, runtime.timesteps)
        return model

    def reload(self, name: str) -> Reloaded:
        """Bring ``name`` in line with the model store: load new and changed versions (verified
        and warmed up first), drop removed ones, then switch in one assignment. All or nothing:
        if any version is refused, nothing changes. Requests and streams in flight keep the
        ``LoadedModel`` they resolved and finish on it.

        Args:
            name: the model's name.

        Returns:
            What changed.

        Raises:
            VersionRefused: a version cannot serve (or the store cannot be read).
            ModelNotFound: the model is neither loaded nor in the store.
        """
        with self._reload_lock:  # one reload at a time; serving goes on meanwhile
            return self._reload(name)

    def _reload(self, name: str) -> Reloaded:
        current = dict(self.models.get(name, {}))
        model_dir = self.settings.model_store / name
        try:
            versions = list_versions(model_dir)
        except ModelStoreError as error:
            raise VersionRefused(
                f"reload refused, still serving versions {sorted(current)}: {error}"
            ) from None
        if not versions and not current:
            raise ModelNotFound(f"model {name!r} is neither loaded nor in the model store")
        fresh, refused = {}, {}
        for version in versions:
            loaded = current.get(version)
            version_dir = model_dir / str(version)
            try:
                if loaded is not None and _unchanged(version_dir, loaded):
                    fresh[version] = loaded
                else:
                    fresh[version] = self.build(version_dir, name, version)
            except ModelStoreError as error:
                refused[version] = str(error)
        if refused:
            raise VersionRefused(
                "reload refused, still serving versions "
                f"{sorted(current)}: " + "; ".join(f"{v}: {why}" for v, why in sorted(refused.items()))
            )
        with self._lock:
            if fresh:
                self.models[name] = fresh
            else:
                self.models.pop(name, None)
        for version in fresh:
            self.errors.pop(f"{name}/{version}", None)
        if self.wanted:
            self._update_ready()
        retired = [current[v] for v in current if fresh.get(v) is not current[v]]
        for model in retired:
            self._announce(model, serving=False)
        for model in fresh.values():
            self._announce(model)
        return Reloaded(
            model=name,
            versions=sorted(fresh),
            default_version=max(fresh) if fresh else None,
            loaded=sorted(v for v in fresh if current.get(v) is not fresh[v]),
            unloaded=sorted(v for v in current if v not in fresh),
            retired=retired,
        )

    def _update_ready(self) -> None:
        self.ready = bool(self.wanted) and all(self.models.get(name) for name in self.wanted)

    async def close(self) -> None:
        """Stop every batcher and wait for it."""
        for versions in self.models.values():
            for model in versions.values():
                if model.batcher is not None:
                    await model.batcher.close()

    def default_model(self, kind: str) -> str | None:
        """The first loaded model of ``kind`` in the configured (or alphabetical) order.

        Args:
            kind: ``image`` or ``events``.

        Returns:
            Its name, or None if no model of that kind is loaded.
        """
        names = self.settings.default_models or sorted(self.models)
        for name in names:
            versions = self.models.get(name)
            if versions and versions[max(versions)].kind == kind:
                return name
        return None

    def lease(
        self, name: str | None, version: int | None, kind: str = "image"
    ) -> AbstractContextManager[LoadedModel]:
        """``resolve``, and the version marked in use for the block (``LoadedModel.in_use``): a
        reload meanwhile does not stop what the block works with.

        Args:
            name: the model, or None for the default model of ``kind``.
            version: the version, or None for the highest.
            kind: the input the request brings, ``image`` or ``events``.

        Returns:
            A context manager that gives the version.
        """
        return self.resolve(name, version, kind).in_use()

    def resolve(self, name: str | None, version: int | None, kind: str = "image") -> LoadedModel:
        """The loaded version a request names.

        Args:
            name: the model, or None for the default model of ``kind``.
            version: the version, or None for the highest.
            kind: the input the request brings, ``image`` or ``events``.

        Returns:
            The version.

        Raises:
            NotReady: the default models are still loading.
            ModelNotFound: no such model or version is loaded.
            InvalidInput: the name is not a valid model name.
            WrongModelKind: the model takes the other kind of input.
        """
        if not self.ready:
            raise NotReady("models are still loading")
        if name is None:
            name = self.default_model(kind)
            if name is None:
                raise ModelNotFound(f"no {kind} model is loaded")
        if not is_valid_name(name):
            raise InvalidInput(f"invalid model name {name!r}", "invalid_model_name")
        versions = self.models.get(name)
        if not versions:
            raise ModelNotFound(f"model {name!r} is not loaded")
        chosen = max(versions) if version is None else version
        if chosen not in versions:
            raise ModelNotFound(
                f"model {name!r} has no loaded version {version} (loaded: {sorted(versions)})",
                "unknown_version",
            )
        model = versions[chosen]
        if model.kind != kind:
            raise WrongModelKind(f"model {name!r} takes {model.kind} input, not {kind}")
        return model
