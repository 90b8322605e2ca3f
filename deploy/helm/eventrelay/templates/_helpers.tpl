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

{{/*
The HTTP port, from the one place the binary reads it: config.http.addr
(default ":8080"). Container ports, probes and the Service all use it.
*/}}
{{- define "eventrelay.httpPort" -}}
{{- $addr := dig "http" "addr" ":8080" .Values.config | toString -}}
{{- if eq $addr "off" -}}
{{- fail "config.http.addr is off: the probes (/healthz, /readyz) and /metrics need it; set a listen address such as \":8080\"" -}}
{{- end -}}
{{- $port := regexFind ":[0-9]+$" $addr | trimPrefix ":" -}}
{{- if not $port -}}
{{- fail (printf "config.http.addr %q has no port; write it as \":PORT\"" $addr) -}}
{{- end -}}
{{- $host := trimSuffix (printf ":%s" $port) $addr -}}
{{- if not (has $host (list "" "0.0.0.0" "[::]")) -}}
{{- fail (printf "config.http.addr %q listens on %s only: the kubelet probes the pod's IP; write it as \":%s\"" $addr $host $port) -}}
{{- end -}}
{{- $port -}}
{{- end -}}

{{/* The configuration with the mounted secret files and the drain timeout wired in. */}}
{{- define "eventrelay.config" -}}
{{- $c := deepCopy .Values.config -}}
{{- if dig "source" "kinesis" "drain_timeout" "" .Values.config -}}
{{- fail "config.source.kinesis.drain_timeout is set by the chart from drainTimeoutSeconds (one knob, checked against terminationGracePeriodSeconds): set drainTimeoutSeconds instead" -}}
{{- end -}}
{{- $src := get $c "source" | default dict -}}
{{- $kin := get $src "kinesis" | default dict -}}
{{- $_ := set $kin "drain_timeout" (printf "%ds" (int .Values.drainTimeoutSeconds)) -}}
{{- $_ := set $src "kinesis" $kin -}}
{{- $_ := set $c "source" $src -}}
{{- if .Values.secrets.externalId.name -}}
{{- if not (dig "aws" "stream_role" "role_arn" "" .Values.config) -}}
{{- fail "secrets.externalId is set but config.aws.stream_role.role_arn is empty: the external ID is only sent when assuming that role" -}}
{{- end -}}
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

{{/*
A stopping worker drains for drainTimeoutSeconds, then gives a stalled
dependency 2 s more before it exits (internal/kinesis drainGrace); the
grace period must cover both, or Kubernetes kills the worker before it has
checkpointed and released its leases.
*/}}
{{- define "eventrelay.checkGrace" -}}
{{- if lt (int .Values.terminationGracePeriodSeconds) (add (int .Values.drainTimeoutSeconds) 5) -}}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be at least drainTimeoutSeconds + 5 (%d): the worker drains for drainTimeoutSeconds, waits 2 s more for a stalled dependency, then exits; a shorter grace period kills it before it has checkpointed and released its leases" (int .Values.terminationGracePeriodSeconds) (add (int .Values.drainTimeoutSeconds) 5)) -}}
{{- end -}}
{{- end -}}
