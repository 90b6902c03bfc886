{{- define "smoke.labels" -}}
app.kubernetes.io/name: smoke
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}
