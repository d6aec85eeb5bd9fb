{{/* The release's full name, at most 63 characters (a DNS label). */}}
{{- define "gitstage.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The Lease the replicas elect their leader on: one per release, so that two releases in
one namespace never share a leader (`gitstage-operator` for a release named gitstage). */}}
{{- define "gitstage.leaseName" -}}
{{- printf "%s-operator" (include "gitstage.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* listenAddress as a URL's host: an IPv6 address in brackets. */}}
{{- define "gitstage.listenHost" -}}
{{- if contains ":" .Values.listenAddress -}}[{{ .Values.listenAddress }}]{{- else -}}{{ .Values.listenAddress }}{{- end -}}
{{- end -}}

{{/* Labels every object of the release carries. */}}
{{- define "gitstage.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "gitstage.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels selecting the operator pod. */}}
{{- define "gitstage.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "gitstage.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "gitstage.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The operator image, by digest when one is given. */}}
{{- define "gitstage.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/*
What the operator does in a namespace, and nothing more:
- ModelRegistries: kopf lists and watches them (event handlers only: no finalizer, no
  annotation of its own); workers read them and patch their status. A standby that receives a
  webhook patches the registry's `gitstage.dev/requestedAt` annotation for the leader to poll:
  only with leader election and webhooks both on is the registry itself patchable. Updating
  the finalizers subresource lets the Deployments' ownerReferences set blockOwnerDeletion
  where the OwnerReferencesPermissionEnforcement admission plugin is on: only when the
  operator applies Deployments as itself (with tenancy, the tenant's account applies them).
- Deployments: server-side apply (patch; create when apply creates), read, and a watch for
  rollout progress. Never delete: owner references delete them with their ModelRegistry.
- Secrets: get only, the source credentials a ModelRegistry names (never list or watch).
- Events: create (kopf posts rollout, rollback and failure events).
*/}}
{{- define "gitstage.namespacedRules" -}}
- apiGroups: [gitstage.dev]
  resources: [modelregistries]
  {{- if and (include "gitstage.leaderElection" .) .Values.webhook.enabled }}
  verbs: [get, list, watch, patch]
  {{- else }}
  verbs: [get, list, watch]
  {{- end }}
- apiGroups: [gitstage.dev]
  resources: [modelregistries/status]
  verbs: [patch]
{{- if not (include "gitstage.impersonatesAlways" .) }}
- apiGroups: [gitstage.dev]
  resources: [modelregistries/finalizers]
  verbs: [update]
{{- end }}
{{- /* Impersonating a registry's ServiceAccount: writes and Secret reads are the tenant's. */}}
- apiGroups: [""]
  resources: [serviceaccounts]
  verbs: [impersonate]
{{- if include "gitstage.impersonatesAlways" . }}
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [services]
  verbs: [get]
{{- else }}
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch]
- apiGroups: [""]
  resources: [services]
  verbs: [get, create, patch, delete]
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
{{- end }}
- apiGroups: [""]
  resources: [pods]
  verbs: [list, watch]
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end -}}


{{- /* Non-empty when every ModelRegistry is served as a ServiceAccount of its namespace. */}}
{{- define "gitstage.impersonatesAlways" -}}
{{- if or .Values.tenancy.requireServiceAccount .Values.tenancy.defaultServiceAccount -}}true{{- end -}}
{{- end -}}


{{- /* Non-empty when replicas elect a leader on a Lease (asked for, or more than one replica). */}}
{{- define "gitstage.leaderElection" -}}
{{- if or .Values.leaderElection.enabled (gt (int .Values.replicas) 1) -}}true{{- end -}}
{{- end -}}

{{- /* The proxy variables, both spellings (curl reads http_proxy in lower case only); the API
server's address is always in NO_PROXY, expanded by the kubelet from the Service variable. */}}
{{- define "gitstage.proxyEnv" -}}
{{- if or .Values.proxy.https .Values.proxy.http }}
{{- $noProxy := "$(KUBERNETES_SERVICE_HOST)" }}
{{- with .Values.proxy.noProxy }}
{{- $noProxy = printf "%s,%s" $noProxy . }}
{{- end }}
{{- $variables := dict "https_proxy" .Values.proxy.https "http_proxy" .Values.proxy.http "no_proxy" $noProxy }}
{{- range $name := list "https_proxy" "http_proxy" "no_proxy" }}
{{- with get $variables $name }}
- name: {{ upper $name }}
  value: {{ . | quote }}
- name: {{ $name }}
  value: {{ . | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{- /* Labels of a monitoring object: the release's, plus the ones its Prometheus selects. */}}
{{- define "gitstage.monitorLabels" -}}
{{ include "gitstage.labels" .root }}
{{- with .extra }}
{{ toYaml . }}
{{- end }}
{{- end -}}
