#!/usr/bin/env python3
"""Checks of deploy/ that no off-the-shelf validator makes, run by deploy/check.sh.

Each subcommand prints what it found wrong and exits 1, or prints a one-line summary and
exits 0. Needs PyYAML (deploy/check.sh runs it in its tool venv, where kubernetes-validate
brought it).

  rendered OVERLAY RENDERED.yaml   policy of a `kubectl kustomize` output: hardening,
                                   probes, replicas, the routes ConfigMap mounted as a
                                   directory and identical to the file in Git, no Secrets
  compose CONFIG.yaml              `docker compose config` output: targets exist in the
                                   Dockerfile, bind-mount sources exist
  images                           every image the manifests name is a Dockerfile target
  argocd                           the Application points at an overlay of this repo,
                                   into the namespace that overlay renders
  grafana                          the dashboard's structure (ids, datasources, queries)
  scrape-for-promtool IN OUT       kubernetes.yml with its Kubernetes SD replaced by a
                                   static target, for promtool builds without that SD
"""

import json
import re
import sys
from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parent
REPO = DEPLOY.parent
ROUTES_FILE = DEPLOY / "k8s" / "base" / "routes" / "routes.toml"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"


def fail(problems, what):
    if problems:
        for problem in problems:
            print(f"  {what}: {problem}")
        sys.exit(1)


def dockerfile_targets():
    targets = set()
    for line in DOCKERFILE.read_text().splitlines():
        match = re.match(r"^FROM\s+\S+\s+AS\s+(\S+)", line, re.IGNORECASE)
        if match:
            targets.add(match.group(1))
    return targets


def pod_specs(doc):
    kind = doc.get("kind")
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"):
        yield doc["spec"]["template"]["spec"]
    elif kind == "Pod":
        yield doc["spec"]


def rendered(overlay, path):
    docs = [d for d in yaml.safe_load_all(Path(path).read_text()) if d]
    problems = []
    by_kind = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], []).append(doc)
    namespaces = {d["metadata"]["name"] for d in by_kind.get("Namespace", [])}
    for doc in docs:
        name = f'{doc["kind"]}/{doc["metadata"]["name"]}'
        if doc["kind"] != "Namespace" and doc["metadata"].get("namespace") not in namespaces:
            problems.append(f"{name} is not in the overlay's namespace {sorted(namespaces)}")
    if by_kind.get("Secret"):
        problems.append("the manifests hold a Secret: keys and tokens never go into Git")
    deployments = {d["metadata"]["name"]: d for d in by_kind.get("Deployment", [])}
    for wanted in ("strangler", "legacy", "thoughts", "users", "frontend"):
        if wanted not in deployments:
            problems.append(f"no Deployment `{wanted}`")
    services = {d["metadata"]["name"]: d for d in by_kind.get("Service", [])}
    for wanted in ("strangler", "legacy", "thoughts", "users", "frontend"):
        if wanted not in services:
            problems.append(f"no Service `{wanted}`")

    for doc in docs:
        for spec in pod_specs(doc):
            name = f'{doc["kind"]}/{doc["metadata"]["name"]}'
            pod_security = spec.get("securityContext", {})
            if pod_security.get("seccompProfile", {}).get("type") != "RuntimeDefault":
                problems.append(f"{name}: seccompProfile is not RuntimeDefault")
            if spec.get("automountServiceAccountToken") is not False:
                problems.append(f"{name}: mounts a service account token it does not use")
            for container in spec.get("containers", []) + spec.get("initContainers", []):
                where = f'{name} container {container["name"]}'
                security = container.get("securityContext", {})
                if security.get("readOnlyRootFilesystem") is not True:
                    problems.append(f"{where}: root filesystem is not read-only")
                if security.get("allowPrivilegeEscalation") is not False:
                    problems.append(f"{where}: privilege escalation is not disabled")
                if not (security.get("runAsNonRoot") or pod_security.get("runAsNonRoot")):
                    problems.append(f"{where}: may run as root")
                if security.get("capabilities", {}).get("drop") != ["ALL"]:
                    problems.append(f"{where}: capabilities are not all dropped")
                resources = container.get("resources", {})
                if not resources.get("requests") or not resources.get("limits", {}).get("memory"):
                    problems.append(f"{where}: no resource requests or memory limit")
                if "livenessProbe" not in container or "readinessProbe" not in container:
                    problems.append(f"{where}: no liveness or readiness probe")
                if container.get("image", "").endswith(":latest") or ":" not in container.get("image", ""):
                    problems.append(f"{where}: image `{container.get('image')}` has no pinned tag")

    strangler = deployments.get("strangler")
    if strangler:
        spec = strangler["spec"]
        if spec.get("replicas", 1) < 2:
            problems.append("Deployment/strangler has fewer than 2 replicas")
        pod = spec["template"]["spec"]
        container = pod["containers"][0]
        if container.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/healthz":
            problems.append("strangler's liveness probe is not GET /healthz")
        if container.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/readyz":
            problems.append("strangler's readiness probe is not GET /readyz")
        if not pod.get("topologySpreadConstraints"):
            problems.append("strangler has no topology spread constraints")
        args = container.get("args", [])
        if "--log-format" not in args or args[args.index("--log-format") + 1] != "json":
            problems.append("strangler does not log JSON (--log-format json)")
        annotations = strangler["spec"]["template"]["metadata"].get("annotations", {})
        if annotations.get("prometheus.io/scrape") != "true":
            problems.append("strangler pods lack the prometheus.io/scrape annotation")
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        routes_volumes = [n for n, v in volumes.items() if v.get("configMap", {}).get("name") == "strangler-routes"]
        if not routes_volumes:
            problems.append("strangler does not mount the ConfigMap strangler-routes")
        for mount in container.get("volumeMounts", []):
            if mount["name"] in routes_volumes:
                if "subPath" in mount:
                    problems.append("strangler mounts routes.toml with subPath: it would never see an update")
                config = args[args.index("--config") + 1] if "--config" in args else ""
                if config != mount["mountPath"].rstrip("/") + "/routes.toml":
                    problems.append(f"--config {config} is not routes.toml in the mounted directory {mount['mountPath']}")
    pdbs = [d for d in by_kind.get("PodDisruptionBudget", []) if d["metadata"]["name"] == "strangler"]
    if not pdbs:
        problems.append("no PodDisruptionBudget for strangler")
    if not by_kind.get("Ingress"):
        problems.append("no Ingress")

    configmaps = {d["metadata"]["name"]: d for d in by_kind.get("ConfigMap", [])}
    routes = configmaps.get("strangler-routes")
    if routes is None:
        problems.append("no ConfigMap strangler-routes (a hash suffix would break hot reload)")
    elif routes.get("data", {}).get("routes.toml") != ROUTES_FILE.read_text():
        problems.append(f"ConfigMap strangler-routes differs from {ROUTES_FILE.relative_to(REPO)}")
    fail(problems, overlay)
    print(f"  {overlay}: {len(docs)} objects, policy ok, routes ConfigMap identical to the file in Git")


def compose(path):
    config = yaml.safe_load(Path(path).read_text())
    targets = dockerfile_targets()
    problems = []
    services = config.get("services", {})
    for wanted in ("legacy", "thoughts", "users", "frontend", "strangler", "prometheus", "grafana"):
        if wanted not in services:
            problems.append(f"no service `{wanted}`")
    for name, service in services.items():
        build = service.get("build")
        if isinstance(build, dict):
            dockerfile = Path(build["context"]) / build.get("dockerfile", "Dockerfile")
            if dockerfile.resolve() != DOCKERFILE:
                problems.append(f"{name}: builds {dockerfile}, not {DOCKERFILE}")
            if build.get("target") not in targets:
                problems.append(f"{name}: Dockerfile has no target `{build.get('target')}`")
        for volume in service.get("volumes", []):
            source = volume.get("source") if isinstance(volume, dict) else volume.split(":")[0]
            kind = volume.get("type") if isinstance(volume, dict) else ("bind" if source.startswith(("/", ".")) else "volume")
            if kind == "bind" and not Path(source).exists():
                problems.append(f"{name}: bind mount source {source} does not exist")
    strangler = services.get("strangler", {})
    mounts = [v if isinstance(v, str) else f'{v.get("source")}:{v.get("target")}' for v in strangler.get("volumes", [])]
    routes_dir = str(ROUTES_FILE.parent)
    if not any(m.startswith(routes_dir + ":") for m in mounts):
        problems.append(f"strangler does not bind-mount the directory {routes_dir}")
    fail(problems, "compose")
    print(f"  compose: {len(services)} services, build targets and bind mounts ok")


def images():
    targets = dockerfile_targets()
    problems = []
    base = DEPLOY / "k8s" / "base"
    for path in sorted(base.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc:
                continue
            for spec in pod_specs(doc):
                for container in spec.get("containers", []):
                    image = container["image"].rsplit(":", 1)[0]
                    if image not in targets:
                        problems.append(f"{path.name}: image `{image}` is no target of {DOCKERFILE.name}")
    fail(problems, "images")
    print(f"  images: every image of the manifests is a Dockerfile target ({len(targets)} stages)")


def argocd(rendered_dir):
    problems = []
    for path in sorted((DEPLOY / "k8s" / "argocd").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc:
                continue
            if doc.get("apiVersion") != "argoproj.io/v1alpha1" or doc.get("kind") != "Application":
                problems.append(f"{path.name}: not an argoproj.io/v1alpha1 Application")
                continue
            source = doc["spec"]["source"]
            overlay = REPO / source["path"]
            if not (overlay / "kustomization.yaml").is_file():
                problems.append(f"{path.name}: spec.source.path {source['path']} is no kustomization here")
                continue
            render = Path(rendered_dir) / f"{overlay.name}.yaml"
            namespaces = [
                d["metadata"]["name"] for d in yaml.safe_load_all(render.read_text()) if d and d["kind"] == "Namespace"
            ]
            if [doc["spec"]["destination"].get("namespace")] != namespaces:
                problems.append(
                    f"{path.name}: destination namespace {doc['spec']['destination'].get('namespace')} "
                    f"is not the one {source['path']} renders ({namespaces})"
                )
            for key in ("repoURL", "targetRevision"):
                if not source.get(key):
                    problems.append(f"{path.name}: spec.source.{key} is empty")
    fail(problems, "argocd")
    print("  argocd: the Application syncs an overlay of this repository into its namespace")


def grafana():
    dashboard = json.loads((DEPLOY / "grafana" / "strangler.json").read_text())
    problems = []
    variables = {v["name"]: v for v in dashboard.get("templating", {}).get("list", [])}
    if variables.get("datasource", {}).get("type") != "datasource":
        problems.append("no `datasource` variable: the dashboard would be tied to one Grafana")
    ids = []
    panels = []
    for panel in dashboard.get("panels", []):
        panels.append(panel)
        panels.extend(panel.get("panels", []))
    queries = 0
    for panel in panels:
        ids.append(panel.get("id"))
        if panel.get("type") == "row":
            continue
        if panel.get("datasource", {}).get("uid") != "${datasource}":
            problems.append(f"panel `{panel.get('title')}` does not use the datasource variable")
        for target in panel.get("targets", []):
            if not target.get("expr"):
                problems.append(f"panel `{panel.get('title')}` has a target without a query")
            queries += 1
        if not panel.get("targets"):
            problems.append(f"panel `{panel.get('title')}` has no query")
    if len(ids) != len(set(ids)):
        problems.append("panel ids are not unique")
    titles = " ".join(p.get("title", "").lower() for p in panels)
    for topic in ("stage", "side", "parity", "p50", "p99", "5xx", "reload"):
        if topic not in titles:
            problems.append(f"no panel about `{topic}`")
    fail(problems, "grafana")
    print(f"  grafana: {len(panels)} panels, {queries} queries, datasource variable, ids unique")


def scrape_for_promtool(source, out):
    config = yaml.safe_load(Path(source).read_text())
    for job in config.get("scrape_configs", []):
        if job.pop("kubernetes_sd_configs", None) is not None:
            job["static_configs"] = [{"targets": ["pod-address:9100"]}]
    Path(out).write_text(yaml.safe_dump(config))


def main(argv):
    commands = {
        "rendered": lambda a: rendered(a[0], a[1]),
        "compose": lambda a: compose(a[0]),
        "images": lambda a: images(),
        "argocd": lambda a: argocd(a[0]),
        "grafana": lambda a: grafana(),
        "scrape-for-promtool": lambda a: scrape_for_promtool(a[0], a[1]),
    }
    if len(argv) < 2 or argv[1] not in commands:
        print(__doc__)
        return 2
    commands[argv[1]](argv[2:])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
