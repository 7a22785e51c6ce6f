{{/* Names. */}}
{{- define "seedcast.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "seedcast.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "seedcast.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "seedcast.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "seedcast.controllerName" -}}
{{- printf "%s-controller" (include "seedcast.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "seedcast.controllerServiceAccount" -}}
{{- if .Values.controller.serviceAccount.create }}
{{- default (include "seedcast.controllerName" .) .Values.controller.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.controller.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Labels on everything the chart creates. */}}
{{- define "seedcast.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "seedcast.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: seedcast
{{- end }}

{{- define "seedcast.controllerSelectorLabels" -}}
app.kubernetes.io/name: {{ include "seedcast.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end }}

{{/* image reference: repository[:tag][@digest] */}}
{{- define "seedcast.imageRef" -}}
{{- $repo := .image.repository | default .fallback.repository -}}
{{- $tag := .image.tag | default .fallback.tag | default .appVersion -}}
{{- $digest := .image.digest | default .fallback.digest -}}
{{- if $digest }}{{ printf "%s@%s" $repo $digest }}{{ else }}{{ printf "%s:%s" $repo $tag }}{{ end -}}
{{- end }}

{{- define "seedcast.controllerImage" -}}
{{- include "seedcast.imageRef" (dict "image" .Values.image "fallback" .Values.image "appVersion" .Chart.AppVersion) }}
{{- end }}

{{- define "seedcast.agentImage" -}}
{{- include "seedcast.imageRef" (dict "image" .Values.agent.image "fallback" .Values.image "appVersion" .Chart.AppVersion) }}
{{- end }}

{{/* The namespaces where agents run, deduplicated. */}}
{{- define "seedcast.namespaces" -}}
{{- .Values.namespaces | uniq | toJson }}
{{- end }}
