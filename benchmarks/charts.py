"""The local charts the benchmark deploys: four application charts and two subcharts.

Sizes (resources rendered with default values, subcharts included):
  webapp           20  (2 Deployments, 2 Services, 4 ConfigMaps, 2 Secrets, ServiceAccount, Role,
                        RoleBinding, PodDisruptionBudget, NetworkPolicy, Ingress; subchart `sidecar`:
                        2 ConfigMaps, Secret, ServiceAccount)
  api              19  (Deployment, Service, 6 ConfigMaps, 2 Secrets, ServiceAccount, Role, RoleBinding,
                        PodDisruptionBudget, NetworkPolicy; subchart `cache`: Deployment, Service,
                        ConfigMap, Secret)
  platform-config  14  (8 ConfigMaps, 3 Secrets, ServiceAccount, ResourceQuota, LimitRange)
  cronjobs         10  (4 suspended CronJobs, 2 ConfigMaps, Secret, ServiceAccount, Role, RoleBinding)
`webapp` and `api` declare their subchart as a `file://` dependency; the subchart's archive is built
once (`helm dependency build`) when the specs are generated, as a repository would commit it.
"""

from __future__ import annotations

from chart_templates import (
    CONFIG_FILES,
    HELPERS,
    INGRESS,
    NETPOL,
    PDB,
    RBAC,
    SECRETS,
    SERVICEACCOUNT,
    deployment_template,
    service_template,
)

COMMON_VALUES = """image:
  repository: registry.example.com/bench/{name}
  tag: "{app_version}"
replicaCount: 1
service:
  port: 80
  targetPort: 8080
resources:
  requests: {{cpu: 10m, memory: 32Mi}}
  limits: {{memory: 128Mi}}
podAnnotations: {{}}
extraLabels: {{}}
env:
  TZ: UTC
  LANG: C.UTF-8
  GOMAXPROCS: "1"
pdb:
  minAvailable: 0
networkPolicy:
  allowFrom: [ingress-nginx, monitoring]
secrets:
  apiKey: change-me
  dbPassword: change-me-too
  sessionKey: 0123456789abcdef0123456789abcdef
tls:
  crt: |
    -----BEGIN CERTIFICATE-----
    MIIBszCCAVmgAwIBAgIUQ8tlkq+iQtftB8Lsw4V9J7i1xDYwCgYIKoZIzj0EAwIw
    HjEcMBoGA1UEAwwTZGVwbG95ZXItc2FuZGJveC1jYTAeFw0yNjExMjcxNDU0MzVa
    Fw0zNjExMjQxNDU0MzVaMB4xHDAaBgNVBAMME2RlcGxveWVyLXNhbmRib3gtY2Ew
    -----END CERTIFICATE-----
  key: |
    -----BEGIN EC PRIVATE KEY-----
    MHcCAQEEIBkVZ2kKZ3l3b2NhbGhvc3QtYmVuY2htYXJrLWtleS1ub3QtcmVhbA==
    -----END EC PRIVATE KEY-----
config:
  logLevel: info
"""

WEBAPP_VALUES = (
    COMMON_VALUES.format(name="webapp", app_version="3.2.1")
    + """  features: {search: true, checkout: false, recommendations: true, darkMode: false}
  database: {host: db.internal, port: 5432, name: webapp, pool: 10, sslmode: require}
  cache: {ttl: 300, size: 1024}
worker:
  replicaCount: 1
  resources:
    requests: {cpu: 10m, memory: 32Mi}
    limits: {memory: 256Mi}
configFiles:
  app: {listen: ":8080", readTimeout: 30s, writeTimeout: 30s, maxHeaderBytes: 1048576}
  nginx: {workerConnections: 1024, clientMaxBodySize: 10m, keepaliveTimeout: 65, gzip: true}
  features: {search: true, checkout: false, recommendations: true}
  logging: {format: json, level: info, sampling: 100}
ingress:
  enabled: true
  className: nginx
  host: webapp.example.com
  paths: [/, /api, /static]
  annotations:
    nginx.ingress.kubernetes.io/proxy-body-size: 10m
sidecar:
  enabled: true
  proxy: {port: 15001, adminPort: 15000, logLevel: warn}
"""
)

API_VALUES = (
    COMMON_VALUES.format(name="api", app_version="2.3.0")
    + """  rateLimit: {rps: 100, burst: 200}
configFiles:
  server: {listen: ":8080", grpc: ":9090", readTimeout: 15s, shutdownGrace: 20s}
  database: {host: db.internal, port: 5432, name: api, pool: 20, sslmode: require}
  cache: {host: cache, port: 6379, ttl: 120}
  auth: {issuer: "https://auth.example.com", audience: api, leeway: 30s}
  tracing: {endpoint: "otel-collector:4317", sampleRate: 0.1}
  limits: {rps: 100, burst: 200, maxBody: 1048576}
cache:
  enabled: true
  maxMemory: 64mb
  policy: allkeys-lru
"""
)

PLATFORM_VALUES = """configFiles:
  network: {cidr: 10.0.0.0/16, dns: [10.0.0.10], mtu: 1450}
  regions: {primary: eu-central-1, secondary: eu-west-1}
  endpoints: {api: "https://api.example.com", auth: "https://auth.example.com"}
  observability: {metrics: prometheus, logs: loki, traces: tempo}
  quotas: {cpu: "20", memory: 64Gi, pods: "200"}
  flags: {maintenance: false, readOnly: false, canary: 5}
  mail: {smtp: smtp.example.com, port: 587, from: noreply@example.com}
  storage: {class: standard, backup: daily, retentionDays: 30}
secrets:
  registry: {username: robot, password: registry-password}
  smtp: {username: mailer, password: smtp-password}
  monitoring: {username: scraper, password: scrape-password}
quota: {cpu: "20", memory: 64Gi, pods: "200"}
environment: default
extraLabels: {}
"""

PLATFORM_TEMPLATES = {
    "configmaps.yaml": """{{- range $name, $file := .Values.configFiles }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ $.Release.Name }}-{{ $name }}
  labels:
    {{- include "bench.labels" $ | nindent 4 }}
data:
  environment: {{ $.Values.environment | quote }}
  {{ $name }}.yaml: |
    {{- toYaml $file | nindent 4 }}
{{- end }}
""",
    "secrets.yaml": """{{- range $name, $cred := .Values.secrets }}
---
apiVersion: v1
kind: Secret
metadata:
  name: {{ $.Release.Name }}-{{ $name }}
  labels:
    {{- include "bench.labels" $ | nindent 4 }}
type: kubernetes.io/basic-auth
stringData:
  username: {{ $cred.username | quote }}
  password: {{ $cred.password | quote }}
{{- end }}
""",
    "serviceaccount.yaml": """apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ .Release.Name }}
  labels:
    {{- include "bench.labels" . | nindent 4 }}
""",
    "quota.yaml": """apiVersion: v1
kind: ResourceQuota
metadata:
  name: {{ .Release.Name }}
  labels:
    {{- include "bench.labels" . | nindent 4 }}
spec:
  hard:
    requests.cpu: {{ .Values.quota.cpu | quote }}
    requests.memory: {{ .Values.quota.memory }}
    pods: {{ .Values.quota.pods | quote }}
---
apiVersion: v1
kind: LimitRange
metadata:
  name: {{ .Release.Name }}
  labels:
    {{- include "bench.labels" . | nindent 4 }}
spec:
  limits:
    - type: Container
      default: {memory: 256Mi}
      defaultRequest: {cpu: 10m, memory: 32Mi}
""",
}

CRONJOBS_VALUES = """image: {repository: registry.example.com/bench/jobs, tag: "0.9.0"}
jobs:
  cleanup: {schedule: "0 3 * * *", args: [cleanup, --older-than=30d]}
  report: {schedule: "30 6 * * 1", args: [report, --weekly]}
  backup: {schedule: "0 1 * * *", args: [backup, --target=s3]}
  reindex: {schedule: "15 2 * * 0", args: [reindex, --all]}
configFiles:
  jobs: {retries: 3, timeout: 3600, parallelism: 1}
  targets: {bucket: backups, prefix: nightly}
secrets:
  s3AccessKey: AKIAEXAMPLE
  s3SecretKey: secret-example
resources:
  requests: {cpu: 10m, memory: 32Mi}
extraLabels: {}
"""

CRONJOBS_TEMPLATES = {
    "cronjobs.yaml": """{{- range $name, $job := .Values.jobs }}
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: {{ include "bench.fullname" $ }}-{{ $name }}
  labels:
    {{- include "bench.labels" $ | nindent 4 }}
spec:
  schedule: {{ $job.schedule | quote }}
  suspend: true
  concurrencyPolicy: Forbid
  successfulJobsHistoryLimit: 1
  failedJobsHistoryLimit: 1
  jobTemplate:
    spec:
      backoffLimit: 2
      template:
        spec:
          restartPolicy: OnFailure
          serviceAccountName: {{ include "bench.fullname" $ }}
          containers:
            - name: {{ $name }}
              image: "{{ $.Values.image.repository }}:{{ $.Values.image.tag }}"
              args: {{ toJson $job.args }}
              envFrom:
                - secretRef:
                    name: {{ include "bench.fullname" $ }}
              {{- with $.Values.resources }}
              resources:
                {{- toYaml . | nindent 16 }}
              {{- end }}
{{- end }}
""",
    "configmaps.yaml": CONFIG_FILES,
    "secrets.yaml": """apiVersion: v1
kind: Secret
metadata:
  name: {{ include "bench.fullname" . }}
  labels:
    {{- include "bench.labels" . | nindent 4 }}
type: Opaque
data:
  {{- range $k, $v := .Values.secrets }}
  {{ $k }}: {{ $v | toString | b64enc }}
  {{- end }}
""",
    "serviceaccount.yaml": SERVICEACCOUNT,
    "rbac.yaml": RBAC,
}

SIDECAR_VALUES = """enabled: true
proxy: {port: 15001, adminPort: 15000, logLevel: warn}
extraLabels: {}
"""

SIDECAR_TEMPLATES = {
    "configmap.yaml": """apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "bench.fullname" . }}-proxy
  labels:
    {{- include "bench.labels" . | nindent 4 }}
data:
  envoy.yaml: |
    admin:
      address: {socket_address: {address: 127.0.0.1, port_value: {{ .Values.proxy.adminPort }}}}
    static_resources:
      listeners:
        - name: inbound
          address: {socket_address: {address: 0.0.0.0, port_value: {{ .Values.proxy.port }}}}
  log-level: {{ .Values.proxy.logLevel | quote }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "bench.fullname" . }}-bootstrap
  labels:
    {{- include "bench.labels" . | nindent 4 }}
data:
  bootstrap.json: {{ dict "node" .Release.Name "cluster" .Release.Namespace | toJson | quote }}
""",
    "secret.yaml": """apiVersion: v1
kind: Secret
metadata:
  name: {{ include "bench.fullname" . }}-proxy
  labels:
    {{- include "bench.labels" . | nindent 4 }}
type: Opaque
stringData:
  token: {{ printf "%s/%s" .Release.Namespace .Release.Name | sha256sum | quote }}
""",
    "serviceaccount.yaml": SERVICEACCOUNT,
}

CACHE_VALUES = """image: {repository: registry.example.com/bench/cache, tag: "7.2"}
replicaCount: 1
maxMemory: 32mb
policy: allkeys-lru
service: {port: 6379, targetPort: 6379}
extraLabels: {}
"""

CACHE_TEMPLATES = {
    "all.yaml": """apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "bench.fullname" . }}
  labels:
    {{- include "bench.labels" . | nindent 4 }}
data:
  cache.conf: |
    maxmemory {{ .Values.maxMemory }}
    maxmemory-policy {{ .Values.policy }}
    appendonly no
---
apiVersion: v1
kind: Secret
metadata:
  name: {{ include "bench.fullname" . }}
  labels:
    {{- include "bench.labels" . | nindent 4 }}
type: Opaque
stringData:
  password: {{ printf "cache-%s" .Release.Name | sha256sum | trunc 24 | quote }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ include "bench.fullname" . }}
  labels:
    {{- include "bench.labels" . | nindent 4 }}
spec:
  selector:
    {{- include "bench.selector" . | nindent 4 }}
  ports:
    - {name: cache, port: {{ .Values.service.port }}, targetPort: {{ .Values.service.targetPort }}}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "bench.fullname" . }}
  labels:
    {{- include "bench.labels" . | nindent 4 }}
spec:
  replicas: {{ .Values.replicaCount }}
  selector:
    matchLabels:
      {{- include "bench.selector" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "bench.selector" . | nindent 8 }}
      annotations:
        checksum/config: {{ .Values | toJson | sha256sum }}
    spec:
      containers:
        - name: cache
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
          ports: [{name: cache, containerPort: {{ .Values.service.targetPort }}}]
          volumeMounts: [{name: conf, mountPath: /etc/cache}]
      volumes:
        - name: conf
          configMap: {name: {{ include "bench.fullname" . }}}
""",
}


def _chart_yaml(name: str, version: str, app_version: str, dep: str | None = None) -> str:
    text = (
        f"apiVersion: v2\nname: {name}\ndescription: Benchmark chart {name}\n"
        f'type: application\nversion: {version}\nappVersion: "{app_version}"\n'
    )
    if dep:
        text += (
            f"dependencies:\n  - name: {dep}\n    version: 0.1.0\n"
            f"    repository: file://../{dep}\n    condition: {dep}.enabled\n"
        )
    return text


def chart_files() -> dict[str, str]:
    """Relative path (under charts/) -> file content, for every chart and subchart."""
    files: dict[str, str] = {}

    def add(chart: str, chart_yaml: str, values: str, templates: dict[str, str]) -> None:
        files[f"{chart}/Chart.yaml"] = chart_yaml
        files[f"{chart}/values.yaml"] = values
        files[f"{chart}/templates/_helpers.tpl"] = HELPERS
        for name, text in templates.items():
            files[f"{chart}/templates/{name}"] = text

    add(
        "webapp",
        _chart_yaml("webapp", "1.4.0", "3.2.1", dep="sidecar"),
        WEBAPP_VALUES,
        {
            "deployment.yaml": deployment_template("", ".Values", "configmaps.yaml"),
            "deployment-worker.yaml": deployment_template("worker", ".Values.worker", "configmaps.yaml"),
            "service.yaml": service_template("") + "---\n" + service_template("headless", headless=True),
            "configmaps.yaml": CONFIG_FILES,
            "secrets.yaml": SECRETS,
            "serviceaccount.yaml": SERVICEACCOUNT,
            "rbac.yaml": RBAC,
            "pdb.yaml": PDB,
            "networkpolicy.yaml": NETPOL,
            "ingress.yaml": INGRESS,
        },
    )
    add(
        "api",
        _chart_yaml("api", "2.3.0", "2.3.0", dep="cache"),
        API_VALUES,
        {
            "deployment.yaml": deployment_template("", ".Values", "configmaps.yaml"),
            "service.yaml": service_template(""),
            "configmaps.yaml": CONFIG_FILES,
            "secrets.yaml": SECRETS,
            "serviceaccount.yaml": SERVICEACCOUNT,
            "rbac.yaml": RBAC,
            "pdb.yaml": PDB,
            "networkpolicy.yaml": NETPOL,
        },
    )
    add(
        "platform-config",
        _chart_yaml("platform-config", "0.4.0", "0.4.0"),
        PLATFORM_VALUES,
        PLATFORM_TEMPLATES,
    )
    add("cronjobs", _chart_yaml("cronjobs", "0.9.0", "0.9.0"), CRONJOBS_VALUES, CRONJOBS_TEMPLATES)
    add("sidecar", _chart_yaml("sidecar", "0.1.0", "1.30.0"), SIDECAR_VALUES, SIDECAR_TEMPLATES)
    add("cache", _chart_yaml("cache", "0.1.0", "7.2.0"), CACHE_VALUES, CACHE_TEMPLATES)
    return files


# Charts that releases use directly (the other two are only subcharts).
APP_CHARTS = ("platform-config", "api", "webapp", "cronjobs")
# Charts with a file:// dependency to build once at generation time.
CHARTS_WITH_DEPENDENCIES = ("webapp", "api")
