{{/* Chart name, or nameOverride. */}}
{{- define "canaryop.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Prefix of every object name: fullnameOverride, else the release name when it
contains the chart name (`helm install canaryop` names the objects exactly as
config/default does: canaryop-controller-manager, ...), else <release>-<name>.
*/}}
{{- define "canaryop.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "canaryop.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "canaryop.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "canaryop.labels" -}}
helm.sh/chart: {{ include "canaryop.chart" . }}
{{ include "canaryop.selectorLabels" . }}
app.kubernetes.io/version: {{ include "canaryop.tag" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Labels that select the manager's pods (config/manager has the first two). */}}
{{- define "canaryop.selectorLabels" -}}
app.kubernetes.io/name: {{ include "canaryop.name" . }}
app.kubernetes.io/component: controller-manager
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "canaryop.managerName" -}}
{{- include "canaryop.fullname" . }}-controller-manager
{{- end -}}

{{- define "canaryop.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "canaryop.managerName" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name: name the existing ServiceAccount when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "canaryop.tag" -}}
{{- default .Chart.AppVersion .Values.image.tag -}}
{{- end -}}

{{- define "canaryop.image" -}}
{{- $ref := printf "%s:%s" .Values.image.repository (include "canaryop.tag" .) -}}
{{- with .Values.image.digest -}}
{{- if not (regexMatch "^sha256:[a-f0-9]{64}$" .) -}}
{{- fail (printf "image.digest %q: want sha256: and 64 hex digits" .) -}}
{{- end -}}
{{- $ref = printf "%s@%s" $ref . -}}
{{- end -}}
{{- $ref -}}
{{- end -}}

{{/* Namespace of the credential Secrets and of the Role that reads them. */}}
{{- define "canaryop.credentialsNamespace" -}}
{{- default .Release.Namespace .Values.gitWriteBack.credentialsNamespace -}}
{{- end -}}

{{- define "canaryop.leaderElectionNamespace" -}}
{{- default .Release.Namespace .Values.leaderElection.namespace -}}
{{- end -}}

{{- define "canaryop.signingDir" -}}/etc/canaryop/signing{{- end -}}

{{/*
The manager's flags, one per line. The first five are config/manager's; a
value left empty passes no flag, so the operator's own default applies.
*/}}
{{- define "canaryop.args" -}}
{{- $v := .Values -}}
{{- if and $v.leaderElection.enabled (not $v.sharding.enabled) }}
- --leader-elect
{{- end }}
- --metrics-bind-address=:{{ $v.metrics.port }}
- --health-probe-bind-address=:{{ $v.healthProbePort }}
{{- if not (kindIs "invalid" $v.memoryLimitRatio) }}
- {{ printf "--memory-limit-ratio=%v" $v.memoryLimitRatio | quote }}
{{- end }}
{{- with $v.pprofBindAddress }}
- {{ printf "--pprof-bind-address=%v" . | quote }}
{{- end }}
- {{ printf "--git-cache-dir=%v" $v.gitWriteBack.cacheDir | quote }}
{{- with $v.prometheusAllowedURLs }}
- {{ printf "--prometheus-allowed-urls=%v" (join "," .) | quote }}
{{- end }}
{{- with $v.leaderElection.namespace }}
- {{ printf "--leader-election-namespace=%v" . | quote }}
{{- end }}
{{- if not (kindIs "invalid" $v.maxConcurrentReconciles) }}
- {{ printf "--max-concurrent-reconciles=%d" (int $v.maxConcurrentReconciles) | quote }}
{{- end }}
{{- if not (kindIs "invalid" $v.kubeAPIQPS) }}
- {{ printf "--kube-api-qps=%v" $v.kubeAPIQPS | quote }}
{{- end }}
{{- if not (kindIs "invalid" $v.kubeAPIBurst) }}
- {{ printf "--kube-api-burst=%d" (int $v.kubeAPIBurst) | quote }}
{{- end }}
{{- if not (kindIs "invalid" $v.maxProgressingCanaries) }}
- {{ printf "--max-progressing-canaries=%d" (int $v.maxProgressingCanaries) | quote }}
{{- end }}
{{- if not (kindIs "invalid" $v.maxProgressingCanariesPerNamespace) }}
- {{ printf "--max-progressing-canaries-per-namespace=%d" (int $v.maxProgressingCanariesPerNamespace) | quote }}
{{- end }}
{{- if $v.sharding.enabled }}
- --sharding
{{- if not (kindIs "invalid" $v.sharding.shards) }}
- {{ printf "--shards=%d" (int $v.sharding.shards) | quote }}
{{- end }}
{{- with $v.sharding.leaseDuration }}
- {{ printf "--shard-lease-duration=%v" . | quote }}
{{- end }}
{{- with $v.sharding.renewDeadline }}
- {{ printf "--shard-renew-deadline=%v" . | quote }}
{{- end }}
{{- with $v.sharding.retryPeriod }}
- {{ printf "--shard-retry-period=%v" . | quote }}
{{- end }}
{{- end }}
{{- with $v.allowedGateways }}
- {{ printf "--allowed-gateways=%v" (join ";" .) | quote }}
{{- end }}
{{- with $v.trafficRouters }}
- {{ printf "--traffic-routers=%v" (join "," .) | quote }}
{{- end }}
{{- if $v.podsRunAsNonRoot }}
- --pods-run-as-non-root
{{- end }}
{{- with $v.notifications.timeout }}
- {{ printf "--notification-timeout=%v" . | quote }}
{{- end }}
{{- if not (kindIs "invalid" $v.notifications.attempts) }}
- {{ printf "--notification-attempts=%d" (int $v.notifications.attempts) | quote }}
{{- end }}
{{- if not $v.gitWriteBack.enabled }}
- --git-writeback=false
{{- end }}
{{- with $v.gitWriteBack.authorName }}
- {{ printf "--git-author-name=%v" . | quote }}
{{- end }}
{{- with $v.gitWriteBack.authorEmail }}
- {{ printf "--git-author-email=%v" . | quote }}
{{- end }}
{{- with $v.gitWriteBack.credentialsNamespace }}
- {{ printf "--git-credentials-namespace=%v" . | quote }}
{{- end }}
{{- if not (kindIs "invalid" $v.gitWriteBack.concurrency) }}
- {{ printf "--write-back-concurrency=%d" (int $v.gitWriteBack.concurrency) | quote }}
{{- end }}
{{- if not (kindIs "invalid" $v.gitWriteBack.maxOutcomesPerCommit) }}
- {{ printf "--git-max-outcomes-per-commit=%d" (int $v.gitWriteBack.maxOutcomesPerCommit) | quote }}
{{- end }}
{{- with $v.gitWriteBack.timeout }}
- {{ printf "--write-back-timeout=%v" . | quote }}
{{- end }}
{{- if eq $v.gitWriteBack.commitStatuses false }}
- "--commit-statuses=false"
{{- end }}
{{- with $v.gitWriteBack.pullRequestPollInterval }}
- {{ printf "--pull-request-poll-interval=%v" . | quote }}
{{- end }}
{{- with $v.gitWriteBack.maxRepoSize }}
- {{ printf "--git-max-repo-size=%v" . | quote }}
{{- end }}
{{- with $v.gitWriteBack.maxCacheSize }}
- {{ printf "--git-max-cache-size=%v" . | quote }}
{{- end }}
{{- with $v.gitWriteBack.signing.secretName }}
- {{ printf "--git-signing-key-file=%s/%s" (include "canaryop.signingDir" $) $v.gitWriteBack.signing.keyFileKey | quote }}
{{- with $v.gitWriteBack.signing.passphraseFileKey }}
- {{ printf "--git-signing-passphrase-file=%s/%s" (include "canaryop.signingDir" $) . | quote }}
{{- end }}
{{- end }}
{{- with $v.argocd.namespace }}
- {{ printf "--argocd-namespace=%v" . | quote }}
{{- end }}
{{- with $v.argocd.applicationNamespaces }}
- {{ printf "--argocd-application-namespaces=%v" (join "," .) | quote }}
{{- end }}
{{- with $v.logging.level }}
- {{ printf "--zap-log-level=%v" . | quote }}
{{- end }}
{{- with $v.logging.encoder }}
- {{ printf "--zap-encoder=%v" . | quote }}
{{- end }}
{{- if $v.logging.development }}
- --zap-devel
{{- end }}
{{- with $v.logging.stacktraceLevel }}
- {{ printf "--zap-stacktrace-level=%v" . | quote }}
{{- end }}
{{- with $v.logging.timeEncoding }}
- {{ printf "--zap-time-encoding=%v" . | quote }}
{{- end }}
{{- range $v.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end -}}
