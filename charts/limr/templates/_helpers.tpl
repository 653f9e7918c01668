{{/*
Names and labels. Kubernetes names are capped at 63 characters; every object name goes through these
helpers so a long release name is truncated the same way everywhere (and selectors keep matching).
*/}}
{{- define "limr.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "limr.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Name of one component's objects: "<fullname>-<component>"; the prefix is cut to 45 characters so that
StatefulSet names stay <= 52 (the controller-revision-hash label adds 11) and others <= 63. */}}
{{- define "limr.componentName" -}}
{{- $root := index . 0 -}}
{{- printf "%s-%s" (include "limr.fullname" $root | trunc 45 | trimSuffix "-") (index . 1) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "limr.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels of one component (immutable once deployed: never add version labels here). */}}
{{- define "limr.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "limr.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* Full label set of one component: selector labels plus chart/version bookkeeping. */}}
{{- define "limr.labels" -}}
{{- $root := index . 0 -}}
helm.sh/chart: {{ include "limr.chart" $root }}
{{ include "limr.selectorLabels" . }}
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
app.kubernetes.io/part-of: limr
{{- with $root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Pods carrying this label may reach object storage (see networkpolicy.yaml). */}}
{{- define "limr.storeAccessLabel" -}}
limr.io/store-access: "true"
{{- end -}}

{{- define "limr.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "limr.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "limr.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Object storage: the store URI every component is given, and where the credentials live. */}}
{{- define "limr.storeUri" -}}
{{- $prefix := trimAll "/" .Values.store.prefix -}}
{{- if $prefix -}}
{{- printf "s3://%s/%s" .Values.store.bucket $prefix -}}
{{- else -}}
{{- printf "s3://%s" .Values.store.bucket -}}
{{- end -}}
{{- end -}}

{{- define "limr.storeEndpoint" -}}
{{- if .Values.minio.enabled -}}
{{- printf "http://%s:%d" (include "limr.componentName" (list . "minio")) (int .Values.minio.service.port) -}}
{{- else -}}
{{- required "store.endpoint is required when minio.enabled=false" .Values.store.endpoint -}}
{{- end -}}
{{- end -}}

{{- define "limr.storeSecretName" -}}
{{- if .Values.store.existingSecret -}}
{{- .Values.store.existingSecret -}}
{{- else if .Values.minio.enabled -}}
{{- include "limr.componentName" (list . "store") -}}
{{- else -}}
{{- fail "store.existingSecret is required when minio.enabled=false (credentials never go into values)" -}}
{{- end -}}
{{- end -}}

{{- define "limr.apiSecretName" -}}
{{- default (include "limr.componentName" (list . "api")) .Values.auth.existingSecret -}}
{{- end -}}

{{/* Environment shared by every limr process: store location and credentials (from Secrets only). */}}
{{- define "limr.storeEnv" -}}
- name: LIMR_STORE
  value: {{ include "limr.storeUri" . | quote }}
- name: LIMR_S3_ENDPOINT
  value: {{ include "limr.storeEndpoint" . | quote }}
{{- with .Values.store.region }}
- name: LIMR_S3_REGION
  value: {{ . | quote }}
{{- end }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ include "limr.storeSecretName" . }}
      key: {{ .Values.store.secretKeys.accessKey }}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "limr.storeSecretName" . }}
      key: {{ .Values.store.secretKeys.secretKey }}
{{- end -}}

{{- define "limr.apiTokenEnv" -}}
- name: LIMR_API_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "limr.apiSecretName" . }}
      key: {{ .Values.auth.secretKey }}
{{- end -}}

{{/* Writable scratch space for read-only root filesystems; HOME and caches point into it. */}}
{{- define "limr.scratchEnv" -}}
- name: HOME
  value: /tmp/home
- name: XDG_CACHE_HOME
  value: /tmp/cache
- name: HF_HOME
  value: /tmp/cache/huggingface
{{- end -}}

{{/*
Secret value that survives upgrades: reuse the key of the live Secret when there is one (lookup is empty
under `helm template`, which then renders a fresh random value).
Call with (list $ secretName key length).
*/}}
{{- define "limr.persistentRandom" -}}
{{- $root := index . 0 -}}
{{- $existing := lookup "v1" "Secret" $root.Release.Namespace (index . 1) -}}
{{- if and $existing (hasKey $existing.data (index . 2)) -}}
{{- index $existing.data (index . 2) -}}
{{- else -}}
{{- randAlphaNum (int (index . 3)) | b64enc -}}
{{- end -}}
{{- end -}}

{{- define "limr.podSecurityContext" -}}
{{- toYaml .Values.podSecurityContext -}}
{{- end -}}

{{- define "limr.containerSecurityContext" -}}
{{- toYaml .Values.securityContext -}}
{{- end -}}

{{/* A list of words as one POSIX shell command line (RayJob entrypoints are run by a shell). */}}
{{- define "limr.shellJoin" -}}
{{- $out := list -}}
{{- range . -}}
{{- $w := toString . -}}
{{- if regexMatch "^[A-Za-z0-9_./:=,@+%-]+$" $w -}}
{{- $out = append $out $w -}}
{{- else -}}
{{- $out = append $out (printf "'%s'" (replace "'" "'\\''" $w)) -}}
{{- end -}}
{{- end -}}
{{- join " " $out -}}
{{- end -}}

{{/*
Name of a KubeRay object. KubeRay derives further names from it (RayService -> "<name>-<5 chars>" cluster,
"<cluster>-head-svc", "<name>-serve-svc", pod names), which must stay valid DNS labels: keep it <= 40.
*/}}
{{- define "limr.rayName" -}}
{{- $root := index . 0 -}}
{{- printf "%s-%s" (include "limr.fullname" $root | trunc 30 | trimSuffix "-") (index . 1) | trunc 40 | trimSuffix "-" -}}
{{- end -}}
