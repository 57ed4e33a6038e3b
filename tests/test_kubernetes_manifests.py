"""platform/kubernetes/: every manifest parses and is valid for its kind — Kubernetes' own
kinds against the API's JSON schemas (kubernetes-validate, strict: an unknown field is an
error), KEDA's ScaledObject and Karpenter's NodePool/EC2NodeClass against the fields their
documentation names — and the manifests agree with the code: environment variables exist
in .env.example, the worker's grace outlasts the shutdown grace, the autoscaler's bounds
are the pool's, and the gauges it reads are the ones /metrics serves."""

import re
import tomllib
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
MANIFESTS = sorted((REPO / "platform" / "kubernetes").glob("*.yaml"))
KUBERNETES_VERSION = "1.34.0"

DURATION = {"type": "string", "pattern": r"^([0-9]+(s|m|h))+$|^Never$"}
SELECTOR_TERMS = {"type": "array", "minItems": 1, "items": {"type": "object"}}
# The fields of the CRDs' documentation (KEDA 2.x ScaledObject; Karpenter v1 NodePool and
# EC2NodeClass), with unknown fields refused where a typo would silently do nothing.
CRD_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): {
        "type": "object",
        "required": ["scaleTargetRef", "triggers"],
        "additionalProperties": False,
        "properties": {
            "scaleTargetRef": {
                "type": "object", "required": ["name"], "additionalProperties": False,
                "properties": {"name": {"type": "string"}, "kind": {"type": "string"}, "apiVersion": {"type": "string"},
                               "envSourceContainerName": {"type": "string"}},
            },
            "pollingInterval": {"type": "integer", "minimum": 1},
            "cooldownPeriod": {"type": "integer", "minimum": 0},
            "initialCooldownPeriod": {"type": "integer", "minimum": 0},
            "idleReplicaCount": {"type": "integer", "minimum": 0},
            "minReplicaCount": {"type": "integer", "minimum": 0},
            "maxReplicaCount": {"type": "integer", "minimum": 1},
            "fallback": {"type": "object"},
            "advanced": {
                "type": "object", "additionalProperties": False,
                "properties": {"restoreToOriginalReplicaCount": {"type": "boolean"}, "scalingModifiers": {"type": "object"},
                               "horizontalPodAutoscalerConfig": {
                                   "type": "object", "additionalProperties": False,
                                   "properties": {"name": {"type": "string"}, "behavior": {"type": "object"}}}},
            },
            "triggers": {
                "type": "array", "minItems": 1,
                "items": {
                    "type": "object", "required": ["type", "metadata"], "additionalProperties": False,
                    "properties": {
                        "type": {"type": "string"}, "name": {"type": "string"}, "useCachedMetrics": {"type": "boolean"},
                        "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
                        "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
                        "authenticationRef": {"type": "object", "required": ["name"]},
                    },
                },
            },
        },
    },
    ("karpenter.sh/v1", "NodePool"): {
        "type": "object",
        "required": ["template"],
        "additionalProperties": False,
        "properties": {
            "weight": {"type": "integer", "minimum": 1, "maximum": 100},
            "limits": {"type": "object", "additionalProperties": {"type": ["string", "integer"]}},
            "disruption": {
                "type": "object", "additionalProperties": False,
                "properties": {"consolidationPolicy": {"enum": ["WhenEmpty", "WhenEmptyOrUnderutilized"]},
                               "consolidateAfter": DURATION, "budgets": {"type": "array"}},
            },
            "template": {
                "type": "object", "required": ["spec"], "additionalProperties": False,
                "properties": {
                    "metadata": {"type": "object", "additionalProperties": False,
                                 "properties": {"labels": {"type": "object"}, "annotations": {"type": "object"}}},
                    "spec": {
                        "type": "object", "required": ["nodeClassRef", "requirements"], "additionalProperties": False,
                        "properties": {
                            "nodeClassRef": {"type": "object", "required": ["group", "kind", "name"], "additionalProperties": False,
                                             "properties": {"group": {"type": "string"}, "kind": {"type": "string"},
                                                            "name": {"type": "string"}}},
                            "requirements": {"type": "array", "items": {
                                "type": "object", "required": ["key", "operator"], "additionalProperties": False,
                                "properties": {"key": {"type": "string"}, "values": {"type": "array", "items": {"type": "string"}},
                                               "operator": {"enum": ["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"]},
                                               "minValues": {"type": "integer"}}}},
                            "taints": {"type": "array", "items": {
                                "type": "object", "required": ["key", "effect"], "additionalProperties": False,
                                "properties": {"key": {"type": "string"}, "value": {"type": "string"},
                                               "effect": {"enum": ["NoSchedule", "PreferNoSchedule", "NoExecute"]}}}},
                            "startupTaints": {"type": "array"},
                            "expireAfter": DURATION,
                            "terminationGracePeriod": DURATION,
                        },
                    },
                },
            },
        },
    },
    ("karpenter.k8s.aws/v1", "EC2NodeClass"): {
        "type": "object",
        "required": ["amiSelectorTerms", "subnetSelectorTerms", "securityGroupSelectorTerms"],
        "oneOf": [{"required": ["role"]}, {"required": ["instanceProfile"]}],
        "additionalProperties": False,
        "properties": {
            "role": {"type": "string"}, "instanceProfile": {"type": "string"},
            "amiSelectorTerms": SELECTOR_TERMS, "subnetSelectorTerms": SELECTOR_TERMS,
            "securityGroupSelectorTerms": SELECTOR_TERMS, "amiFamily": {"type": "string"},
            "blockDeviceMappings": {"type": "array"}, "tags": {"type": "object"}, "userData": {"type": "string"},
            "kubelet": {"type": "object"}, "metadataOptions": {"type": "object"}, "detailedMonitoring": {"type": "boolean"},
            "associatePublicIPAddress": {"type": "boolean"}, "instanceStorePolicy": {"enum": ["RAID0"]},
        },
    },
}


def documents() -> list[dict]:
    return [doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc]


def named(kind: str, name: str) -> dict:
    return next(doc for doc in documents() if doc["kind"] == kind and doc["metadata"]["name"] == name)


def containers(doc: dict) -> list[dict]:
    """The containers of a workload's pod template (Deployment, Job); none for other kinds."""
    if doc["kind"] not in {"Deployment", "Job", "StatefulSet", "DaemonSet"}:
        return []
    return doc["spec"]["template"]["spec"]["containers"]


def test_there_are_manifests_for_web_beat_workers_keda_and_karpenter():
    kinds = {(doc["kind"], doc["metadata"]["name"]) for doc in documents()}
    for wanted in [("Deployment", "framecast-web"), ("Deployment", "framecast-beat"), ("Deployment", "framecast-worker-h100"),
                   ("ScaledObject", "framecast-worker-h100"), ("NodePool", "gpu-h100-spot"),
                   ("NodePool", "gpu-h100-on-demand"), ("ConfigMap", "framecast-config")]:
        assert wanted in kinds


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda path: path.name)
def test_every_manifest_is_valid_for_its_kind(path):
    for doc in yaml.safe_load_all(path.read_text()):
        if not doc:
            continue
        crd = CRD_SCHEMAS.get((doc["apiVersion"], doc["kind"]))
        if crd is None:
            try:
                kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
            except kubernetes_validate.ValidationError as error:
                pytest.fail(f"{path.name}: {doc['kind']} {doc['metadata']['name']}: {error.message} at {list(error.path)}")
        else:
            assert set(doc) == {"apiVersion", "kind", "metadata", "spec"}
            assert doc["metadata"]["name"]
            jsonschema.validate(doc["spec"], crd)


def test_the_validator_refuses_a_mistyped_field():
    """So that the test above can fail: strict validation knows every field of a Deployment."""
    worker = named("Deployment", "framecast-worker-h100")
    worker["spec"]["template"]["spec"]["terminationGracePeriod"] = 120  # the real name ends in Seconds
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(worker, KUBERNETES_VERSION, strict=True)
    scaled = named("ScaledObject", "framecast-worker-h100")
    scaled["spec"]["maxReplicas"] = 3  # KEDA's is maxReplicaCount
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(scaled["spec"], CRD_SCHEMAS[("keda.sh/v1alpha1", "ScaledObject")])


def test_every_environment_variable_they_set_is_in_env_example():
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (REPO / ".env.example").read_text(), re.MULTILINE))
    used = set()
    for doc in documents():
        if doc["kind"] == "ConfigMap":
            used |= set(doc["data"])
        if doc["kind"] == "Secret":
            used |= set(doc.get("stringData", {})) | set(doc.get("data", {}))
        for container in containers(doc):
            used |= {variable["name"] for variable in container.get("env", [])}
    assert used and not (missing := sorted(used - documented)), f"not in .env.example: {missing}"


def test_every_config_map_and_secret_they_read_is_among_them():
    provided = {(doc["kind"], doc["metadata"]["name"]) for doc in documents()}
    for doc in documents():
        for container in containers(doc):
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert ("ConfigMap", source["configMapRef"]["name"]) in provided
                if "secretRef" in source:
                    assert ("Secret", source["secretRef"]["name"]) in provided


def test_the_gpu_worker_asks_for_one_gpu_runs_one_job_and_outlasts_its_shutdown_grace():
    worker = named("Deployment", "framecast-worker-h100")
    pod = worker["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    command = container["command"]
    assert command[command.index("-Q") + 1] == "gpu.h100"
    assert command[command.index("--concurrency") + 1] == "1"
    assert command[command.index("--prefetch-multiplier") + 1] == "1"
    assert pod["metadata"]["annotations"]["karpenter.sh/do-not-disrupt"] == "true"
    grace = float(next(v["value"] for v in container["env"] if v["name"] == "FRAMECAST_SHUTDOWN_GRACE_SECONDS"))
    # The shutdown grace, then a denoising step and the store of the clip in hand (>= 20 s).
    assert pod["spec"]["terminationGracePeriodSeconds"] >= grace + 20
    assert "preStop" not in container.get("lifecycle", {})  # it would only delay the SIGTERM
    # It lands on the GPU NodePools' nodes, and only there.
    taints = {(t["key"], t["effect"]) for name in ("gpu-h100-spot", "gpu-h100-on-demand")
              for t in named("NodePool", name)["spec"]["template"]["spec"]["taints"]}
    tolerated = {(t["key"], t["effect"]) for t in pod["spec"]["tolerations"]}
    assert taints <= tolerated
    for name in ("gpu-h100-spot", "gpu-h100-on-demand"):
        labels = named("NodePool", name)["spec"]["template"]["metadata"]["labels"]
        assert pod["spec"]["nodeSelector"].items() <= labels.items()


def test_the_autoscaler_reads_the_pools_gauge_within_the_pools_bounds():
    from ops.prometheus import POOL_GAUGES

    pools = {pool["name"]: pool for pool in tomllib.loads((REPO / "generation" / "pools.toml").read_text())["pools"]}
    scaled = named("ScaledObject", "framecast-worker-h100")["spec"]
    assert scaled["scaleTargetRef"]["name"] == "framecast-worker-h100"
    assert (scaled["minReplicaCount"], scaled["maxReplicaCount"]) == (pools["h100"]["min_workers"], pools["h100"]["max_workers"])
    (trigger,) = scaled["triggers"]
    assert trigger["type"] == "prometheus" and trigger["metadata"]["threshold"] == "1"
    gauges = set(re.findall(r"framecast_pool_[a-z_]+", trigger["metadata"]["query"]))
    assert gauges and gauges <= {name for name, _, _ in POOL_GAUGES} | {"framecast_pool_desired_workers"}
    assert 'pool="h100"' in trigger["metadata"]["query"]
    # Spot first (higher weight), on-demand behind it, and room for max_workers GPUs in all.
    spot, on_demand = named("NodePool", "gpu-h100-spot")["spec"], named("NodePool", "gpu-h100-on-demand")["spec"]
    capacity = {
        name: next(r["values"] for r in pool["template"]["spec"]["requirements"] if r["key"] == "karpenter.sh/capacity-type")
        for name, pool in (("spot", spot), ("on-demand", on_demand))
    }
    assert capacity == {"spot": ["spot"], "on-demand": ["on-demand"]} and spot["weight"] > on_demand["weight"]
    assert int(spot["limits"]["nvidia.com/gpu"]) + int(on_demand["limits"]["nvidia.com/gpu"]) >= pools["h100"]["max_workers"]


def test_exactly_one_beat_and_web_probes_on_the_health_endpoints():
    beat = named("Deployment", "framecast-beat")["spec"]
    assert beat["replicas"] == 1 and beat["strategy"]["type"] == "Recreate"
    (web,) = containers(named("Deployment", "framecast-web"))
    assert web["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"
