"""The Kubernetes manifests under docker/kubernetes/, checked offline: no cluster is needed.

Core objects validate strictly (unknown fields are errors) against the Kubernetes 1.30 schemas
that kubernetes-validate bundles; custom resources (ServiceMonitor, InferenceService) are checked
field by field; and the objects must agree with each other, with docker/Dockerfile and with
service/settings.py. `kubectl kustomize` renders each variant where kubectl is installed."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from service.metrics import Metrics
from service.settings import Settings

ROOT = Path(__file__).parents[2]
KUBERNETES = ROOT / "docker" / "kubernetes"
DOCKERFILE = ROOT / "docker" / "Dockerfile"
KUBERNETES_VERSION = "1.30.0"  # the oldest minor whose features the manifests use is 1.27
ENV_PREFIX = "FIRSTSPIKE_"
ADAPTER_RULES = KUBERNETES / "monitoring" / "prometheus-adapter-rules.yaml"
CUSTOM_KINDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("serving.kserve.io/v1beta1", "InferenceService"),
}
# KServe's ComponentExtensionSpec: the predictor's fields that are not PodSpec fields.
KSERVE_EXTENSION_FIELDS = {
    "minReplicas",
    "maxReplicas",
    "scaleTarget",
    "scaleMetric",
    "containerConcurrency",
    "timeout",
    "canaryTrafficPercent",
    "logger",
    "batcher",
    "labels",
    "annotations",
    "deploymentStrategy",
}


# ---------------------------------------------------------------------------------------------
# reading the manifests


def documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def kustomization(folder: str) -> dict:
    return documents(KUBERNETES / folder / "kustomization.yaml")[0]


def resource_files(folder: str) -> list[Path]:
    """The files a kustomization lists, without the folders it builds on."""
    return [
        KUBERNETES / folder / name
        for name in kustomization(folder)["resources"]
        if (KUBERNETES / folder / name).is_file()
    ]


def objects(folder: str) -> list[dict]:
    return [doc for path in resource_files(folder) for doc in documents(path)]


def manifest_files() -> list[Path]:
    return sorted(KUBERNETES.rglob("*.yaml"))


def is_object(doc: dict) -> bool:
    return (
        "apiVersion" in doc and "kind" in doc and not doc["apiVersion"].startswith("kustomize.config.k8s.io")
    )


def core_objects() -> list[tuple[str, dict]]:
    """Every Kubernetes object in any file (resources, patches, tools), custom resources aside."""
    found = []
    for path in manifest_files():
        for doc in documents(path):
            if is_object(doc) and (doc["apiVersion"], doc["kind"]) not in CUSTOM_KINDS:
                found.append((f"{path.relative_to(KUBERNETES)}:{doc['kind']}/{doc['metadata']['name']}", doc))
    return found


def only(items: list, what: str):
    assert len(items) == 1, f"expected one {what}, found {len(items)}"
    return items[0]


def one(objs: list[dict], kind: str) -> dict:
    return only([obj for obj in objs if obj["kind"] == kind], kind)


BASE = objects("base")
DEPLOYMENT = one(BASE, "Deployment")
POD = DEPLOYMENT["spec"]["template"]
CONTAINER = only(POD["spec"]["containers"], "container in the Deployment")
SERVICE = one(BASE, "Service")
CONFIG = one(BASE, "ConfigMap")
SECRET = one(BASE, "Secret")
PVC = one(BASE, "PersistentVolumeClaim")
HPA = one(BASE, "HorizontalPodAutoscaler")
PDB = one(BASE, "PodDisruptionBudget")
SERVICE_MONITOR = one(objects("monitoring"), "ServiceMonitor")
INFLIGHT_HPA = documents(KUBERNETES / "monitoring" / "hpa-inflight.yaml")[0]
ISVC = one(objects("kserve"), "InferenceService")
PREDICTOR = ISVC["spec"]["predictor"]
KSERVE_CONTAINER = only(PREDICTOR["containers"], "container in the InferenceService")


def dockerfile() -> dict:
    text = DOCKERFILE.read_text()
    useradd = re.search(r"useradd\b[^\n&]*--uid (\d+)[^\n&]* (\S+)\s*$", text, re.MULTILINE)
    assert useradd, "docker/Dockerfile no longer creates its user with useradd --uid"
    env = dict(re.findall(r"\b(FIRSTSPIKE_[A-Z_]+)=(\S+)", text))
    return {
        "uid": int(useradd.group(1)),
        "user": useradd.group(2),
        "env": env,
        "USER": re.search(r"^USER (\S+)", text, re.MULTILINE).group(1),
        "EXPOSE": [int(port) for port in re.findall(r"^EXPOSE (\d+)", text, re.MULTILINE)],
    }


def container_port(container: dict, port: int | str) -> int:
    """A probe's or Service's port: a number, or the name of one of the container's ports."""
    if isinstance(port, int):
        return port
    named = {p["name"]: p["containerPort"] for p in container["ports"] if "name" in p}
    assert port in named, f"no container port named {port!r}"
    return named[port]


def env_of(container: dict, config: dict = CONFIG) -> dict[str, str]:
    """The FIRSTSPIKE_* environment the container gets: the ConfigMap, then its own env."""
    env = {}
    for source in container.get("envFrom", []):
        assert source["configMapRef"]["name"] == config["metadata"]["name"]
        env.update(config["data"])
    env.update({item["name"]: item.get("value") for item in container.get("env", [])})
    return env


def matches(selector: dict, labels: dict) -> bool:
    assert set(selector) == {"matchLabels"}, "only matchLabels selectors are used here"
    return all(labels.get(key) == value for key, value in selector["matchLabels"].items())


def prestop_sleep_seconds(container: dict) -> float:
    pre_stop = container.get("lifecycle", {}).get("preStop")
    if pre_stop is None:
        return 0.0
    if "sleep" in pre_stop:
        return float(pre_stop["sleep"]["seconds"])
    command = pre_stop["exec"]["command"]
    assert command[0] == "sleep" and len(command) == 2, command
    return float(command[1])


def quantity_cores(value: str | int) -> float:
    value = str(value)
    return int(value[:-1]) / 1000 if value.endswith("m") else float(value)


@pytest.fixture
def configured(monkeypatch) -> Settings:
    """The service's settings as the pod gets them: the ConfigMap and nothing else."""
    for key in list(os.environ):
        if key.startswith(ENV_PREFIX):
            monkeypatch.delenv(key)
    for key, value in CONFIG["data"].items():
        monkeypatch.setenv(key, value)
    return Settings()  # raises on a value the service would refuse at start-up


# ---------------------------------------------------------------------------------------------
# parsing and schema validation


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: str(p.relative_to(KUBERNETES)))
def test_every_manifest_parses(path):
    docs = documents(path)
    assert docs and all(isinstance(doc, dict) for doc in docs)
    for doc in docs:
        if path == ADAPTER_RULES:
            assert set(doc) == {"rules"}
        else:
            assert doc.get("apiVersion") and doc.get("kind"), (
                f"{path.name}: a document without apiVersion/kind"
            )
            if is_object(doc):
                assert doc["metadata"]["name"]
                assert "namespace" not in doc["metadata"], (
                    "namespaces are the user's choice (kubectl -n, an overlay)"
                )


@pytest.mark.parametrize("folder", ["base", "monitoring", "kserve"])
def test_kustomizations_list_files_that_exist(folder):
    config = kustomization(folder)
    for name in config["resources"]:
        target = KUBERNETES / folder / name
        assert target.is_file() or (target / "kustomization.yaml").is_file(), f"{folder}: {name} is missing"
    for patch in config.get("patches", []):
        assert "patch" in patch or (KUBERNETES / folder / patch["path"]).is_file()
    assert ADAPTER_RULES.name not in config["resources"], "the adapter rule is not a Kubernetes object"


@pytest.fixture
def no_network(monkeypatch):
    """Validation must not download anything: every socket connection fails."""

    def refuse(*args, **kwargs):
        raise AssertionError("the schema validation tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def validate(obj: dict) -> None:
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        where = ".".join(str(part) for part in error.path)
        pytest.fail(f"{obj['kind']}/{obj['metadata']['name']}: {where}: {error.message}")
    except kubernetes_validate.SchemaNotFoundError as error:
        pytest.fail(error.message)


@pytest.mark.parametrize("name, obj", core_objects(), ids=[name for name, _ in core_objects()])
def test_core_objects_validate_strictly(name, obj, no_network):
    validate(obj)


def test_strict_validation_rejects_unknown_and_mistyped_fields(no_network):
    """The validator really is strict, so the test above means something."""
    typo = yaml.safe_load(yaml.safe_dump(DEPLOYMENT))
    typo["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFileSystem"] = True
    with pytest.raises(kubernetes_validate.ValidationError, match="readOnlyRootFileSystem"):
        kubernetes_validate.validate(typo, KUBERNETES_VERSION, strict=True)
    wrong_type = yaml.safe_load(yaml.safe_dump(SERVICE))
    wrong_type["spec"]["ports"][0]["port"] = "8000"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong_type, KUBERNETES_VERSION, strict=True)


def test_base_holds_only_core_objects():
    kinds = {(obj["apiVersion"], obj["kind"]) for obj in BASE}
    assert kinds == {
        ("v1", "ConfigMap"),
        ("v1", "Secret"),
        ("v1", "PersistentVolumeClaim"),
        ("apps/v1", "Deployment"),
        ("v1", "Service"),
        ("autoscaling/v2", "HorizontalPodAutoscaler"),
        ("policy/v1", "PodDisruptionBudget"),
    }


# ---------------------------------------------------------------------------------------------
# the Deployment against the image and the service


def test_security_context_is_restricted():
    image = dockerfile()
    assert image["USER"] == image["user"], "the Dockerfile runs as the user it creates"
    pod = POD["spec"]["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] == image["uid"]
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in [*POD["spec"]["containers"], *POD["spec"].get("initContainers", [])]:
        context = container["securityContext"]
        assert context["runAsNonRoot"] is True and context.get("runAsUser", pod["runAsUser"]) == image["uid"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context.get("privileged", False) is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert POD["spec"]["automountServiceAccountToken"] is False


def test_writable_paths_are_volumes():
    """With a read-only root filesystem, /tmp (for temporary files of libraries) is an emptyDir."""
    volumes = {volume["name"]: volume for volume in POD["spec"]["volumes"]}
    mounts = {mount["mountPath"]: mount for mount in CONTAINER["volumeMounts"]}
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]
    assert not mounts["/tmp"].get("readOnly", False)


def test_model_store_is_the_pvc_mounted_read_only_where_the_service_looks():
    image = dockerfile()
    store = env_of(CONTAINER)["FIRSTSPIKE_MODEL_STORE"]
    assert store == image["env"]["FIRSTSPIKE_MODEL_STORE"]
    mount = only([m for m in CONTAINER["volumeMounts"] if m["mountPath"] == store], f"mount at {store}")
    assert mount["readOnly"] is True
    volume = only(
        [v for v in POD["spec"]["volumes"] if v["name"] == mount["name"]], f"volume {mount['name']}"
    )
    assert volume["persistentVolumeClaim"]["claimName"] == PVC["metadata"]["name"]
    assert env_of(CONTAINER)["FIRSTSPIKE_RUNTIME"] == "onnx", "the slim image has no torch"


def test_container_port_is_the_image_port():
    image = dockerfile()
    (port,) = CONTAINER["ports"]
    assert port["name"] == "http" and port["containerPort"] == int(image["env"]["FIRSTSPIKE_PORT"])
    assert image["EXPOSE"] == [port["containerPort"]]
    assert "FIRSTSPIKE_PORT" not in CONFIG["data"], (
        "the image's CMD reads FIRSTSPIKE_PORT; keep the port in one place"
    )


def test_probes_point_at_the_health_endpoints():
    port = CONTAINER["ports"][0]["containerPort"]
    expected = {
        "readinessProbe": "/health/ready",
        "livenessProbe": "/health/live",
        "startupProbe": "/health/live",
    }
    for probe, path in expected.items():
        get = CONTAINER[probe]["httpGet"]
        assert get["path"] == path and container_port(CONTAINER, get["port"]) == port, probe


def routes_exist(*requests: tuple[str, str]) -> list[tuple[str, str]]:
    """The (method, path) requests that no route of the service's app would answer."""
    from starlette.routing import Match

    from service.app import create_app

    routes = create_app(Settings()).routes  # the models load only when it starts: nothing runs here
    missing = []
    for method, path in requests:
        scope = {
            "type": "http",
            "method": method,
            "path": path,
            "root_path": "",
            "headers": [],
            "query_string": b"",
        }
        if not any(route.matches(scope)[0] == Match.FULL for route in routes):
            missing.append((method, path))
    return missing


def test_probe_paths_and_admin_route_exist_in_the_service():
    probes = ("readinessProbe", "livenessProbe", "startupProbe")
    used = {
        ("GET", container[probe]["httpGet"]["path"])
        for container in (CONTAINER, KSERVE_CONTAINER)
        for probe in probes
    }
    used |= {("GET", SERVICE_MONITOR["spec"]["endpoints"][0]["path"]), ("POST", "/models/digits/reload")}
    assert not routes_exist(*sorted(used))


def test_open_inference_protocol_infer_route_exists_for_kserve():
    if routes_exist(("GET", "/v2/models/digits")):
        pytest.skip("the service has no Open Inference Protocol model routes yet (only /v2/health/*)")
    assert not routes_exist(("POST", "/v2/models/digits/infer"), ("GET", "/v2/models/digits/ready"))


def test_config_map_keys_are_service_settings():
    fields = set(Settings.model_fields)
    assert Settings.model_config["env_prefix"] == ENV_PREFIX
    for key in CONFIG["data"]:
        assert key.startswith(ENV_PREFIX) and key.removeprefix(ENV_PREFIX).lower() in fields, key
    assert "FIRSTSPIKE_API_KEY" not in CONFIG["data"], "the API key belongs in the Secret"


def test_config_map_values_are_valid_settings(configured):
    settings = configured
    assert (
        settings.runtime == "onnx" and str(settings.model_store) == CONFIG["data"]["FIRSTSPIKE_MODEL_STORE"]
    )
    cpu_limit = quantity_cores(CONTAINER["resources"]["limits"]["cpu"])
    assert settings.threads is not None and settings.threads <= cpu_limit, "threads beyond the CPU limit"


def test_api_key_comes_from_the_secret_and_is_a_placeholder():
    (item,) = [e for e in CONTAINER["env"] if e["name"] == "FIRSTSPIKE_API_KEY"]
    ref = item["valueFrom"]["secretKeyRef"]
    assert ref["name"] == SECRET["metadata"]["name"] and ref["key"] in SECRET["stringData"]
    # Empty keeps the admin endpoints disabled (403) until a real key replaces it: never commit one.
    assert SECRET["stringData"] == {"FIRSTSPIKE_API_KEY": ""} and "data" not in SECRET
    assert "replace" in (KUBERNETES / "base" / "secret.yaml").read_text().lower()


def test_shutdown_fits_in_the_grace_period(configured):
    config = configured
    grace = POD["spec"]["terminationGracePeriodSeconds"]
    assert config.drain_delay_s > 0, "answer 503 for a while after SIGTERM instead of closing at once"
    assert grace > config.drain_delay_s
    assert config.shutdown_grace_s >= config.request_timeout_s, "requests in flight would be cut short"
    needed = prestop_sleep_seconds(CONTAINER) + config.drain_delay_s + config.shutdown_grace_s
    assert grace > needed, (
        f"terminationGracePeriodSeconds {grace} <= preStop + drain + shutdown grace {needed}"
    )


def test_resources_are_bounded():
    for kind in ("requests", "limits"):
        assert set(CONTAINER["resources"][kind]) == {"cpu", "memory"}
    assert quantity_cores(CONTAINER["resources"]["requests"]["cpu"]) <= quantity_cores(
        CONTAINER["resources"]["limits"]["cpu"]
    )


def test_rollouts_keep_capacity():
    assert "replicas" not in DEPLOYMENT["spec"], "the HPA owns the replica count"
    rolling = DEPLOYMENT["spec"]["strategy"]["rollingUpdate"]
    assert rolling["maxUnavailable"] == 0 and rolling["maxSurge"] >= 1


# ---------------------------------------------------------------------------------------------
# cross-object consistency


def test_selectors_match_the_pods():
    labels = POD["metadata"]["labels"]
    assert matches(DEPLOYMENT["spec"]["selector"], labels)
    assert matches({"matchLabels": SERVICE["spec"]["selector"]}, labels)
    assert matches(PDB["spec"]["selector"], labels)
    for constraint in POD["spec"].get("topologySpreadConstraints", []):
        assert matches(constraint["labelSelector"], labels)


def test_service_targets_the_container_port():
    (port,) = SERVICE["spec"]["ports"]
    assert SERVICE["spec"]["type"] == "ClusterIP" and port["name"] == "http"
    assert container_port(CONTAINER, port["targetPort"]) == CONTAINER["ports"][0]["containerPort"]


def test_autoscalers_target_the_deployment():
    for hpa in (HPA, INFLIGHT_HPA):
        ref = hpa["spec"]["scaleTargetRef"]
        assert (ref["apiVersion"], ref["kind"], ref["name"]) == (
            "apps/v1",
            "Deployment",
            DEPLOYMENT["metadata"]["name"],
        )
        assert hpa["metadata"]["name"] == HPA["metadata"]["name"], "the monitoring HPA patches the base one"
        assert 2 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    (cpu,) = HPA["spec"]["metrics"]
    assert cpu["type"] == "Resource" and cpu["resource"]["name"] == "cpu"
    assert cpu["resource"]["target"]["type"] == "Utilization"
    assert cpu in INFLIGHT_HPA["spec"]["metrics"], "the in-flight HPA keeps scaling on CPU"


def test_disruption_budget_leaves_a_pod_serving():
    assert HPA["spec"]["minReplicas"] - PDB["spec"]["maxUnavailable"] >= 1


def test_inflight_autoscaling_matches_the_service_metric_and_the_adapter_rule(configured):
    metrics = Metrics()
    gauge = metrics.inflight
    assert gauge._type == "gauge" and gauge._name == "firstspike_inflight_requests"
    (pods,) = [m for m in INFLIGHT_HPA["spec"]["metrics"] if m["type"] == "Pods"]
    assert pods["pods"]["metric"]["name"] == gauge._name
    assert pods["pods"]["target"]["type"] == "AverageValue"
    target = float(pods["pods"]["target"]["averageValue"])
    assert 0 < target < configured.max_concurrency, "scale out before the pods shed load"

    (rule,) = documents(ADAPTER_RULES)[0]["rules"]
    assert gauge._name in rule["seriesQuery"]
    assert rule["resources"]["overrides"] == {
        "namespace": {"resource": "namespace"},
        "pod": {"resource": "pod"},
    }
    assert re.fullmatch(rule["name"]["matches"], gauge._name)
    assert rule["name"].get("as", gauge._name) == pods["pods"]["metric"]["name"]
    for placeholder in ("<<.Series>>", "<<.LabelMatchers>>", "<<.GroupBy>>"):
        assert placeholder in rule["metricsQuery"]


def test_service_monitor_scrapes_the_service():
    assert (SERVICE_MONITOR["apiVersion"], SERVICE_MONITOR["kind"]) == (
        "monitoring.coreos.com/v1",
        "ServiceMonitor",
    )
    assert SERVICE_MONITOR["metadata"]["name"]
    spec = SERVICE_MONITOR["spec"]
    assert spec["selector"]["matchLabels"] and matches(spec["selector"], SERVICE["metadata"]["labels"])
    assert "namespaceSelector" not in spec, "the Service's own namespace"
    (endpoint,) = spec["endpoints"]
    assert endpoint["port"] in {p["name"] for p in SERVICE["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    # job label = the Service's name, which docker/prometheus/alerts.yml expects
    assert "jobLabel" not in spec and SERVICE["metadata"]["name"] == "firstspike"
    assert 'job="firstspike"' in (ROOT / "docker" / "prometheus" / "alerts.yml").read_text()


def test_honor_labels_keeps_the_metrics_own_labels():
    """The operator adds target labels (endpoint, namespace, pod, service, container, job,
    instance). firstspike's metrics use `endpoint` themselves (so the ServiceMonitor honours the
    scraped labels) and none of the others (so honouring cannot hide them)."""
    target_labels = {"namespace", "pod", "service", "container", "job", "instance"}
    label_names = set()
    for metric in vars(Metrics()).values():
        label_names |= set(getattr(metric, "_labelnames", ()))
    assert "endpoint" in label_names and not label_names & target_labels
    assert SERVICE_MONITOR["spec"]["endpoints"][0]["honorLabels"] is True


# ---------------------------------------------------------------------------------------------
# KServe


def test_inference_service_runs_the_image_over_the_v2_protocol():
    assert (ISVC["apiVersion"], ISVC["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
    assert re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", ISVC["metadata"]["name"])
    assert ISVC["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] in {
        "RawDeployment",
        "Standard",
    }
    assert set(ISVC["spec"]) == {"predictor"}
    implementations = {
        "sklearn",
        "xgboost",
        "tensorflow",
        "pytorch",
        "triton",
        "onnx",
        "huggingface",
        "pmml",
        "lightgbm",
        "paddle",
        "model",
    }
    assert not implementations & set(PREDICTOR), "a custom predictor is containers only"
    (container,) = PREDICTOR["containers"]
    assert container["name"] == "kserve-container"
    assert container["image"] == CONTAINER["image"]
    assert (
        [p["containerPort"] for p in container["ports"]] == [8000] == [CONTAINER["ports"][0]["containerPort"]]
    )
    env = env_of(container)
    assert env["PROTOCOL"] == "v2", "a custom container declares the Open Inference Protocol with PROTOCOL=v2"
    assert env["FIRSTSPIKE_RUNTIME"] == "onnx"
    for probe, path in {"readinessProbe": "/v2/health/ready", "livenessProbe": "/v2/health/live"}.items():
        assert container[probe]["httpGet"] == {"path": path, "port": 8000}


def test_inference_service_pod_matches_the_deployment():
    assert PREDICTOR["securityContext"] == POD["spec"]["securityContext"]
    assert KSERVE_CONTAINER["securityContext"] == CONTAINER["securityContext"]
    assert KSERVE_CONTAINER["resources"] == CONTAINER["resources"]
    assert KSERVE_CONTAINER["volumeMounts"] == CONTAINER["volumeMounts"]
    assert PREDICTOR["volumes"] == POD["spec"]["volumes"]
    assert KSERVE_CONTAINER["lifecycle"] == CONTAINER["lifecycle"]
    assert PREDICTOR["terminationGracePeriodSeconds"] == POD["spec"]["terminationGracePeriodSeconds"]
    assert [e for e in KSERVE_CONTAINER["env"] if e["name"] == "FIRSTSPIKE_API_KEY"] == CONTAINER["env"]
    assert matches(PDB["spec"]["selector"], PREDICTOR["labels"]), "the base PDB covers the predictor pods"


def test_inference_service_pod_spec_validates_strictly(no_network):
    """The predictor is a PodSpec plus KServe's extension fields: the PodSpec part must be valid."""
    pod_spec = {key: value for key, value in PREDICTOR.items() if key not in KSERVE_EXTENSION_FIELDS}
    validate(
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": ISVC["metadata"]["name"]}, "spec": pod_spec}
    )


# ---------------------------------------------------------------------------------------------
# kubectl kustomize (skipped where kubectl is not installed)


def kustomize(folder: str) -> list[dict]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    completed = subprocess.run(
        [kubectl, "kustomize", str(KUBERNETES / folder)], capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == 0, completed.stderr
    return [doc for doc in yaml.safe_load_all(completed.stdout) if doc is not None]


def identity(obj: dict) -> tuple[str, str, str]:
    return obj["apiVersion"], obj["kind"], obj["metadata"]["name"]


def test_kustomize_renders_the_base(no_network):
    rendered = kustomize("base")
    assert sorted(map(identity, rendered)) == sorted(map(identity, BASE))
    by_identity = {identity(obj): obj for obj in BASE}
    for obj in rendered:
        validate(obj)
        if obj["kind"] != "Deployment":
            assert obj == by_identity[identity(obj)]
    name, tag = CONTAINER["image"].split(":")
    override = {image["name"]: image for image in kustomization("base").get("images", [])}.get(name, {})
    expected = f"{override.get('newName', name)}:{override.get('newTag', tag)}"
    assert one(rendered, "Deployment")["spec"]["template"]["spec"]["containers"][0]["image"] == expected


def test_kustomize_renders_the_monitoring_variant(no_network):
    rendered = kustomize("monitoring")
    assert sorted(map(identity, rendered)) == sorted(map(identity, BASE + [SERVICE_MONITOR]))
    hpa = one(rendered, "HorizontalPodAutoscaler")
    assert hpa["spec"]["metrics"] == INFLIGHT_HPA["spec"]["metrics"], "the patch replaces the metrics list"
    for obj in rendered:
        if obj["kind"] != "ServiceMonitor":
            validate(obj)


def test_kustomize_renders_the_kserve_variant(no_network):
    rendered = kustomize("kserve")
    kept = [
        obj
        for obj in BASE
        if obj["kind"] in {"ConfigMap", "Secret", "PersistentVolumeClaim", "PodDisruptionBudget"}
    ]
    assert sorted(map(identity, rendered)) == sorted(map(identity, kept + [ISVC]))
    for obj in rendered:
        if obj["kind"] != "InferenceService":
            validate(obj)
