{{- define "eventrelay.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "eventrelay.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "eventrelay.labels" -}}
app.kubernetes.io/name: {{ include "eventrelay.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "eventrelay.selectorLabels" -}}
app.kubernetes.io/name: {{ include "eventrelay.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "eventrelay.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "eventrelay.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "eventrelay.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* The configuration with the mounted secret files wired in. */}}
{{- define "eventrelay.config" -}}
{{- $c := deepCopy .Values.config -}}
{{- if .Values.secrets.externalId.name -}}
{{- $aws := get $c "aws" | default dict -}}
{{- $role := get $aws "stream_role" | default dict -}}
{{- $_ := set $role "external_id_file" "/var/run/secrets/eventrelay/external-id/value" -}}
{{- $_ := set $aws "stream_role" $role -}}
{{- $_ := set $c "aws" $aws -}}
{{- end -}}
{{- if .Values.secrets.kafkaPassword.name -}}
{{- $sink := get $c "sink" | default dict -}}
{{- $kafka := get $sink "kafka" | default dict -}}
{{- $sasl := get $kafka "sasl" | default dict -}}
{{- $_ := set $sasl "password_file" "/var/run/secrets/eventrelay/kafka-password/value" -}}
{{- $_ := set $kafka "sasl" $sasl -}}
{{- $_ := set $sink "kafka" $kafka -}}
{{- $_ := set $c "sink" $sink -}}
{{- end -}}
{{- toYaml $c -}}
{{- end -}}

{{/* Secret volumes and mounts shared by the Deployment and the Job. */}}
{{- define "eventrelay.secretVolumes" -}}
- name: config
  configMap:
    name: {{ include "eventrelay.fullname" . }}
{{- with .Values.secrets.externalId }}{{ if .name }}
- name: external-id
  secret:
    secretName: {{ .name }}
    items: [{key: {{ .key }}, path: value}]
{{- end }}{{ end }}
{{- with .Values.secrets.kafkaPassword }}{{ if .name }}
- name: kafka-password
  secret:
    secretName: {{ .name }}
    items: [{key: {{ .key }}, path: value}]
{{- end }}{{ end }}
{{- with .Values.secrets.gcsKey }}{{ if .name }}
- name: gcs-key
  secret:
    secretName: {{ .name }}
    items: [{key: {{ .key }}, path: key.json}]
{{- end }}{{ end }}
{{- end -}}

{{- define "eventrelay.secretMounts" -}}
- name: config
  mountPath: /etc/eventrelay
  readOnly: true
{{- if .Values.secrets.externalId.name }}
- name: external-id
  mountPath: /var/run/secrets/eventrelay/external-id
  readOnly: true
{{- end }}
{{- if .Values.secrets.kafkaPassword.name }}
- name: kafka-password
  mountPath: /var/run/secrets/eventrelay/kafka-password
  readOnly: true
{{- end }}
{{- if .Values.secrets.gcsKey.name }}
- name: gcs-key
  mountPath: /var/run/secrets/eventrelay/gcs
  readOnly: true
{{- end }}
{{- end -}}
