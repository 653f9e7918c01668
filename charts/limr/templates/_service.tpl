{{/*
Deployment + Service + PodDisruptionBudget of one limr HTTP service (scorer, datasets). Both run
`limr serve <name>` from the same image with the same security and storage wiring, so they share this
template. Call with (dict "root" $ "component" "scorer" "svc" .Values.scorer "storeRole" "scorer" "secrets"
(list "store:scorer" ...)): `secrets` names the credential roles the service uses (limr.secretFiles); it mounts
those and nothing else. `storeRole`: its store role (limr.curation.roles), as a pod label.
*/}}
{{- define "limr.httpService" -}}
{{- $root := .root -}}
{{- $c := .component -}}
{{- $s := .svc -}}
{{- $name := include "limr.componentName" (list $root $c) -}}
{{- $files := (include "limr.secretFiles" (dict "root" $root "roles" .secrets) | fromJson).files -}}
{{- $secretNames := list -}}
{{- range $files }}{{ $secretNames = append $secretNames .secret | uniq }}{{ end -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "limr.labels" (list $root $c) | nindent 4 }}
  {{- with include "limr.checkovSkips" (dict "root" $root "images" (list $root.Values.image)) | trim }}
  annotations:
    {{- . | nindent 4 }}
  {{- end }}
spec:
  {{- if not (and (hasKey $s "autoscaling") $s.autoscaling.enabled) }}
  replicas: {{ $s.replicas }}
  {{- end }}
  revisionHistoryLimit: 3
  {{- with $s.strategy }}
  strategy:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "limr.selectorLabels" (list $root $c) | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "limr.labels" (list $root $c) | nindent 8 }}
        {{- include "limr.storeAccessLabel" $root | nindent 8 }}
        limr.io/store-role: {{ .storeRole }}
      annotations:
        # Roll the pods when a Secret they mount changes name.
        limr.io/secrets: {{ join "," $secretNames | quote }}
        {{- with $s.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "limr.serviceAccountName" $root }}
      automountServiceAccountToken: false
      securityContext:
        {{- include "limr.podSecurityContext" $root | nindent 8 }}
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $s.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $s.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $s.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: {{ $c }}
          image: {{ include "limr.image" $root }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          command: ["limr"]
          args:
            {{- toYaml (concat (list "serve" $c "--store" (include "limr.storeUri" $root) "--host" "0.0.0.0" "--port" (toString $s.port)) $s.extraArgs) | nindent 12 }}
          env:
            {{- include "limr.storeEnv" $root | nindent 12 }}
            {{- include "limr.secretFilesEnv" $files | nindent 12 }}
            {{- include "limr.scratchEnv" $root | nindent 12 }}
            {{- with $s.env }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          ports:
            - name: http
              containerPort: {{ $s.port }}
              protocol: TCP
          livenessProbe:
            httpGet: {path: /healthz, port: http}
            {{- toYaml $s.livenessProbe | nindent 12 }}
          readinessProbe:
            httpGet: {path: /readyz, port: http}
            {{- toYaml $s.readinessProbe | nindent 12 }}
          resources:
            {{- toYaml $s.resources | nindent 12 }}
          securityContext:
            {{- include "limr.containerSecurityContext" $root | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            {{- include "limr.secretFilesMount" $root | nindent 12 }}
      volumes:
        - name: tmp
          emptyDir:
            sizeLimit: 1Gi
        {{- include "limr.secretFilesVolume" $files | nindent 8 }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "limr.labels" (list $root $c) | nindent 4 }}
spec:
  type: {{ $s.service.type }}
  selector:
    {{- include "limr.selectorLabels" (list $root $c) | nindent 4 }}
  ports:
    - name: http
      port: {{ $s.service.port }}
      targetPort: http
      protocol: TCP
{{- if $s.pdb.enabled }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ $name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "limr.labels" (list $root $c) | nindent 4 }}
spec:
  {{- if hasKey $s.pdb "minAvailable" }}
  minAvailable: {{ $s.pdb.minAvailable }}
  {{- else }}
  maxUnavailable: {{ $s.pdb.maxUnavailable }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "limr.selectorLabels" (list $root $c) | nindent 6 }}
{{- end }}
{{- end -}}
