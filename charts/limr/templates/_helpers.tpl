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

{{/* "repository:tag", plus "@digest" when one is given (the digest wins; the tag stays for humans). */}}
{{- define "limr.imageRef" -}}
{{- printf "%s:%s" .repository .tag -}}{{ with .digest }}@{{ . }}{{ end -}}
{{- end -}}

{{- define "limr.image" -}}
{{- include "limr.imageRef" (dict "repository" .Values.image.repository "tag" (default .Chart.AppVersion .Values.image.tag) "digest" .Values.image.digest) -}}
{{- end -}}

{{/*
checkov skip annotations of one workload, for the few checks the chart deliberately does not meet, each with
its reason (tests/k8s/test_security.py scans every values file and allows nothing else). checkov splits an
annotation at "=": a reason must not contain one.
Call with (dict "root" $ "images" (list {digest, pullPolicy}...) "extra" (list "CKV_...=reason"...)).
*/}}
{{- define "limr.checkovSkips" -}}
{{- $skips := list -}}
{{- range .images -}}
{{- if and (not .digest) (not (has "digest" $skips)) -}}
{{- $skips = append $skips "digest" -}}
{{- end -}}
{{- if and (eq .pullPolicy "Never") (not (has "never" $skips)) -}}
{{- $skips = append $skips "never" -}}
{{- end -}}
{{- end -}}
{{- $lines := list -}}
{{- if has "digest" $skips -}}
{{- $lines = append $lines "CKV_K8S_43=no image digest in values (image.digest, minio.image.digest): the limr image is built by you, its digest is known only after your build; pin it there" -}}
{{- end -}}
{{- if has "never" $skips -}}
{{- $lines = append $lines "CKV_K8S_15=image.pullPolicy Never: the image is side-loaded into the nodes (kind load docker-image); there is no registry to pull from" -}}
{{- end -}}
{{- $lines = concat $lines (default list .extra) -}}
{{- range $i, $line := $lines }}
checkov.io/skip{{ add1 $i }}: {{ $line | quote }}
{{- end -}}
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
{{- fail "store.existingSecret (or every store.roleSecrets entry) is required when minio.enabled=false (credentials never go into values)" -}}
{{- end -}}
{{- end -}}

{{/*
Store key pair of one role (learner, scorer, api, rollout; limr.curation.roles): store.roleSecrets.<role>, else
with MinIO the chart's generated Secret (the store-setup Job makes its MinIO user), else store.existingSecret
(one key pair shared by every role). Call with (list $ role).
*/}}
{{- define "limr.storeRoleSecretName" -}}
{{- $root := index . 0 -}}
{{- $role := index . 1 -}}
{{- $given := get (default dict $root.Values.store.roleSecrets) $role -}}
{{- if $given -}}
{{- $given -}}
{{- else if $root.Values.minio.enabled -}}
{{- include "limr.componentName" (list $root (printf "store-%s" $role)) -}}
{{- else -}}
{{- include "limr.storeSecretName" $root -}}
{{- end -}}
{{- end -}}

{{/* Secret of one token role (writer, reader, rolloutAdmin): yours (existingSecret) or the generated one. */}}
{{- define "limr.tokenSecretName" -}}
{{- $root := index . 0 -}}
{{- $role := index . 1 -}}
{{- $names := dict "writer" "api" "reader" "api-read" "rolloutAdmin" "rollout-admin" -}}
{{- default (include "limr.componentName" (list $root (get $names $role))) (get $root.Values.auth $role).existingSecret -}}
{{- end -}}

{{/* Environment shared by every limr process: where the store is (its credentials come as files). */}}
{{- define "limr.storeEnv" -}}
- name: LIMR_STORE
  value: {{ include "limr.storeUri" . | quote }}
- name: LIMR_S3_ENDPOINT
  value: {{ include "limr.storeEndpoint" . | quote }}
{{- with .Values.store.region }}
- name: LIMR_S3_REGION
  value: {{ . | quote }}
{{- end }}
{{- end -}}

{{/*
Credentials as files: each role's Secret keys, projected into /var/run/secrets/limr/<file>, and the
`<NAME>_FILE` variables limr reads them through (limr.secrets). A pod names the roles it uses and gets those
files only. Call with (dict "root" $ "roles" (list "store:scorer" "writer" ...)); returns JSON {"files": [...]}.
Store roles: "store:<role>" is the pod's own key pair (the LIMR_S3_*_FILE variables); "store" is the root one
(MinIO and its store-setup Job only); "provision:<role>" is a role's pair as files for that Job (no variable).
*/}}
{{- define "limr.secretFiles" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
{{- $files := list -}}
{{- range .roles -}}
{{- if eq . "store" -}}
{{- $store := include "limr.storeSecretName" $root -}}
{{- $files = append $files (dict "secret" $store "key" $v.store.secretKeys.accessKey "path" "store/access-key-id" "env" "LIMR_S3_ACCESS_KEY_FILE") -}}
{{- $files = append $files (dict "secret" $store "key" $v.store.secretKeys.secretKey "path" "store/secret-access-key" "env" "LIMR_S3_SECRET_KEY_FILE") -}}
{{- else if hasPrefix "store:" . -}}
{{- $secret := include "limr.storeRoleSecretName" (list $root (trimPrefix "store:" .)) -}}
{{- $files = append $files (dict "secret" $secret "key" $v.store.secretKeys.accessKey "path" "store/access-key-id" "env" "LIMR_S3_ACCESS_KEY_FILE") -}}
{{- $files = append $files (dict "secret" $secret "key" $v.store.secretKeys.secretKey "path" "store/secret-access-key" "env" "LIMR_S3_SECRET_KEY_FILE") -}}
{{- else if hasPrefix "provision:" . -}}
{{- $role := trimPrefix "provision:" . -}}
{{- $secret := include "limr.storeRoleSecretName" (list $root $role) -}}
{{- $files = append $files (dict "secret" $secret "key" $v.store.secretKeys.accessKey "path" (printf "store-%s/access-key-id" $role) "env" "") -}}
{{- $files = append $files (dict "secret" $secret "key" $v.store.secretKeys.secretKey "path" (printf "store-%s/secret-access-key" $role) "env" "") -}}
{{- else if eq . "writer" -}}
{{- $files = append $files (dict "secret" (include "limr.tokenSecretName" (list $root "writer")) "key" $v.auth.writer.secretKey "path" "datasets/writer-token" "env" "LIMR_API_TOKEN_FILE") -}}
{{- else if and (eq . "reader") (include "limr.readerAuth" $root) -}}
{{- $files = append $files (dict "secret" (include "limr.tokenSecretName" (list $root "reader")) "key" $v.auth.reader.secretKey "path" "datasets/reader-token" "env" "LIMR_READ_TOKEN_FILE") -}}
{{- else if eq . "rolloutAdmin" -}}
{{- $files = append $files (dict "secret" (include "limr.tokenSecretName" (list $root "rolloutAdmin")) "key" $v.auth.rolloutAdmin.secretKey "path" "rollout/admin-token" "env" "LIMR_ROLLOUT_ADMIN_TOKEN_FILE") -}}
{{- end -}}
{{- end -}}
{{- toJson (dict "files" $files) -}}
{{- end -}}

{{- define "limr.secretsMountPath" -}}/var/run/secrets/limr{{- end -}}

{{/* `<NAME>_FILE` variables of (list of files from limr.secretFiles). */}}
{{- define "limr.secretFilesEnv" -}}
{{- range . }}
{{- if .env }}
- name: {{ .env }}
  value: {{ printf "%s/%s" (include "limr.secretsMountPath" nil) .path | quote }}
{{- end }}
{{- end -}}
{{- end -}}

{{/* The projected volume "secrets" holding exactly those files, readable by the pod's group only (0440). */}}
{{- define "limr.secretFilesVolume" -}}
- name: secrets
  projected:
    defaultMode: 288  # 0440: owner root, group fsGroup
    sources:
      {{- range . }}
      - secret:
          name: {{ .secret }}
          items:
            - {key: {{ .key }}, path: {{ .path }}}
      {{- end }}
{{- end -}}

{{- define "limr.secretFilesMount" -}}
- name: secrets
  mountPath: {{ include "limr.secretsMountPath" nil }}
  readOnly: true
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

{{/* "true" when the dataset API requires a token for reads: auth.reader.enabled, or (left null) an Ingress. */}}
{{- define "limr.readerAuth" -}}
{{- $enabled := .Values.auth.reader.enabled -}}
{{- if or (eq (toString $enabled) "true") (and (kindIs "invalid" $enabled) .Values.datasets.ingress.enabled) -}}true{{- end -}}
{{- end -}}
