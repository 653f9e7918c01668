{{/*
Alert rules (PrometheusRule spec.groups). Every expression is scoped to the release's namespace; the
thresholds are values. tests/k8s runs `promtool check rules` over exactly this output.
*/}}
{{- define "limr.alertGroups" -}}
{{- $r := .Values.monitoring.prometheusRule -}}
{{- $ns := printf "namespace=%q" .Release.Namespace -}}
- name: limr.services
  rules:
    - alert: LimrScorerLagging
      expr: max by (namespace) (limr_scorer_ingestion_lag_seconds{ {{- $ns -}} }) > {{ $r.scorerLagSeconds }}
      for: {{ $r.for }}
      labels:
        severity: warning
      annotations:
        summary: The scorer is {{ "{{ $value | humanizeDuration }}" }} behind the newest event object.
        description: Scores and curated datasets are stale; check the scorer's logs and the store's health.
    - alert: LimrObjectsQuarantined
      expr: sum by (namespace) (increase(limr_scorer_objects_quarantined_total{ {{- $ns -}} }[15m])) > 0
      labels:
        severity: warning
      annotations:
        summary: "{{ "{{ $value }}" }} event objects were quarantined in the last 15 minutes."
        description: Malformed or unreadable event objects were set aside; see the quarantine records in the store.
    - alert: LimrScorerLoopErrors
      expr: sum by (namespace) (increase(limr_scorer_loop_errors_total{ {{- $ns -}} }[15m])) > 0
      for: {{ $r.for }}
      labels:
        severity: warning
      annotations:
        summary: "{{ "{{ $value }}" }} scorer ingestion passes failed in the last 15 minutes."
        description: The store is unreachable or the scorer hit a bug; objects are retried, never quarantined. See /readyz and the logs.
    - alert: LimrScorerDown
      expr: absent(up{ {{- $ns }}, service={{ include "limr.componentName" (list . "scorer") | quote }}} == 1)
      for: {{ $r.for }}
      labels:
        severity: critical
      annotations:
        summary: No scorer instance is up; events are not being scored.
- name: limr.ray
  rules:
    - alert: LimrRolloutErrors
      expr: >-
        sum by (namespace) (rate(limr_rollout_requests_total{ {{- $ns }}, status="error"}[5m]))
        / clamp_min(sum by (namespace) (rate(limr_rollout_requests_total{ {{- $ns -}} }[5m])), 1e-9)
        > {{ $r.rolloutErrorRatio }}
      for: {{ $r.for }}
      labels:
        severity: warning
      annotations:
        summary: "{{ "{{ $value | humanizePercentage }}" }} of rollout requests fail."
    - alert: LimrTrainingStalled
      expr: >-
        max by (namespace, run) (limr_train_step{ {{- $ns -}} })
        and on (namespace, run)
        max by (namespace, run) (changes(limr_train_step{ {{- $ns -}} }[{{ $r.trainStallWindow }}])) == 0
      labels:
        severity: critical
      annotations:
        summary: Run {{ "{{ $labels.run }}" }} reported no new PPO step in {{ $r.trainStallWindow }}.
        description: A learner that stops stepping while its metrics are still exported is hung (rollout, NCCL or store).
{{- end -}}
