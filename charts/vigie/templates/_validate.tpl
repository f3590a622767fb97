{{/* Rules across values that the schema cannot say; each fails with a sentence saying why. */}}
{{- define "vigie.validate" -}}
{{- $pg := .Values.postgresql -}}
{{- if $pg.evaluation.enabled -}}
{{- if or $pg.external.url $pg.external.existingSecret -}}
{{- fail "postgresql: the in-chart evaluation database and an external one are both set; keep one (postgresql.evaluation.enabled, or postgresql.external)" -}}
{{- end -}}
{{- else -}}
{{- if and (not $pg.external.url) (not $pg.external.existingSecret) -}}
{{- fail "postgresql.external: give the database's url, or existingSecret naming a Secret with the key `url` (or postgresql.evaluation.enabled for a trial)" -}}
{{- end -}}
{{- if and $pg.external.url $pg.external.existingSecret -}}
{{- fail "postgresql.external: give url or existingSecret, not both" -}}
{{- end -}}
{{- end -}}
{{- $mq := .Values.mosquitto -}}
{{- if $mq.enabled -}}
{{- if .Values.mqtt.external.url -}}
{{- fail "mqtt.external.url and mosquitto.enabled are both set: the cloud would use the in-chart broker; keep one" -}}
{{- end -}}
{{- if and (not $mq.tls.existingSecret) (not $mq.tls.certManager.enabled) -}}
{{- fail "mosquitto: its listeners are TLS only; give mosquitto.tls.existingSecret (a kubernetes.io/tls Secret with ca.crt) or enable mosquitto.tls.certManager" -}}
{{- end -}}
{{- if and $mq.tls.existingSecret $mq.tls.certManager.enabled -}}
{{- fail "mosquitto.tls: give existingSecret or certManager, not both" -}}
{{- end -}}
{{- if and $mq.tls.certManager.enabled (not $mq.tls.certManager.issuerRef.name) -}}
{{- fail "mosquitto.tls.certManager: name the issuer (issuerRef.name) that signs the broker's certificate" -}}
{{- end -}}
{{- else -}}
{{- if not .Values.mqtt.external.url -}}
{{- fail "mqtt.external.url: the broker the cloud connects to (mqtts://host:8884 in production), or mosquitto.enabled for the in-chart one" -}}
{{- end -}}
{{- if not .Values.mqtt.existingSecret -}}
{{- fail "mqtt.existingSecret: a Secret with the key `password`, the cloud's MQTT password on the external broker" -}}
{{- end -}}
{{- end -}}
{{- if and .Values.ingress.enabled (not .Values.ingress.hosts) -}}
{{- fail "ingress.enabled: give ingress.hosts, the names the console answers on" -}}
{{- end -}}
{{- $s3 := .Values.media.s3 -}}
{{- if and $s3.enabled (or (not $s3.bucket) (not $s3.existingSecret)) -}}
{{- fail "media.s3.enabled: give media.s3.bucket and media.s3.existingSecret (a Secret with the keys `access-key-id` and `secret-access-key`)" -}}
{{- end -}}
{{- if and (eq .Values.live.mode "external") (not .Values.live.external.existingSecret) -}}
{{- fail "live.mode external: give live.external.existingSecret, a Secret whose key `url` is the RTSP server's rtsp://USER:PASSWORD@HOST:PORT/live/{device}" -}}
{{- end -}}
{{- $several := or (gt (int .Values.replicaCount) 1) .Values.autoscaling.enabled -}}
{{- if and $several .Values.persistence.enabled -}}
{{- fail "several replicas with persistence.enabled: the data volume is ReadWriteOnce, one pod only; set persistence.enabled false and media.s3 for the clips" -}}
{{- end -}}
{{- if and $several (not $s3.enabled) -}}
{{- fail "several replicas need media.s3: each pod's data directory is its own, so a clip stored by one would be missing on the others" -}}
{{- end -}}
{{- if and $several (eq .Values.live.mode "embedded") -}}
{{- fail "several replicas with live.mode embedded: a Pi's live stream would reach one replica only; use live.mode mediamtx (or external, or off)" -}}
{{- end -}}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) -}}
{{- fail "autoscaling: minReplicas is above maxReplicas" -}}
{{- end -}}
{{- if not .Release.IsInstall -}}
{{- $generated := lookup "v1" "Secret" .Release.Namespace (include "vigie.generatedSecret" .) -}}
{{- range $key := splitList "," (include "vigie.generatedKeys" .) -}}
{{- if and $key (not (and $generated (hasKey $generated.data $key))) -}}
{{- if eq $key "jwt-secret" -}}
{{- fail "jwt: this upgrade finds neither the JWT secret generated at install nor jwt.existingSecret; set jwt.existingSecret (a Secret with the key `jwt-secret`), or every session would end and pods would sign differently" -}}
{{- else -}}
{{- fail (printf "this upgrade cannot find %s in the Secret %s generated at install (a value that enables it was set after the install?); create that Secret key, or give the matching existingSecret" $key (include "vigie.generatedSecret" $)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
