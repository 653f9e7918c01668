{{/* Post-install notes; a define so that tests can render them (helm template skips NOTES.txt). */}}
{{- define "limr.notes" -}}
limr {{ .Chart.AppVersion }} is installed as release "{{ .Release.Name }}" in namespace "{{ .Release.Namespace }}".
{{- $ns := .Release.Namespace }}
{{- $datasets := include "limr.componentName" (list . "datasets") }}

Object store: {{ include "limr.storeUri" . }} at {{ include "limr.storeEndpoint" . }}
{{- if .Values.minio.enabled }} (MinIO deployed by this chart){{ end }}

1. Watch the Ray side come up (KubeRay operator required):
     kubectl -n {{ $ns }} get rayclusters,rayservices,rayjobs
{{- if .Values.train.enabled }}

2. Training job "{{ include "limr.rayName" (list . "train") }}" was submitted with the release:
     kubectl -n {{ $ns }} get rayjob {{ include "limr.rayName" (list . "train") }} -w
     kubectl -n {{ $ns }} logs -f job/{{ include "limr.rayName" (list . "train") }}
{{- end }}
{{- if .Values.ray.cluster.enabled }}

   Submit another training run to the running cluster "{{ include "limr.rayName" (list . "ray") }}" (e.g. on a
   curated subset), either as a RayJob (see manifests/examples/rayjob-train-existing-cluster.yaml) or with
   the Ray job CLI through the dashboard:
     kubectl -n {{ $ns }} port-forward svc/{{ include "limr.rayName" (list . "ray") }}-head-svc 8265:8265 &
     {{- if .Values.ray.auth.enabled }}
     export RAY_AUTH_MODE=token RAY_AUTH_TOKEN="$(kubectl -n {{ $ns }} get secret {{ include "limr.rayTokenSecretName" (include "limr.rayName" (list . "ray")) }} -o jsonpath='{.data.auth_token}' | base64 -d)"
     {{- end }}
     ray job submit --address http://127.0.0.1:8265 -- limr train --config /etc/limr/train.yaml --store {{ include "limr.storeUri" . }}
{{- end }}
{{- if .Values.datasets.enabled }}

3. Query the curated datasets:
{{- if .Values.datasets.ingress.enabled }}
     export LIMR_DATASETS_URL=http{{ if .Values.datasets.ingress.tls }}s{{ end }}://{{ first .Values.datasets.ingress.hosts }}
{{- else }}
     kubectl -n {{ $ns }} port-forward svc/{{ $datasets }} 8080:{{ .Values.datasets.service.port }} &
     export LIMR_DATASETS_URL=http://127.0.0.1:8080
{{- end }}
     curl $LIMR_DATASETS_URL/v1/runs
     curl $LIMR_DATASETS_URL/v1/datasets
     open $LIMR_DATASETS_URL/docs   # OpenAPI UI
     limr datasets list              # the CLI reads the same variable
   Write calls (publishing a version) need the bearer token:
     export LIMR_API_TOKEN=$(kubectl -n {{ $ns }} get secret {{ include "limr.tokenSecretName" (list . "writer") }} -o jsonpath='{.data.{{ .Values.auth.writer.secretKey }}}' | base64 -d)
{{- end }}
{{- if not (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1") }}

Note: monitoring.coreos.com/v1 is not served by this cluster, so no ServiceMonitor/PodMonitor/PrometheusRule
was created; install the Prometheus operator and upgrade the release to get them.
{{- end }}
{{- end -}}
