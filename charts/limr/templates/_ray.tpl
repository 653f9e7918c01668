{{/*
The ONE Ray pod template. The head and every worker group of the RayCluster, of the RayService's cluster
and of a RayJob's own cluster are all rendered from here, so a fix (security context, volumes, env)
reaches every group at once instead of drifting between copies (KubeRay chart issue #2632).

Call with (dict "root" $ "group" <group values> "nodeType" "head"|"worker" "role" "cluster"|"rollout"|"job").
Group values: resources, gpus, nodeSelector, tolerations, affinity, and the extras KubeRay's chart offers
(env, volumes, volumeMounts, sidecars, podAnnotations).
*/}}
{{- define "limr.rayPodTemplate" -}}
{{- $root := .root -}}
{{- $g := .group -}}
{{- $v := $root.Values -}}
{{- $gpus := int (default 0 $g.gpus) -}}
{{- $resources := deepCopy (default dict $g.resources) -}}
{{- if gt $gpus 0 -}}
{{- $limits := default dict $resources.limits -}}
{{- $requests := default dict $resources.requests -}}
{{- $_ := set $limits $v.ray.gpu.resourceName $gpus -}}
{{- $_ := set $requests $v.ray.gpu.resourceName $gpus -}}
{{- $_ := set $resources "limits" $limits -}}
{{- $_ := set $resources "requests" $requests -}}
{{- end -}}
{{- $nodeSelector := deepCopy (default dict $g.nodeSelector) -}}
{{- $tolerations := default list $g.tolerations -}}
{{- if gt $gpus 0 -}}
{{- $nodeSelector = merge $nodeSelector (deepCopy $v.ray.gpu.nodeSelector) -}}
{{- $tolerations = concat $tolerations $v.ray.gpu.tolerations -}}
{{- end -}}
{{- /* Credentials as files: the RayService's pods hold the rollout role's store keys (read runs/), the training
clusters' the learner's (write runs/); only the RayService's pods hold the rollout admin token;
training pods read prompt pools through the dataset API (dataset://NAME@VERSION), with the reader token when
reads need one. */ -}}
{{- $storeRole := eq .role "rollout" | ternary "rollout" "learner" -}}
{{- $roles := eq .role "rollout" | ternary (list "store:rollout" "rolloutAdmin") (list "store:learner" "reader") -}}
{{- $files := (include "limr.secretFiles" (dict "root" $root "roles" $roles) | fromJson).files -}}
{{- $annotations := merge (deepCopy (default dict $g.podAnnotations)) (default dict $v.ray.podAnnotations) -}}
{{- if and $v.ray.autoscaling.enabled (eq .nodeType "head") -}}
{{- /* the one pod that mounts a ServiceAccount token; checkov reads the reason from here (test_security.py) */ -}}
{{- $_ := set $annotations "checkov.io/skip-autoscaler-token" "CKV_K8S_38=ray.autoscaling: KubeRay runs the autoscaler as a sidecar of the head pod, which needs the API (Role: get/list/watch/patch pods and rayclusters); worker pods mount no token" -}}
{{- end -}}
metadata:
  labels:
    {{- include "limr.labels" (list $root "ray") | nindent 4 }}
    {{- include "limr.storeAccessLabel" $root | nindent 4 }}
    limr.io/store-role: {{ $storeRole }}
    limr.io/ray-node-type: {{ .nodeType }}
    limr.io/ray-role: {{ .role }}
  {{- with $annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  serviceAccountName: {{ include "limr.serviceAccountName" $root }}
  # The Ray autoscaler sidecar (head pods only) talks to the API server; nothing else in a Ray pod does.
  automountServiceAccountToken: {{ and $v.ray.autoscaling.enabled (eq .nodeType "head") }}
  securityContext:
    {{- include "limr.podSecurityContext" $root | nindent 4 }}
  {{- with $v.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $g.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.ray.initContainers }}
  initContainers:
    # Preparation steps (e.g. a tiny model and a synthetic prompt pool for kind) writing into the model volume.
    {{- range . }}
    - name: {{ .name }}
      image: {{ include "limr.image" $root }}
      imagePullPolicy: {{ $v.image.pullPolicy }}
      command: {{ toJson (default (list "limr") .command) }}
      args: {{ toJson .args }}
      env:
        {{- include "limr.scratchEnv" $root | nindent 8 }}
      resources:
        {{- toYaml (default $v.ray.initResources .resources) | nindent 8 }}
      securityContext:
        {{- include "limr.containerSecurityContext" $root | nindent 8 }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
        {{- if $v.model.volume }}
        - name: model
          mountPath: {{ $v.model.mountPath }}
        {{- end }}
    {{- end }}
  {{- end }}
  containers:
    - name: ray-{{ .nodeType }}
      image: {{ include "limr.image" $root }}
      imagePullPolicy: {{ $v.image.pullPolicy }}
      env:
        {{- include "limr.storeEnv" $root | nindent 8 }}
        {{- include "limr.secretFilesEnv" $files | nindent 8 }}
        {{- include "limr.scratchEnv" $root | nindent 8 }}
        - name: LIMR_MODEL
          value: {{ $v.model.path | quote }}
        {{- if $v.datasets.enabled }}
        # where `dataset://NAME@VERSION` pools resolve: this release's dataset API
        - name: LIMR_DATASETS_URL
          value: {{ printf "http://%s:%d" (include "limr.componentName" (list $root "datasets")) (int $v.datasets.service.port) | quote }}
        {{- end }}
        {{- with $v.ray.env }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
        {{- with $g.env }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      ports:
        {{- if eq .nodeType "head" }}
        - {name: gcs-server, containerPort: 6379}
        - {name: dashboard, containerPort: 8265}
        - {name: client, containerPort: 10001}
        - {name: serve, containerPort: 8000}
        {{- end }}
        - {name: metrics, containerPort: 8080}
        # The learner's rank 0 serves limr_train_* here (train config metrics.port), on whichever pod it lands.
        - {name: train-metrics, containerPort: {{ $v.ray.trainMetricsPort }}}
      resources:
        {{- toYaml $resources | nindent 8 }}
      securityContext:
        {{- include "limr.containerSecurityContext" $root | nindent 8 }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
        - name: config
          mountPath: /etc/limr
          readOnly: true
        {{- include "limr.secretFilesMount" $root | nindent 8 }}
        {{- if $v.ray.sharedMemory.enabled }}
        - name: dshm
          mountPath: /dev/shm
        {{- end }}
        {{- if $v.model.volume }}
        - name: model
          mountPath: {{ $v.model.mountPath }}
          readOnly: {{ empty $v.ray.initContainers }}
        {{- end }}
        {{- with $g.volumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    {{- with $g.sidecars }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  volumes:
    - name: tmp
      emptyDir:
        sizeLimit: {{ $v.ray.tmpSizeLimit }}
    - name: config
      configMap:
        name: {{ include "limr.componentName" (list $root "config") }}
    {{- include "limr.secretFilesVolume" $files | nindent 4 }}
    {{- if $v.ray.sharedMemory.enabled }}
    # NCCL and the Ray object store need a /dev/shm far larger than the container default (64 MiB).
    - name: dshm
      emptyDir:
        medium: Memory
        sizeLimit: {{ $v.ray.sharedMemory.sizeLimit }}
    {{- end }}
    {{- with $v.model.volume }}
    - name: model
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with $g.volumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end -}}

{{/*
checkov skip annotations of a Ray object (RayCluster, RayService, RayJob). checkov does not read KubeRay's
kinds; tests/k8s/test_security.py scans every group's pod template as the Pod KubeRay makes of it, carrying
these annotations. Call with the root context.
*/}}
{{- define "limr.rayCheckovSkips" -}}
{{- $extra := list "CKV_K8S_8=KubeRay adds the liveness probe of every Ray container (raylet and GCS health) when the template sets none" "CKV_K8S_9=KubeRay adds the readiness probe of every Ray container (raylet and GCS health) when the template sets none" -}}
{{- include "limr.checkovSkips" (dict "root" . "images" (list .Values.image) "extra" $extra) -}}
{{- end -}}

{{/*
A complete RayCluster spec (head + worker groups), shared by RayCluster.spec,
RayService.spec.rayClusterConfig and RayJob.spec.rayClusterSpec.
Call with (dict "root" $ "workerGroups" <list> "role" <role> "cluster" <Ray object name>); every group goes
through limr.rayPodTemplate. With ray.auth.enabled the cluster runs Ray's token auth with its own token
(limr.rayTokenSecretName, rendered by secrets.yaml), and its head Service stays ClusterIP: the dashboard and
job API (8265), GCS (6379) and Serve (8000) are reachable only inside the Kubernetes network, and there only
from the pods the "ray" NetworkPolicy admits.
*/}}
{{- define "limr.rayClusterSpec" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
rayVersion: {{ $v.ray.version | quote }}
{{- if $v.ray.auth.enabled }}
authOptions:
  mode: token
  secretName: {{ include "limr.rayTokenSecretName" .cluster }}
{{- end }}
enableInTreeAutoscaling: {{ $v.ray.autoscaling.enabled }}
{{- if $v.ray.autoscaling.enabled }}
autoscalerOptions:
  upscalingMode: {{ $v.ray.autoscaling.upscalingMode }}
  idleTimeoutSeconds: {{ $v.ray.autoscaling.idleTimeoutSeconds }}
  resources:
    {{- toYaml $v.ray.autoscaling.resources | nindent 4 }}
  securityContext:
    {{- include "limr.containerSecurityContext" $root | nindent 4 }}
{{- end }}
headGroupSpec:
  serviceType: ClusterIP
  rayStartParams:
    {{- toYaml (merge (deepCopy $v.ray.head.rayStartParams) (dict "dashboard-host" "0.0.0.0" "metrics-export-port" "8080")) | nindent 4 }}
  template:
    {{- include "limr.rayPodTemplate" (dict "root" $root "group" $v.ray.head "nodeType" "head" "role" .role) | nindent 4 }}
workerGroupSpecs:
  {{- $role := .role }}
  {{- range .workerGroups }}
  - groupName: {{ .name }}
    replicas: {{ .replicas }}
    minReplicas: {{ hasKey . "minReplicas" | ternary .minReplicas .replicas }}
    maxReplicas: {{ hasKey . "maxReplicas" | ternary .maxReplicas .replicas }}
    rayStartParams:
      {{- toYaml (merge (deepCopy (default dict .rayStartParams)) (dict "metrics-export-port" "8080")) | nindent 6 }}
    template:
      {{- include "limr.rayPodTemplate" (dict "root" $root "group" . "nodeType" "worker" "role" $role) | nindent 6 }}
  {{- end }}
{{- end -}}

{{/* The Secret holding a Ray cluster's token (key auth_token, as KubeRay's authOptions expects). Call with
the Ray object's name. */}}
{{- define "limr.rayTokenSecretName" -}}
{{- printf "%s-ray-token" . -}}
{{- end -}}

{{/* Names of the Ray objects that bring a cluster of their own (each needs a token Secret). */}}
{{- define "limr.rayClusterNames" -}}
{{- $names := list -}}
{{- if .Values.ray.cluster.enabled }}{{ $names = append $names (include "limr.rayName" (list . "ray")) }}{{ end -}}
{{- if .Values.rollout.enabled }}{{ $names = append $names (include "limr.rayName" (list . "rollout")) }}{{ end -}}
{{- if and .Values.train.enabled (not .Values.train.useExistingCluster) }}{{ $names = append $names (include "limr.rayName" (list . "train")) }}{{ end -}}
{{- toJson $names -}}
{{- end -}}
