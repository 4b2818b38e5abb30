{{/* The chart's name, truncated to Kubernetes' 63 characters. */}}
{{- define "qbo-sync.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The full name of every object: the release's name, with the chart's unless it holds it. */}}
{{- define "qbo-sync.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "qbo-sync.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that select the pods: never change them in an upgrade. */}}
{{- define "qbo-sync.selectorLabels" -}}
app.kubernetes.io/name: {{ include "qbo-sync.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "qbo-sync.labels" -}}
helm.sh/chart: {{ include "qbo-sync.chart" . }}
{{ include "qbo-sync.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: digit
{{- end }}

{{- define "qbo-sync.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "qbo-sync.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Hooks run before the chart's own objects exist, so the Job cannot use a service account the chart creates. */}}
{{- define "qbo-sync.migrationServiceAccountName" -}}
{{- if .Values.migration.serviceAccountName }}
{{- .Values.migration.serviceAccountName }}
{{- else if .Values.serviceAccount.create }}
{{- "default" }}
{{- else }}
{{- include "qbo-sync.serviceAccountName" . }}
{{- end }}
{{- end }}

{{- define "qbo-sync.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The Secret an item of .Values.secrets lives in; called with (list $ item). */}}
{{- define "qbo-sync.secretName" -}}
{{- $root := index . 0 }}
{{- $item := index . 1 }}
{{- default (default (include "qbo-sync.fullname" $root) $root.Values.secrets.existingSecret) $item.existingSecret }}
{{- end }}

{{/* Where the callers file and the TLS files are mounted. */}}
{{- define "qbo-sync.callersDir" -}}/etc/qbo-sync/callers{{- end }}
{{- define "qbo-sync.tlsDir" -}}/etc/qbo-sync/tls{{- end }}

{{/*
A setting's value as a ConfigMap string. Helm reads numbers in values as floats, which print
as 1e+06 past six digits: integers are printed as integers.
*/}}
{{- define "qbo-sync.settingValue" -}}
{{- if kindIs "float64" . }}
{{- . | int64 | toString | quote }}
{{- else }}
{{- . | toString | quote }}
{{- end }}
{{- end }}

{{/*
Every setting of the service, as ConfigMap data. No secret is ever among them: secrets reach
the container through secretKeyRef (qbo-sync.secretEnv) and the callers file through a
Secret volume.
*/}}
{{- define "qbo-sync.settings" -}}
QBO_SYNC_GRPC_ADDR: {{ printf "0.0.0.0:%d" (int .Values.ports.grpc) | quote }}
QBO_SYNC_HTTP_ADDR: {{ printf "0.0.0.0:%d" (int .Values.ports.http) | quote }}
QBO_SYNC_SHUTDOWN_GRACE: {{ printf "%ds" (int .Values.shutdown.graceSeconds) | quote }}
QBO_SYNC_CALLERS_FILE: {{ printf "%s/%s" (include "qbo-sync.callersDir" .) .Values.secrets.callers.key | quote }}
{{- if .Values.tls.enabled }}
QBO_SYNC_TLS_CERT: {{ printf "%s/tls.crt" (include "qbo-sync.tlsDir" .) | quote }}
QBO_SYNC_TLS_KEY: {{ printf "%s/tls.key" (include "qbo-sync.tlsDir" .) | quote }}
{{- if .Values.tls.clientCA }}
QBO_SYNC_TLS_CLIENT_CA: {{ printf "%s/ca.crt" (include "qbo-sync.tlsDir" .) | quote }}
{{- end }}
{{- end }}
{{- range $name, $value := .Values.config }}
{{ $name }}: {{ include "qbo-sync.settingValue" $value }}
{{- end }}
{{- end }}

{{/* The secrets given as environment variables, each from its Secret's key; an empty key is left out. */}}
{{- define "qbo-sync.secretEnv" -}}
{{- $root := . }}
{{- $items := dict "DATABASE_URL" .Values.secrets.databaseUrl "QBO_SYNC_QBO_CLIENT_SECRET" .Values.secrets.qboClientSecret "QBO_SYNC_WEBHOOK_VERIFIER_TOKEN" .Values.secrets.webhookVerifierToken "QBO_SYNC_TOKEN_KEY" .Values.secrets.tokenKey "QBO_SYNC_TOKEN_KEY_PREVIOUS" .Values.secrets.tokenKeyPrevious }}
{{- range $env, $item := $items }}
{{- if $item.key }}
- name: {{ $env }}
  valueFrom:
    secretKeyRef:
      name: {{ include "qbo-sync.secretName" (list $root $item) }}
      key: {{ $item.key | quote }}
{{- end }}
{{- end }}
{{- end }}

{{- define "qbo-sync.terminationGracePeriodSeconds" -}}
{{- add .Values.shutdown.preStopSleepSeconds .Values.shutdown.graceSeconds .Values.shutdown.marginSeconds }}
{{- end }}
