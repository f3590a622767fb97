{{/* Names and labels, one place. */}}
{{- define "vigie.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "vigie.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The name of one component's objects: RELEASE-vigie-COMPONENT. */}}
{{- define "vigie.componentName" -}}
{{- printf "%s-%s" (include "vigie.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The labels that select one component's pods: (dict "root" $ "component" "mosquitto"). */}}
{{- define "vigie.componentSelectorLabels" -}}
app.kubernetes.io/name: {{ include "vigie.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "vigie.componentLabels" -}}
{{ include "vigie.componentSelectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The cloud's, the chart's main component. */}}
{{- define "vigie.selectorLabels" -}}
{{ include "vigie.componentSelectorLabels" (dict "root" . "component" "cloud") }}
{{- end -}}

{{- define "vigie.labels" -}}
{{ include "vigie.componentLabels" (dict "root" . "component" "cloud") }}
{{- end -}}

{{- define "vigie.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* The Secret holding what the chart generates at install (see secret.yaml). */}}
{{- define "vigie.generatedSecret" -}}
{{- printf "%s-generated" (include "vigie.fullname" .) -}}
{{- end -}}

{{/* The keys the chart generates for these values, each with the value that makes it unneeded. */}}
{{- define "vigie.generatedKeys" -}}
{{- $keys := list -}}
{{- if not .Values.jwt.existingSecret -}}{{- $keys = append $keys "jwt-secret" -}}{{- end -}}
{{- if and .Values.mosquitto.enabled (not .Values.mqtt.existingSecret) -}}{{- $keys = append $keys "mqtt-password" -}}{{- end -}}
{{- if .Values.postgresql.evaluation.enabled -}}{{- $keys = append $keys "postgres-password" -}}{{- end -}}
{{- if eq .Values.live.mode "mediamtx" -}}{{- $keys = append $keys "live-reader-password" -}}{{- end -}}
{{- join "," $keys -}}
{{- end -}}

{{/* The Secret and key of the cloud's MQTT password. */}}
{{- define "vigie.mqttPasswordSecret" -}}
{{- .Values.mqtt.existingSecret | default (include "vigie.generatedSecret" .) -}}
{{- end -}}
{{- define "vigie.mqttPasswordKey" -}}
{{- if .Values.mqtt.existingSecret -}}password{{- else -}}mqtt-password{{- end -}}
{{- end -}}

{{/* The broker the cloud connects to: the in-chart Mosquitto's cloud listener, or the external. */}}
{{- define "vigie.mqttUrl" -}}
{{- if .Values.mosquitto.enabled -}}
{{- printf "mqtts://%s:8884" (include "vigie.componentName" (dict "root" . "component" "mosquitto")) -}}
{{- else -}}
{{- .Values.mqtt.external.url -}}
{{- end -}}
{{- end -}}

{{/* The broker's TLS Secret (tls.crt, tls.key, ca.crt): given, or cert-manager's. */}}
{{- define "vigie.mosquittoTlsSecret" -}}
{{- .Values.mosquitto.tls.existingSecret | default (printf "%s-tls" (include "vigie.componentName" (dict "root" . "component" "mosquitto"))) -}}
{{- end -}}

{{/*
The database URL as env entries: from a Secret, or for the evaluation PostgreSQL composed by the
kubelet from its generated password (dependent environment variables, $(NAME)).
*/}}
{{- define "vigie.databaseEnv" -}}
{{- if .Values.postgresql.evaluation.enabled -}}
- name: DATABASE_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "vigie.generatedSecret" . }}
      key: postgres-password
- name: VIGIE_DATABASE_URL
  value: "postgres://vigie:$(DATABASE_PASSWORD)@{{ include "vigie.componentName" (dict "root" . "component" "postgresql") }}:5432/vigie"
{{- else -}}
- name: VIGIE_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.postgresql.external.existingSecret | default (printf "%s-database" (include "vigie.fullname" .)) }}
      key: url
{{- end -}}
{{- end -}}

{{/* The restricted container securityContext (Pod Security Standards "restricted"), for a UID. */}}
{{- define "vigie.restrictedContainer" -}}
runAsNonRoot: true
runAsUser: {{ . }}
runAsGroup: {{ . }}
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The pod's side of it. */}}
{{- define "vigie.restrictedPod" -}}
runAsNonRoot: true
runAsUser: {{ . }}
runAsGroup: {{ . }}
fsGroup: {{ . }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The cloud image's user. */}}
{{- define "vigie.containerSecurityContext" -}}
{{ include "vigie.restrictedContainer" 10001 }}
{{- end -}}

{{/* The broker-config init container's and sidecar's settings, mounts and securityContext. */}}
{{- define "vigie.mosquittoSidecarEnv" -}}
envFrom:
  - configMapRef:
      name: {{ include "vigie.fullname" . }}
env:
  {{- include "vigie.databaseEnv" . | nindent 2 }}
  # Its own scratch directory (the data directory is the cloud's).
  - name: VIGIE_DATA_DIR
    value: /tmp/vigie
resources:
  requests:
    cpu: 10m
    memory: 32Mi
  limits:
    memory: 128Mi
securityContext:
  {{- include "vigie.restrictedContainer" 1883 | nindent 2 }}
volumeMounts:
  - name: auth
    mountPath: /mosquitto/auth
  - name: tmp
    mountPath: /tmp
  - name: mqtt
    mountPath: /etc/vigie/mqtt
    readOnly: true
  # The settings name the broker's CA (VIGIE_MQTT_CA_FILE), read when they are.
  - name: mqtt-ca
    mountPath: /etc/vigie/mqtt-ca
    readOnly: true
{{- end -}}

{{/*
MediaMTX's config: RTSP over TCP only, every other protocol and its API off, and every client
authenticated by the cloud's hook (POST /api/live/auth: a device publishing its own live/{device}
with its live-push credential, or the cloud's own reader).
*/}}
{{- define "vigie.mediamtxConfig" -}}
logLevel: info
logDestinations: [stdout]
authMethod: http
authHTTPAddress: {{ printf "http://%s:%v/api/live/auth" (include "vigie.fullname" .) .Values.service.port }}
authHTTPExclude: []
api: false
metrics: false
pprof: false
playback: false
rtsp: true
rtspTransports: [tcp]
rtspAddress: :8554
rtmp: false
hls: false
webrtc: false
srt: false
paths:
  "~^live/[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$":
    source: publisher
{{- end -}}

{{/* NetworkPolicy peers: one ipBlock per CIDR. */}}
{{- define "vigie.fromCIDRs" -}}
{{- range . }}
- ipBlock:
    cidr: {{ . | quote }}
{{- end }}
{{- end -}}

{{/* Egress to the cluster's DNS (any resolver: kube-dns, or a node-local cache). */}}
{{- define "vigie.egressDNS" -}}
- ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
{{- end -}}

{{/*
Egress to an endpoint: the chart's own component's pods on its port, or (component "") the
external CIDRs on the external port. (dict "root" $ "component" "postgresql" "port" 5432
"external" .Values.networkPolicy.egress.database)
*/}}
{{- define "vigie.egressEndpoint" -}}
{{- if .component -}}
- to:
    - podSelector:
        matchLabels:
          {{- include "vigie.componentSelectorLabels" (dict "root" .root "component" .component) | nindent 10 }}
  ports:
    - port: {{ .port }}
      protocol: TCP
{{- else -}}
- to:
    {{- include "vigie.fromCIDRs" .external.cidrs | nindent 4 }}
  ports:
    - port: {{ .external.port }}
      protocol: TCP
{{- end -}}
{{- end -}}
