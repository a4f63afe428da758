{{/* Full name of the release's objects: "<release>-ballast" unless the release is already named ballast. */}}
{{- define "ballast.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "ballast.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "ballast.labels" -}}
{{ include "ballast.selectorLabels" . }}
app.kubernetes.io/part-of: ballast
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "ballast.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "ballast.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "ballast.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The operator's permissions: the same rules as deploy/base/role.yaml (a unit test keeps them equal). */}}
{{- define "ballast.operatorRules" -}}
# Informers list and watch; the loop and status conflict retries get; patch releases the finalizer older versions set.
- apiGroups: ["ballast.dev"]
  resources: ["modeldeployments"]
  verbs: ["get", "list", "watch", "patch"]
# Status is written with PUT and the object's resourceVersion (src/kube/status.ts).
- apiGroups: ["ballast.dev"]
  resources: ["modeldeployments/status"]
  verbs: ["update"]
# blockOwnerDeletion on owned objects, where OwnerReferencesPermissionEnforcement runs.
- apiGroups: ["ballast.dev"]
  resources: ["modeldeployments/finalizers"]
  verbs: ["update"]
# Serving objects: informers; get on a cache miss (who controls an existing object of that name);
# server-side apply (patch, and create when apply creates); the garbage collector deletes them, not us.
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: [""]
  resources: ["services", "configmaps"]
  verbs: ["get", "list", "watch", "create", "patch"]
# The serving pods' NetworkPolicy (serving port open, monitoring port for the operator only): the same verbs.
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["get", "list", "watch", "create", "patch"]
# Retraining Jobs: informer, get on a cache miss, create an attempt.
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create"]
# Pods: the monitoring informer; the loop lists a Job's pods for their termination messages.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch"]
# The pvc:// claim check.
- apiGroups: [""]
  resources: ["persistentvolumeclaims"]
  verbs: ["get"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end -}}
