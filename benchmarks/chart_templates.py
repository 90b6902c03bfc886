"""The template files the benchmark's application charts share (benchmarks/charts.py assembles the
charts): helpers, ServiceAccount, RBAC, ConfigMaps and Secrets from values, PodDisruptionBudget,
NetworkPolicy, Deployment, Service and Ingress."""

from __future__ import annotations

HELPERS = """{{- define "bench.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "bench.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- with .Values.extraLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "bench.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
"""

SERVICEACCOUNT = """apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "bench.fullname" . }}
  labels:
    {{- include "bench.labels" . | nindent 4 }}
automountServiceAccountToken: false
"""

RBAC = """apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {{ include "bench.fullname" . }}
  labels:
    {{- include "bench.labels" . | nindent 4 }}
rules:
  - apiGroups: [""]
    resources: ["configmaps", "secrets"]
    resourceNames:
      {{- range $name, $_ := .Values.configFiles }}
      - {{ include "bench.fullname" $ }}-{{ $name }}
      {{- end }}
    verbs: ["get", "watch", "list"]
  - apiGroups: [""]
    resources: ["pods"]
    verbs: ["get", "list"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{ include "bench.fullname" . }}
  labels:
    {{- include "bench.labels" . | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{ include "bench.fullname" . }}
subjects:
  - kind: ServiceAccount
    name: {{ include "bench.fullname" . }}
    namespace: {{ .Release.Namespace }}
"""

CONFIG_FILES = """{{- range $name, $file := .Values.configFiles }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "bench.fullname" $ }}-{{ $name }}
  labels:
    {{- include "bench.labels" $ | nindent 4 }}
data:
  {{ $name }}.yaml: |
    # {{ $name }} for {{ $.Release.Name }} ({{ $.Release.Namespace }})
    {{- toYaml $file | nindent 4 }}
  {{ $name }}.properties: |
    {{- range $k, $v := $file }}
    {{ $name }}.{{ $k }}={{ $v | toJson }}
    {{- end }}
{{- end }}
"""

SECRETS = """apiVersion: v1
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
---
apiVersion: v1
kind: Secret
metadata:
  name: {{ include "bench.fullname" . }}-tls
  labels:
    {{- include "bench.labels" . | nindent 4 }}
type: kubernetes.io/tls
data:
  tls.crt: {{ .Values.tls.crt | b64enc }}
  tls.key: {{ .Values.tls.key | b64enc }}
"""

PDB = """apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "bench.fullname" . }}
  labels:
    {{- include "bench.labels" . | nindent 4 }}
spec:
  minAvailable: {{ .Values.pdb.minAvailable }}
  selector:
    matchLabels:
      {{- include "bench.selector" . | nindent 6 }}
"""

NETPOL = """apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "bench.fullname" . }}
  labels:
    {{- include "bench.labels" . | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "bench.selector" . | nindent 6 }}
  policyTypes: [Ingress]
  ingress:
    - from:
        {{- range .Values.networkPolicy.allowFrom }}
        - namespaceSelector:
            matchLabels:
              kubernetes.io/metadata.name: {{ . }}
        {{- end }}
      ports:
        - port: {{ .Values.service.targetPort }}
          protocol: TCP
"""


def deployment_template(suffix: str, values: str, config_template: str) -> str:
    """A Deployment; `suffix` names it, `values` is the values path holding replicas/image/resources."""
    name = '{{ include "bench.fullname" . }}' + (f"-{suffix}" if suffix else "")
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels:
    {{{{- include "bench.labels" . | nindent 4 }}}}
spec:
  replicas: {{{{ {values}.replicaCount }}}}
  revisionHistoryLimit: 3
  selector:
    matchLabels:
      {{{{- include "bench.selector" . | nindent 6 }}}}
      app.kubernetes.io/component: {suffix or "main"}
  strategy:
    type: RollingUpdate
    rollingUpdate: {{maxSurge: 1, maxUnavailable: 0}}
  template:
    metadata:
      labels:
        {{{{- include "bench.selector" . | nindent 8 }}}}
        app.kubernetes.io/component: {suffix or "main"}
      annotations:
        checksum/config: {{{{ include (print $.Template.BasePath "/{config_template}") . | sha256sum }}}}
        checksum/secret: {{{{ include (print $.Template.BasePath "/secrets.yaml") . | sha256sum }}}}
        {{{{- with .Values.podAnnotations }}}}
        {{{{- toYaml . | nindent 8 }}}}
        {{{{- end }}}}
    spec:
      serviceAccountName: {{{{ include "bench.fullname" . }}}}
      securityContext: {{runAsNonRoot: true, runAsUser: 10001, fsGroup: 10001}}
      containers:
        - name: {suffix or "app"}
          image: "{{{{ .Values.image.repository }}}}:{{{{ .Values.image.tag }}}}"
          imagePullPolicy: IfNotPresent
          args: ["--log-level={{{{ .Values.config.logLevel }}}}"]
          ports:
            - name: http
              containerPort: {{{{ .Values.service.targetPort }}}}
          env:
            {{{{- range $k, $v := .Values.env }}}}
            - name: {{{{ $k }}}}
              value: {{{{ $v | quote }}}}
            {{{{- end }}}}
          envFrom:
            - secretRef:
                name: {{{{ include "bench.fullname" . }}}}
          readinessProbe:
            httpGet: {{path: /healthz, port: http}}
            periodSeconds: 10
          {{{{- with {values}.resources }}}}
          resources:
            {{{{- toYaml . | nindent 12 }}}}
          {{{{- end }}}}
          volumeMounts:
            - name: config
              mountPath: /etc/app
      volumes:
        - name: config
          projected:
            sources:
              {{{{- range $name, $_ := .Values.configFiles }}}}
              - configMap:
                  name: {{{{ include "bench.fullname" $ }}}}-{{{{ $name }}}}
              {{{{- end }}}}
"""


def service_template(suffix: str, headless: bool = False) -> str:
    name = '{{ include "bench.fullname" . }}' + (f"-{suffix}" if suffix else "")
    cluster_ip = "\n  clusterIP: None" if headless else ""
    return f"""apiVersion: v1
kind: Service
metadata:
  name: {name}
  labels:
    {{{{- include "bench.labels" . | nindent 4 }}}}
spec:
  type: ClusterIP{cluster_ip}
  selector:
    {{{{- include "bench.selector" . | nindent 4 }}}}
  ports:
    - name: http
      port: {{{{ .Values.service.port }}}}
      targetPort: http
      protocol: TCP
"""


INGRESS = """{{- if .Values.ingress.enabled }}
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {{ include "bench.fullname" . }}
  labels:
    {{- include "bench.labels" . | nindent 4 }}
  annotations:
    {{- toYaml .Values.ingress.annotations | nindent 4 }}
spec:
  ingressClassName: {{ .Values.ingress.className }}
  tls:
    - hosts: [{{ .Values.ingress.host | quote }}]
      secretName: {{ include "bench.fullname" . }}-tls
  rules:
    - host: {{ .Values.ingress.host | quote }}
      http:
        paths:
          {{- range .Values.ingress.paths }}
          - path: {{ . }}
            pathType: Prefix
            backend:
              service:
                name: {{ include "bench.fullname" $ }}
                port: {number: {{ $.Values.service.port }}}
          {{- end }}
{{- end }}
"""
