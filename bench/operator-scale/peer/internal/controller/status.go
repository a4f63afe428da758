package controller

// The status fields Ballast's serving controller writes (src/operator/serving/status.ts), from the
// Deployment as last seen: observedGeneration, Ready / Reconciling / Stalled / Serving, replicas,
// readyReplicas, selector, servingVersion; in the first status also the monitoring and loop controllers'
// first parts, which Ballast folds into that one write.

import (
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

type progress struct {
	ready, stalled  bool
	reason, message string
}

// deploymentProgress is kstatus's reading of a Deployment (Ballast's deploymentProgress).
func deploymentProgress(dep *appsv1.Deployment) progress {
	desired := int32(1)
	if dep.Spec.Replicas != nil {
		desired = *dep.Spec.Replicas
	}
	st := dep.Status
	for _, c := range st.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Status == "False" && c.Reason == "ProgressDeadlineExceeded" {
			return progress{stalled: true, reason: "DeploymentUnavailable", message: "Deployment " + dep.Name + ": " + c.Message}
		}
	}
	switch {
	case st.UpdatedReplicas < desired:
		return progress{reason: "DeploymentProgressing", message: fmt.Sprintf("rolling out: %d of %d serving pods updated", st.UpdatedReplicas, desired)}
	case st.Replicas > st.UpdatedReplicas:
		return progress{reason: "DeploymentProgressing", message: fmt.Sprintf("rolling out: %d old serving pods terminating", st.Replicas-st.UpdatedReplicas)}
	case st.AvailableReplicas < desired || st.ReadyReplicas < desired:
		return progress{reason: "ServingNotReady", message: fmt.Sprintf("%d of %d serving pods ready", st.ReadyReplicas, desired)}
	case desired == 0:
		return progress{ready: true, reason: "ScaledToZero", message: "scaled to zero serving pods"}
	}
	return progress{ready: true, reason: "DeploymentAvailable", message: fmt.Sprintf("%d of %d serving pods ready", st.ReadyReplicas, desired)}
}

func hasField(md *unstructured.Unstructured, fields ...string) bool {
	_, ok, _ := unstructured.NestedFieldNoCopy(md.Object, fields...)
	return ok
}

// setServingStatus writes the serving fields into md's status (other fields kept) and says whether anything changed.
func setServingStatus(md *unstructured.Unstructured, dep *appsv1.Deployment) (bool, error) {
	before := md.DeepCopy()
	var conditions []metav1.Condition
	if raw, ok, _ := unstructured.NestedSlice(md.Object, "status", "conditions"); ok {
		for _, c := range raw {
			var cond metav1.Condition
			if m, isMap := c.(map[string]any); isMap && runtime.DefaultUnstructuredConverter.FromUnstructured(m, &cond) == nil {
				conditions = append(conditions, cond)
			}
		}
	}
	gen := md.GetGeneration()
	set := func(t string, s metav1.ConditionStatus, reason, message string) {
		meta.SetStatusCondition(&conditions, metav1.Condition{Type: t, Status: s, Reason: reason, Message: message, ObservedGeneration: gen})
	}
	p := deploymentProgress(dep)
	if p.ready {
		set("Ready", "True", "Reconciled", p.message)
		set("Reconciling", "False", "Reconciled", "serving is up to date")
		set("Stalled", "False", "Reconciled", "serving is up to date")
	} else {
		set("Ready", "False", p.reason, p.message)
		set("Reconciling", map[bool]metav1.ConditionStatus{true: "False", false: "True"}[p.stalled], p.reason, p.message)
		stalledMessage := "making progress"
		if p.stalled {
			stalledMessage = p.message
		}
		set("Stalled", map[bool]metav1.ConditionStatus{true: "True", false: "False"}[p.stalled], p.reason, stalledMessage)
	}
	set("Serving", map[bool]metav1.ConditionStatus{true: "True", false: "False"}[p.ready], p.reason, p.message)
	first := !hasField(md, "status", "observedGeneration")
	if first {
		// Ballast's first status carries its monitoring and loop controllers' first parts too (one write, not three,
		// src/operator/first-status.ts): what they report before any pod was read. The peer writes the same fields.
		noPod := "no ready serving pod to read monitoring from"
		set("DriftDetected", "Unknown", "InsufficientData", noPod)
		set("Degraded", "Unknown", "InsufficientData", noPod)
		set("LoopHalted", "False", "Idle", "the loop runs")
		set("CandidateReady", "False", "Idle", "no candidate waiting for approval")
		set("Retraining", "False", "Idle", "no retraining Job running")
	}
	rawConditions := make([]any, 0, len(conditions))
	for i := range conditions {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&conditions[i])
		if err != nil {
			return false, err
		}
		rawConditions = append(rawConditions, m)
	}
	fields := map[string]any{
		"observedGeneration": gen,
		"conditions":         rawConditions,
		"replicas":           int64(dep.Status.Replicas),
		"readyReplicas":      int64(dep.Status.ReadyReplicas),
		"selector":           selectorString(md.GetName()),
	}
	if v := str(md.Object, "spec", "model", "version"); v != "" {
		fields["servingVersion"] = v
	}
	if first {
		fields["loop"] = map[string]any{
			"phase": "Stable", "attempt": int64(0), "since": metav1.Now().UTC().Format(time.RFC3339),
			"message": "serving (version not yet reported); policy not evaluated yet",
		}
	}
	for k, v := range fields {
		if err := unstructured.SetNestedField(md.Object, v, "status", k); err != nil {
			return false, err
		}
	}
	return !equalJSON(before.Object["status"], md.Object["status"]), nil
}
