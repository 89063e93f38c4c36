{{- define "llmo.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "llmo.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "llmo.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "llmo.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "llmo.grace" -}}
{{ add .Values.drainTimeoutSeconds .Values.preStopSleepSeconds 5 }}
{{- end -}}

{{/* Common container settings: env, probes, lifecycle. Args: root, port. */}}
{{- define "llmo.commonEnv" -}}
- name: LLMO_HOST
  value: "0.0.0.0"
- name: LOG_FORMAT
  value: {{ .Values.logFormat | quote }}
- name: DRAIN_TIMEOUT
  value: {{ printf "%ds" (int .Values.drainTimeoutSeconds) | quote }}
{{- end -}}

{{- define "llmo.probes" -}}
livenessProbe:
  httpGet: {path: /health, port: http}
  periodSeconds: 10
  timeoutSeconds: 3
  failureThreshold: 3
readinessProbe:
  httpGet: {path: /ready, port: http}
  periodSeconds: 5
  timeoutSeconds: 3
  failureThreshold: 2
{{- end -}}

{{- define "llmo.lifecycle" -}}
lifecycle:
  preStop:
    # Keep serving while endpoints are withdrawn (Kubernetes >= 1.30 sleep
    # action; distroless has no shell), then SIGTERM starts the drain.
    sleep:
      seconds: {{ .Values.preStopSleepSeconds }}
{{- end -}}

{{- define "llmo.extraEnv" -}}
{{- range $k, $v := . }}
- name: {{ $k }}
  value: {{ $v | quote }}
{{- end }}
{{- end -}}
