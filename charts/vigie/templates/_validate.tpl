{{/* Rules across values that the schema cannot say; each fails with a sentence saying why. */}}
{{- define "vigie.validate" -}}
{{- $pg := .Values.postgresql.external -}}
{{- if and (not $pg.url) (not $pg.existingSecret) -}}
{{- fail "postgresql.external: give the database's url, or existingSecret naming a Secret with the key `url`" -}}
{{- end -}}
{{- if and $pg.url $pg.existingSecret -}}
{{- fail "postgresql.external: give url or existingSecret, not both" -}}
{{- end -}}
{{- if not .Values.mqtt.external.url -}}
{{- fail "mqtt.external.url: the broker the Pis publish to (mqtts://host:8884 in production)" -}}
{{- end -}}
{{- if not .Values.mqtt.external.existingSecret -}}
{{- fail "mqtt.external.existingSecret: a Secret with the key `password`, the cloud's MQTT password" -}}
{{- end -}}
{{- if and .Values.ingress.enabled (not .Values.ingress.hosts) -}}
{{- fail "ingress.enabled: give ingress.hosts, the names the console answers on" -}}
{{- end -}}
{{- if and (gt (int .Values.replicaCount) 1) .Values.persistence.enabled -}}
{{- fail "replicaCount above 1 with persistence.enabled: the data volume is ReadWriteOnce, one pod only (and several replicas are not supported yet)" -}}
{{- end -}}
{{- if and (not .Release.IsInstall) (not .Values.jwt.existingSecret) -}}
{{- $generated := lookup "v1" "Secret" .Release.Namespace (include "vigie.generatedSecret" .) -}}
{{- if not $generated -}}
{{- fail "jwt: this upgrade finds neither the JWT secret generated at install nor jwt.existingSecret; set jwt.existingSecret (a Secret with the key `jwt-secret`), or every session would end and pods would sign differently" -}}
{{- end -}}
{{- end -}}
{{- end -}}
