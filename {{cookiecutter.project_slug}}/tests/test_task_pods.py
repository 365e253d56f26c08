"""deploy/k8s/pod_template.yaml: the task pods the KubernetesExecutor creates from it are hardened.

The pod template is read with the cncf.kubernetes provider's own loader, and task pods are
built with the same PodGenerator.construct_pod call the KubernetesExecutor makes, so these
tests see the pods the scheduler would create.
"""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest
import yaml

from conftest import DAGS_FOLDER, PROJECT_ROOT, airflow_cfg, configured_executors, helm_env_names, helm_values

POD_TEMPLATE = PROJECT_ROOT / "deploy" / "k8s" / "pod_template.yaml"
# The chart renders the pod template as a template; this is the service account its own pod
# template (files/pod-template-file.kubernetes-helm-yaml) gives task pods.
CHART_WORKER_SERVICE_ACCOUNT = '{{ include "worker.serviceAccountName" . }}'

# The official image: its "airflow" user, and AIRFLOW_HOME=/opt/airflow.
AIRFLOW_UID = 50000
DAGS_IN_IMAGE = PurePosixPath("/opt/airflow/dags")
SCRATCH_PATHS = {PurePosixPath("/tmp"), PurePosixPath("/opt/airflow/logs")}
TASK_COMMAND = ["python", "-m", "airflow.sdk.execution_time.execute_workload", "--json-string", "{}"]


def template_pod():
    from airflow.providers.cncf.kubernetes.pod_generator import PodGenerator

    pod = PodGenerator.deserialize_model_file(str(POD_TEMPLATE))
    assert pod is not None and pod.spec is not None, f"{POD_TEMPLATE} holds no pod"
    return pod


def task_pod(executor_config: dict | None = None):
    """The pod the KubernetesExecutor would create for a task with this executor_config."""
    from airflow.providers.cncf.kubernetes.pod_generator import PodGenerator

    images = helm_values()["images"]["airflow"]
    return PodGenerator.construct_pod(
        dag_id="a_dag",
        task_id="a_task",
        pod_id="a-dag-a-task",
        try_number=1,
        kube_image=f"{images['repository']}:{images['tag']}",
        date=None,
        args=TASK_COMMAND,
        pod_override_object=PodGenerator.from_obj(executor_config),
        base_worker_pod=template_pod(),
        namespace="airflow",
        scheduler_job_id="1",
        run_id="manual__1",
    )


def writable_paths(container) -> set[PurePosixPath]:
    return {PurePosixPath(mount.mount_path) for mount in container.volume_mounts or [] if not mount.read_only}


def overlaps(path: PurePosixPath, other: PurePosixPath) -> bool:
    return path.is_relative_to(other) or other.is_relative_to(path)


def assert_requests_within_limits(container) -> None:
    from kubernetes.utils import parse_quantity

    resources = container.resources
    assert resources and resources.requests and resources.limits, "set both requests and limits"
    for name in ("cpu", "memory"):
        assert name in resources.requests and name in resources.limits, f"{name} needs a request and a limit"
        request, limit = parse_quantity(resources.requests[name]), parse_quantity(resources.limits[name])
        assert request <= limit, f"{name} request {resources.requests[name]} exceeds its limit"


def test_template_holds_only_fields_kubernetes_knows():
    # The loader silently drops misspelled keys ("securityContex"), which would leave a pod
    # without the setting; a lossless round trip proves every key was understood.
    from airflow.providers.cncf.kubernetes.pod_generator import PodGenerator

    assert PodGenerator.serialize_pod(template_pod()) == yaml.safe_load(POD_TEMPLATE.read_text())


def test_task_pods_run_as_the_charts_worker_service_account():
    # Its cloud identity (IRSA, Workload Identity) reads the DAG bundle, XComs and remote logs;
    # the namespace's "default" account has none.
    assert task_pod().spec.service_account_name == CHART_WORKER_SERVICE_ACCOUNT
    assert helm_values()["workers"]["serviceAccount"]["create"] is True


def test_the_task_runs_in_the_template_container_named_base():
    template, pod = template_pod(), task_pod()
    assert template.spec.containers[0].name == "base"
    assert [container.name for container in pod.spec.containers] == ["base"]
    assert pod.spec.containers[0].args == TASK_COMMAND


def test_task_pods_run_as_the_airflow_user_without_privileges():
    pod = task_pod()
    pod_security = pod.spec.security_context
    assert pod_security.run_as_non_root is True
    assert pod_security.run_as_user == AIRFLOW_UID
    assert pod_security.fs_group == 0
    assert pod_security.seccomp_profile.type == "RuntimeDefault"
    container_security = pod.spec.containers[0].security_context
    assert container_security.allow_privilege_escalation is False
    assert not container_security.privileged
    assert container_security.capabilities.drop == ["ALL"]
    assert not container_security.capabilities.add
    assert pod.spec.automount_service_account_token is False


def test_only_scratch_space_is_writable():
    pod = task_pod()
    container = pod.spec.containers[0]
    assert container.security_context.read_only_root_filesystem is True
    assert writable_paths(container) == SCRATCH_PATHS
    volumes = {volume.name: volume for volume in pod.spec.volumes}
    for mount in container.volume_mounts:
        if not mount.read_only:
            scratch = volumes[mount.name].empty_dir
            assert scratch is not None and scratch.size_limit, f"{mount.mount_path}: use an emptyDir with a sizeLimit"


def test_dags_are_read_only_in_task_pods():
    values, container = helm_values(), task_pod().spec.containers[0]
    over_dags = sorted(str(path) for path in writable_paths(container) if overlaps(path, DAGS_IN_IMAGE))
    assert not over_dags, f"DAGs would be writable through {over_dags}"
    dags_mounts = [mount for mount in container.volume_mounts if PurePosixPath(mount.mount_path) == DAGS_IN_IMAGE]
    if values["dags"]["gitSync"]["enabled"] or values["dags"]["persistence"]["enabled"]:
        assert dags_mounts and all(mount.read_only for mount in dags_mounts), (
            f"the chart delivers DAGs on a volume: mount it read-only at {DAGS_IN_IMAGE} in the pod template"
        )
    else:
        assert not dags_mounts, "DAGs are baked into the image; a volume at the DAGs folder would hide them"


def test_task_pods_have_resource_requests_within_limits():
    assert_requests_within_limits(task_pod().spec.containers[0])


def test_task_pods_get_no_database_credentials():
    container = task_pod().spec.containers[0]
    env = {variable.name: variable for variable in container.env or []}
    database = sorted(name for name in env if "SQL_ALCHEMY_CONN" in name or name == "AIRFLOW_CONN_AIRFLOW_DB")
    assert not database, f"Airflow 3 tasks reach the DB through the API server only: {database}"
    secret_sources = [source for source in container.env_from or [] if source.secret_ref]
    assert not secret_sources, "task pods take no whole Secret into their environment"
    # Without DB credentials the image's entrypoint must not wait for the DB.
    wait_for_db = env.get("CONNECTION_CHECK_MAX_COUNT")
    assert wait_for_db is not None and wait_for_db.value == "0", "set CONNECTION_CHECK_MAX_COUNT=0"


def test_task_pods_run_the_image_the_chart_deploys():
    images = helm_values()["images"]["airflow"]
    # The scheduler replaces the template's image (worker_container_repository and _tag).
    assert task_pod().spec.containers[0].image == f"{images['repository']}:{images['tag']}"
    placeholder = template_pod().spec.containers[0].image
    assert placeholder.rpartition(":")[0] == images["repository"], "keep the template's image in step with values.yaml"


def test_task_pods_share_the_runtime_settings_of_every_component():
    values = helm_values()
    # airflow-team-config is made from config/airflow.overrides.env before each upgrade.
    config_maps = set(values.get("extraConfigMaps", {})) | {"airflow-team-config"}
    shared = yaml.safe_load(values["extraEnvFrom"])
    assert {source["configMapRef"]["name"] for source in shared} <= config_maps
    from_template = {source.config_map_ref.name for source in template_pod().spec.containers[0].env_from or []}
    assert from_template and from_template <= config_maps, "the pod template reads a ConfigMap values.yaml creates"
    assert {source["configMapRef"]["name"] for source in shared} == from_template, "task pods get what components get"
    assert "AIRFLOW__CORE__EXECUTION_API_SERVER_URL" in helm_env_names(values)


def test_every_pod_override_merges_onto_the_hardened_template(dag_bag):
    from airflow.serialization.serialized_objects import DagSerialization

    overrides = {}
    for dag_id, dag in sorted(dag_bag.dags.items()):
        # The scheduler sees executor_config after the DAG went through serialization.
        for task in DagSerialization.from_dict(DagSerialization.to_dict(dag)).tasks:
            if (task.executor_config or {}).get("pod_override") is not None:
                overrides[f"{dag_id}.{task.task_id}"] = task.executor_config
    if not overrides:
        pytest.skip("no task overrides its pod")
    template = template_pod()
    for task_name, executor_config in overrides.items():
        pod = task_pod(executor_config)
        container = pod.spec.containers[0]
        assert [c.name for c in pod.spec.containers] == ["base"], f"{task_name}: override the container named base"
        assert pod.spec.security_context == template.spec.security_context, task_name
        assert container.security_context == template.spec.containers[0].security_context, task_name
        assert writable_paths(container) == SCRATCH_PATHS, task_name
        assert_requests_within_limits(container)


def test_heavy_task_gets_its_own_resources_and_keeps_the_rest(dag_bag):
    # The example that offloads a heavy task to a pod comes with the examples of a Celery and Kubernetes project.
    hybrid = set(configured_executors()) == {"CeleryExecutor", "KubernetesExecutor"}
    if not (hybrid and any(DAGS_FOLDER.glob("example_*.py"))):
        pytest.skip("only the examples of a Celery and Kubernetes project offload a task to a pod")
    from airflow.serialization.serialized_objects import DagSerialization

    dag = dag_bag.dags["example_kubernetes_offload"]
    crunch = DagSerialization.from_dict(DagSerialization.to_dict(dag)).get_task("crunch")
    container = task_pod(crunch.executor_config).spec.containers[0]
    assert container.resources.requests == {"cpu": "2", "memory": "4Gi"}
    assert container.resources.limits == {"cpu": "2", "memory": "4Gi"}
    assert container.args == TASK_COMMAND
    env = {variable.name for variable in container.env}
    assert {"CONNECTION_CHECK_MAX_COUNT", "AIRFLOW_IS_K8S_EXECUTOR_POD"} <= env


def test_pod_template_path_comes_from_helm_not_airflow_cfg():
    cfg = airflow_cfg()
    assert not cfg.has_option("kubernetes_executor", "pod_template_file"), "machine paths stay out of airflow.cfg"
    assert "AIRFLOW__KUBERNETES_EXECUTOR__POD_TEMPLATE_FILE" in helm_env_names(helm_values())
